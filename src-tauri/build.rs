//! Grants exactly the app's own commands: each one listed here gets an `allow-<name>`
//! permission, and capabilities/main-window.json hands those to the main window only.

/// Every command the UI may invoke. Keep in sync with `commands::all()` in src/lib.rs.
const COMMANDS: &[&str] = &[
    "app_info",
    "profile_status",
    "create_profile",
    "unlock",
    "restore_backup",
    "lock",
    "export_backup",
    "conversations",
    "message_count",
    "messages",
    "send_text",
    "mark_read",
    "send_typing",
    "set_timer",
    "search",
    "add_contact",
    "add_contact_from_invite",
    "my_invite",
    "set_blocked",
    "accept_request",
    "delete_contact",
    "safety_number",
    "verify_image",
    "verify_frame",
    "set_verified",
    "save_image",
    "privacy_page",
    "set_setting",
    "set_hardened",
    "set_key_storage",
    "ui_ready",
];

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    if let Err(error) =
        tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
    {
        eprintln!("tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
