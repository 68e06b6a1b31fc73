//! Onboarding, unlock, lock and backups.

use std::path::PathBuf;

use serde::Serialize;
use specta::Type;
use tauri::State;

use crate::backup::{self, Exported};
use crate::error::UiResult;
use crate::session::{RelayChoice, Session};
use crate::views::{KeyStorageView, Me, ProfileStatus};

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
pub fn app_info(session: State<'_, Session>) -> AppInfo {
    AppInfo {
        name: sotto_client::APP_NAME.to_owned(),
        version: sotto_client::VERSION.to_owned(),
        profile_dir: session.dir().display().to_string(),
    }
}

/// Whether to show onboarding, the unlock screen or the main window.
#[tauri::command]
#[specta::specta]
pub async fn profile_status(session: State<'_, Session>) -> UiResult<ProfileStatus> {
    session.status().await
}

/// Creates the profile, registers on the relay and claims the username.
#[tauri::command]
#[specta::specta]
pub async fn create_profile(
    session: State<'_, Session>,
    username: String,
    relay: RelayChoice,
    pin: Option<String>,
    key_storage: KeyStorageView,
    passphrase: Option<String>,
) -> UiResult<Me> {
    let pin = pin.map(zeroize::Zeroizing::new);
    let passphrase = passphrase.map(zeroize::Zeroizing::new);
    session
        .create(
            username.trim(),
            relay,
            pin.as_deref().map(String::as_str),
            key_storage,
            passphrase.as_deref().map(String::as_str),
        )
        .await
}

/// Opens a passphrase-protected profile.
#[tauri::command]
#[specta::specta]
pub async fn unlock(session: State<'_, Session>, passphrase: String) -> UiResult<Me> {
    let passphrase = zeroize::Zeroizing::new(passphrase);
    session.unlock(&passphrase).await
}

/// Restores an encrypted backup into this empty profile and opens it.
#[tauri::command]
#[specta::specta]
pub async fn restore_backup(
    session: State<'_, Session>,
    file: String,
    backup_passphrase: String,
    relay: RelayChoice,
    key_storage: KeyStorageView,
    passphrase: Option<String>,
) -> UiResult<Me> {
    let backup_passphrase = zeroize::Zeroizing::new(backup_passphrase);
    let passphrase = passphrase.map(zeroize::Zeroizing::new);
    session
        .restore(
            &PathBuf::from(file),
            &backup_passphrase,
            relay,
            key_storage,
            passphrase.as_deref().map(String::as_str),
        )
        .await
}

/// Locks the app: the open profile is closed and the UI must drop what it shows.
#[tauri::command]
#[specta::specta]
pub async fn lock(session: State<'_, Session>) -> UiResult<()> {
    session.lock().await
}

/// Writes an encrypted backup of the open profile. A passphrase profile asks for its own
/// passphrase (`profilePassphrase`) first: a backup takes every message away, so it must be
/// the owner asking, not whoever finds the window unlocked.
#[tauri::command]
#[specta::specta]
pub async fn export_backup(
    session: State<'_, Session>,
    path: String,
    passphrase: String,
    profile_passphrase: Option<String>,
) -> UiResult<Exported> {
    let engine = session.engine().await?;
    backup::export(
        &engine,
        session.sink(),
        PathBuf::from(path),
        passphrase,
        profile_passphrase,
    )
    .await
}
