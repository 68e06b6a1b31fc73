//! The commands the UI may call (docs/DESKTOP_API.md). Each one is also listed in build.rs,
//! which is what grants it to the main window. They only translate: the work happens in the
//! engine actor on `sotto-client`.

mod chat;
mod contacts;
mod privacy;
mod profile;
mod startup;
mod verify;

pub(crate) use startup::mark_process_start;

/// Everything the tauri-specta builder needs to know about our commands.
pub(crate) fn all() -> tauri_specta::Commands<tauri::Wry> {
    tauri_specta::collect_commands![
        profile::app_info,
        profile::profile_status,
        profile::create_profile,
        profile::unlock,
        profile::restore_backup,
        profile::lock,
        profile::export_backup,
        chat::conversations,
        chat::message_count,
        chat::messages,
        chat::send_text,
        chat::mark_read,
        chat::send_typing,
        chat::set_timer,
        chat::search,
        contacts::add_contact,
        contacts::add_contact_from_invite,
        contacts::my_invite,
        contacts::set_blocked,
        contacts::accept_request,
        contacts::delete_contact,
        verify::safety_number,
        verify::verify_image,
        verify::verify_frame,
        verify::set_verified,
        verify::save_image,
        privacy::privacy_page,
        privacy::set_setting,
        privacy::set_hardened,
        privacy::set_key_storage,
        startup::ui_ready,
    ]
}

/// How the TypeScript bindings are written; shared by the freshness test.
#[cfg(test)]
pub(crate) fn typescript_exporter() -> specta_typescript::Typescript {
    specta_typescript::Typescript::default()
        .header("// Generated from src-tauri by tauri-specta. Do not edit by hand.\n")
}
