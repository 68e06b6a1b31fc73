//! The commands the UI may call. Each one is also listed in build.rs, which is what grants it
//! to the main window.

use serde::Serialize;
use specta::Type;
use tauri::State;

use crate::Profile;

/// Everything the tauri-specta builder needs to know about our commands.
pub(crate) fn all() -> tauri_specta::Commands<tauri::Wry> {
    tauri_specta::collect_commands![app_info]
}

/// How the TypeScript bindings are written; shared by the freshness test.
#[cfg(test)]
pub(crate) fn typescript_exporter() -> specta_typescript::Typescript {
    specta_typescript::Typescript::default()
        .header("// Generated from src-tauri by tauri-specta. Do not edit by hand.\n")
}

/// The name and version of this build and the profile folder it runs on.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// Product name.
    pub name: String,
    /// Semantic version of this build.
    pub version: String,
    /// The profile folder this instance uses.
    pub profile_dir: String,
}

/// Tells the UI which app, version and profile it is talking to.
#[tauri::command]
#[specta::specta]
pub fn app_info(profile: State<'_, Profile>) -> AppInfo {
    AppInfo {
        name: sotto_client::APP_NAME.to_owned(),
        version: sotto_client::VERSION.to_owned(),
        profile_dir: profile.dir().display().to_string(),
    }
}
