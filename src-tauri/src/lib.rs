//! The Sotto desktop app: a thin Tauri 2 shell that adapts `sotto-client` to the web UI through
//! typed commands and events. Business logic lives in the crates, never here.

mod commands;
mod profile;

pub use profile::{Profile, ProfileError};

/// Why the desktop app could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The profile folder could not be chosen or created.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The window system or webview failed.
    #[error("the window could not be started: {0}")]
    Window(#[from] tauri::Error),
}

/// The typed command surface shared by the running app and the TypeScript bindings generator.
pub fn specta_builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new().commands(commands::all())
}

/// Opens the main window on the bundled UI and runs until it closes.
pub fn run() -> Result<(), RunError> {
    let profile = Profile::from_args_and_env(std::env::args_os(), |name| std::env::var_os(name))?;
    let builder = specta_builder();
    tauri::Builder::default()
        .manage(profile)
        .invoke_handler(builder.invoke_handler())
        .build(tauri::generate_context!())?
        .run(|_app, _event| {});
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
