//! The Sotto desktop app: a thin Tauri 2 shell that adapts `sotto-client` to the web UI through
//! typed commands and one event channel (docs/DESKTOP_API.md). Business logic lives in the
//! crates, never here.

mod backup;
pub mod camera;
mod commands;
mod embedded_relay;
mod engine;
mod error;
mod events;
mod instance_lock;
mod notify;
mod profile;
pub mod rendering;
mod session;
mod views;

use std::path::PathBuf;
use std::sync::Arc;

use tauri::{Emitter, Manager};
use tauri_plugin_notification::NotificationExt;

pub use error::{ErrorCode, UiError};
pub use profile::{Profile, ProfileError};

use crate::embedded_relay::{EmbeddedRelay, EmbeddedRelayError};
use crate::engine::Sink;
use crate::events::EVENT_CHANNEL;
use crate::instance_lock::{InstanceLock, InstanceLockError};
use crate::session::Session;

/// Why the desktop app could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The profile folder could not be chosen or created.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// Another window has this profile open.
    #[error(transparent)]
    InUse(#[from] InstanceLockError),
    /// The embedded relay settings are invalid.
    #[error(transparent)]
    Relay(#[from] EmbeddedRelayError),
    /// The window system or webview failed.
    #[error("the window could not be started: {0}")]
    Window(#[from] tauri::Error),
}

/// The typed command surface shared by the running app and the TypeScript bindings generator.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(commands::all())
        .typ::<events::SottoEvent>()
}

/// Where the embedded relay keeps its data: `SOTTO_EMBEDDED_RELAY_DIR`, else the platform data
/// folder (shared by every profile on this computer, like a real relay would be).
fn embedded_relay_dir(profile: &Profile) -> PathBuf {
    if let Some(dir) = std::env::var_os("SOTTO_EMBEDDED_RELAY_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("org", "Sotto", "Sotto").map_or_else(
        || profile.dir().join("relay"),
        |d| d.data_dir().join("relay"),
    )
}

fn sink(app: &tauri::AppHandle) -> Sink {
    let events = app.clone();
    let notices = app.clone();
    let window = app.clone();
    Sink {
        protect_screen: Arc::new(move |on| {
            // A no-op on Linux, where no window system offers it (the privacy page says so).
            if let Some(w) = window.get_webview_window("main")
                && let Err(e) = w.set_content_protected(on)
            {
                tracing::debug!(error = %e, "content protection not applied");
            }
        }),
        event: Arc::new(move |event| {
            if let Err(e) = events.emit(EVENT_CHANNEL, event) {
                tracing::warn!(error = %e, "event not delivered to the window");
            }
        }),
        notify: Arc::new(move |notice| {
            // Someone looking at the conversation needs no notification.
            let focused = notices
                .get_webview_window("main")
                .and_then(|w| w.is_focused().ok())
                .unwrap_or(false);
            if focused {
                return;
            }
            if let Err(e) = notices
                .notification()
                .builder()
                .title(notice.title)
                .body(notice.body)
                .show()
            {
                tracing::debug!(error = %e, "notification not shown");
            }
        }),
    }
}

/// Opens the main window on the bundled UI and runs until it closes.
pub fn run() -> Result<(), RunError> {
    commands::mark_process_start();
    let profile = Profile::from_args_and_env(std::env::args_os(), |name| std::env::var_os(name))?;
    let lock = InstanceLock::acquire(profile.dir())?;
    let relay = Arc::new(EmbeddedRelay::from_env(embedded_relay_dir(&profile))?);
    let builder = specta_builder();
    let dir = profile.dir().to_owned();
    tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            let handle = app.handle().clone();
            app.manage(Session::new(dir, relay, sink(&handle)));
            if let Some(window) = app.get_webview_window("main") {
                camera::install(&window)?;
            }
            Ok(())
        })
        .build(tauri::generate_context!())?
        .run(move |_app, _event| {
            // Held until the event loop ends: the profile stays ours for the whole run.
            let _ = &lock;
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The UI's generated bindings must match the Rust commands; run with
    /// SOTTO_UPDATE_BINDINGS=1 to regenerate them after changing a command.
    #[test]
    fn ui_bindings_are_fresh() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/lib/bindings.ts");
        let fresh = std::env::temp_dir().join(format!("sotto-bindings-{}.ts", std::process::id()));
        super::specta_builder()
            .export(crate::commands::typescript_exporter(), &fresh)
            .expect("export bindings");
        let fresh_text = std::fs::read_to_string(&fresh).expect("read fresh bindings");
        std::fs::remove_file(&fresh).ok();
        if std::env::var_os("SOTTO_UPDATE_BINDINGS").is_some() {
            std::fs::write(&committed, &fresh_text).expect("write bindings");
            return;
        }
        let committed_text = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            committed_text == fresh_text,
            "ui/src/lib/bindings.ts is stale: run `SOTTO_UPDATE_BINDINGS=1 cargo test -p sotto-desktop ui_bindings_are_fresh`"
        );
    }
}
