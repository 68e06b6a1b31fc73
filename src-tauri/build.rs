//! Grants exactly the app's own commands: each one listed here gets an `allow-<name>`
//! permission, and capabilities/main-window.json hands those to the main window only.

/// Every command the UI may invoke. Keep in sync with `commands::all()` in src/lib.rs.
const COMMANDS: &[&str] = &["app_info"];

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    if let Err(error) =
        tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        eprintln!("tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
