//! Encrypted backups from the app: export the open profile to a file, and the error messages of
//! an import (the import itself is part of onboarding, see `Session::restore`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use sotto_store::backup::{ExportError, ImportError, Progress};
use sotto_store::{KdfParams, KeyMode, Passphrase, RewrapError};
use specta::Type;
use zeroize::Zeroizing;

use crate::engine::{Engine, Sink};
use crate::error::{ErrorCode, UiError, UiResult};
use crate::events::SottoEvent;

/// Shortest backup passphrase accepted (the UI also shows a strength estimate).
pub const MIN_BACKUP_PASSPHRASE: usize = 8;

/// A finished export.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Exported {
    /// Where the backup was written.
    pub path: String,
    /// Its size.
    #[specta(type = specta_typescript::Number)]
    pub bytes: u64,
}

/// The UI error for a failed import.
pub fn import_error(e: ImportError) -> UiError {
    match e {
        ImportError::WrongPassphrase => UiError::new(
            ErrorCode::BackupWrongPassphrase,
            "That backup passphrase is not correct.",
        ),
        ImportError::NotABackup => {
            UiError::new(ErrorCode::BackupCorrupt, "This file is not a Sotto backup.")
        }
        ImportError::Truncated | ImportError::Tampered | ImportError::Malformed => UiError::new(
            ErrorCode::BackupCorrupt,
            format!("The backup cannot be restored: {e}. Nothing was changed."),
        ),
        ImportError::Io(io) => UiError::new(
            ErrorCode::Io,
            format!("The backup file could not be read ({}).", io.kind()),
        ),
        e => UiError::internal(format!("The backup could not be restored: {e}")),
    }
}

fn export_error(e: ExportError) -> UiError {
    match e {
        ExportError::Io(io) => UiError::new(
            ErrorCode::Io,
            format!("The backup could not be written there ({}).", io.kind()),
        ),
        e => UiError::internal(format!("The backup failed: {e}")),
    }
}

/// Where a backup may be written. The path is typed by the person: a relative one would land
/// wherever the app was started, and an existing file (an older backup, the profile's own
/// database) is never silently replaced.
fn check_target(path: &Path) -> UiResult<()> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Err(UiError::invalid("Choose a file name for the backup."));
    }
    if !path.is_absolute() {
        return Err(UiError::invalid(
            "Give the full path of the backup file, starting from the top folder.",
        ));
    }
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(UiError::new(
            ErrorCode::FileExists,
            "A file with that name already exists. Choose another name.",
        ));
    }
    Ok(())
}

/// A passphrase profile's own passphrase, asked for before a backup takes everything away.
/// A keyring profile has none to ask for.
fn confirm_owner(store: &sotto_store::Store, given: Option<&str>) -> UiResult<()> {
    if store.key_mode() != KeyMode::Passphrase {
        return Ok(());
    }
    let given = given.ok_or_else(|| UiError::invalid("Enter your Sotto passphrase."))?;
    store
        .check_passphrase(&Passphrase::from(given))
        .map_err(|e| match e {
            RewrapError::WrongPassphrase => UiError::wrong_passphrase(),
            e => UiError::internal(format!("The passphrase could not be checked: {e}")),
        })
}

/// Writes an encrypted backup of the open profile to `path`, reporting progress as events.
pub async fn export(
    engine: &Engine,
    sink: Sink,
    path: PathBuf,
    passphrase: String,
    profile_passphrase: Option<String>,
) -> UiResult<Exported> {
    let passphrase = Zeroizing::new(passphrase);
    let profile_passphrase = profile_passphrase.map(Zeroizing::new);
    if passphrase.chars().count() < MIN_BACKUP_PASSPHRASE {
        return Err(UiError::invalid(
            "The backup passphrase must have at least 8 characters.",
        ));
    }
    check_target(&path)?;
    let pass = Passphrase::new(Zeroizing::new(passphrase.as_str().to_owned()));
    let target = path.clone();
    engine
        .with(move |client| {
            let mut progress = |p: Progress| {
                (sink.event)(SottoEvent::BackupProgress {
                    done: p.done,
                    total: p.total,
                });
            };
            // Seconds of Argon2id and I/O: keep the runtime's other tasks moving meanwhile.
            tokio::task::block_in_place(|| {
                confirm_owner(
                    client.store(),
                    profile_passphrase.as_deref().map(String::as_str),
                )?;
                sotto_store::backup::export(
                    client.store(),
                    &target,
                    &pass,
                    KdfParams::default(),
                    &mut progress,
                )
                .map_err(export_error)
            })
        })
        .await?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Exported {
        path: path.display().to_string(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_backup_never_replaces_a_file_or_lands_somewhere_unnamed() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("new.sotto");
        assert_eq!(check_target(&fresh), Ok(()));

        let existing = dir.path().join("old.sotto");
        std::fs::write(&existing, b"an older backup").unwrap();
        assert_eq!(
            check_target(&existing).unwrap_err().code,
            ErrorCode::FileExists
        );
        assert_eq!(std::fs::read(&existing).unwrap(), b"an older backup");

        for bad in [Path::new(""), Path::new("relative.sotto"), dir.path()] {
            assert_eq!(check_target(bad).unwrap_err().code, ErrorCode::InvalidInput);
        }
    }

    #[test]
    fn a_passphrase_profile_confirms_its_passphrase_before_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let params = KdfParams {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        };
        let store = sotto_store::Store::create(
            &dir.path().join("p"),
            sotto_store::KeyProtection::Passphrase(&Passphrase::from("the owner's"), params),
        )
        .unwrap();
        assert_eq!(
            confirm_owner(&store, None).unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert_eq!(
            confirm_owner(&store, Some("a guess")).unwrap_err().code,
            ErrorCode::WrongPassphrase
        );
        assert_eq!(confirm_owner(&store, Some("the owner's")), Ok(()));
    }
}
