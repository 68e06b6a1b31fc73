//! A profile folder and its open database: creation, unlocking, and re-wrapping the key.
//!
//! Files in the profile folder:
//! - `profile.meta`: non-secret text: format version, key mode, keyring account id.
//! - `sotto.key`: the passphrase-wrapped key (passphrase mode only).
//! - `sotto.db` (+ `-wal`, `-shm` while open): the SQLCipher database.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use rusqlite::Connection;

use crate::db::{self, DbOpenError};
use crate::fsutil;
use crate::keyfile::{self, KdfParams, KeyFileError};
use crate::keyring_store::{self, KeyringError};
use crate::secret::{DbKey, Passphrase};

const META_FILE: &str = "profile.meta";
const KEY_FILE: &str = "sotto.key";
const DB_FILE: &str = "sotto.db";
/// The database with the files SQLite keeps beside it while it is open.
const DB_FILES: [&str; 3] = [DB_FILE, "sotto.db-wal", "sotto.db-shm"];
const META_HEADER: &str = "sotto-profile 1";

/// How a profile's database key is protected at rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// The key is in the OS keyring (default).
    Keyring,
    /// The key is wrapped by a passphrase in `sotto.key`; nothing is in the keyring.
    Passphrase,
}

/// How to protect the key of a new profile.
pub enum KeyProtection<'a> {
    /// Store the key in the OS keyring.
    Keyring,
    /// Wrap the key with a passphrase.
    Passphrase(&'a Passphrase, KdfParams),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Meta {
    mode: KeyMode,
    /// Keyring account name (random, per profile) in keyring mode.
    account: Option<String>,
}

impl Meta {
    fn encode(&self) -> String {
        let mut s = format!("{META_HEADER}\n");
        match self.mode {
            KeyMode::Keyring => s.push_str("mode keyring\n"),
            KeyMode::Passphrase => s.push_str("mode passphrase\n"),
        }
        if let Some(a) = &self.account {
            s.push_str(&format!("keyring-account {a}\n"));
        }
        s
    }

    fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != META_HEADER {
            return None;
        }
        let mut mode = None;
        let mut account = None;
        for line in lines {
            match line.split_once(' ')? {
                ("mode", "keyring") => mode = Some(KeyMode::Keyring),
                ("mode", "passphrase") => mode = Some(KeyMode::Passphrase),
                ("keyring-account", a) if is_account(a) => account = Some(a.to_owned()),
                _ => return None,
            }
        }
        let mode = mode?;
        if mode == KeyMode::Keyring && account.is_none() {
            return None;
        }
        Some(Self { mode, account })
    }

    fn read(dir: &Path) -> Result<Self, OpenError> {
        let text = match fs::read_to_string(dir.join(META_FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NoProfile),
            Err(e) => return Err(OpenError::Io(e)),
        };
        Self::decode(&text).ok_or(OpenError::BadMetadata)
    }

    fn write(&self, dir: &Path) -> io::Result<()> {
        fsutil::write_atomic(&dir.join(META_FILE), self.encode().as_bytes())
    }
}

fn is_account(a: &str) -> bool {
    a.len() == 32 && a.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_account() -> Result<String, rand_core::Error> {
    let mut id = [0u8; 16];
    OsRng.try_fill_bytes(&mut id)?;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// How long a processed relay message id is remembered: twice the relay's default time to
/// keep an undelivered envelope.
pub const RELAY_ID_RETENTION_MS: i64 = 60 * 24 * 3600 * 1000;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why a profile could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The folder already holds a profile.
    #[error("a profile already exists in this folder")]
    AlreadyExists,
    /// The OS keyring could not store the key. Nothing was written in plaintext.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// Wrapping the key failed.
    #[error("could not wrap the database key: {0}")]
    KeyFile(#[from] KeyFileError),
    /// The random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// Creating the database failed.
    #[error(transparent)]
    Database(#[from] DbOpenError),
    /// A file operation failed.
    #[error("file system error while creating the profile: {0}")]
    Io(#[from] io::Error),
}

/// Why a profile could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No profile in this folder.
    #[error("no Sotto profile in this folder")]
    NoProfile,
    /// `profile.meta` is unreadable.
    #[error("the profile metadata file is malformed")]
    BadMetadata,
    /// The profile uses the other key mode.
    #[error("this profile's key is protected in {actual:?} mode")]
    WrongMode {
        /// The mode the profile actually uses.
        actual: KeyMode,
    },
    /// The OS keyring could not provide the key.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The passphrase is wrong or the key file damaged.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The database could not be opened (including: wrong key).
    #[error(transparent)]
    Database(#[from] DbOpenError),
    /// A file operation failed.
    #[error("file system error while opening the profile: {0}")]
    Io(#[from] io::Error),
}

/// Why deleting a profile failed. Every step is attempted even after one fails; the error
/// names the first failure.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The database could not be closed cleanly (its files are removed anyway).
    #[error("could not close the database: {0}")]
    Close(#[source] DbOpenError),
    /// The key's keyring entry could not be deleted; it may still be in the keyring.
    #[error("the profile's files were removed, but its keyring entry could not be deleted: {0}")]
    Keyring(#[source] KeyringError),
    /// A file could not be removed.
    #[error("could not remove the profile's files: {0}")]
    Io(#[from] io::Error),
}

/// Why switching key modes or changing the passphrase failed. On every error the previous
/// protection is still in place and usable.
#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    /// The current passphrase given is wrong; nothing was changed.
    #[error("the current passphrase is wrong; nothing was changed")]
    WrongPassphrase,
    /// The operation needs the other mode (e.g. changing a passphrase in keyring mode).
    #[error("the profile is in {actual:?} mode")]
    WrongMode {
        /// The mode the profile is in.
        actual: KeyMode,
    },
    /// The keyring could not store or delete the key.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// The key was re-wrapped and is durable, but the old keyring entry could not be deleted.
    #[error(
        "the key is now passphrase-protected, but the old keyring entry could not be deleted: {0}"
    )]
    KeyringCleanup(#[source] KeyringError),
    /// Wrapping failed.
    #[error("could not wrap the database key: {0}")]
    KeyFile(KeyFileError),
    /// The random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// A file operation failed.
    #[error("file system error while re-wrapping the key: {0}")]
    Io(#[from] io::Error),
}

/// Stores the key as `protection` asks and returns the metadata describing it.
fn protect(dir: &Path, key: &DbKey, protection: KeyProtection<'_>) -> Result<Meta, CreateError> {
    Ok(match protection {
        KeyProtection::Keyring => {
            let account = new_account().map_err(|_| CreateError::Random)?;
            keyring_store::store(&account, key)?;
            Meta {
                mode: KeyMode::Keyring,
                account: Some(account),
            }
        }
        KeyProtection::Passphrase(pass, params) => {
            let file = keyfile::wrap(key, pass, params)?;
            fsutil::write_atomic(&dir.join(KEY_FILE), &file)?;
            Meta {
                mode: KeyMode::Passphrase,
                account: None,
            }
        }
    })
}

/// Best-effort undo of [`protect`] after a failed creation.
fn unprotect(dir: &Path, meta: &Meta) {
    match &meta.account {
        Some(account) => {
            let _ = keyring_store::delete(account);
        }
        None => {
            let _ = fs::remove_file(dir.join(KEY_FILE));
        }
    }
}

/// Reads which key mode a profile uses (so the UI knows whether to ask for a passphrase).
pub fn key_mode(dir: &Path) -> Result<KeyMode, OpenError> {
    Ok(Meta::read(dir)?.mode)
}

/// An open, unlocked profile database.
pub struct Store {
    pub(crate) conn: Connection,
    dir: PathBuf,
    key: DbKey,
    meta: Meta,
}

impl Store {
    /// Whether `dir` holds a profile (or the remains of one).
    pub fn exists(dir: &Path) -> bool {
        dir.join(META_FILE).exists() || dir.join(DB_FILE).exists() || dir.join(KEY_FILE).exists()
    }

    /// Creates a new profile in `dir` (created if missing) with a fresh random database key.
    pub fn create(dir: &Path, protection: KeyProtection<'_>) -> Result<Self, CreateError> {
        fs::create_dir_all(dir)?;
        if Self::exists(dir) {
            return Err(CreateError::AlreadyExists);
        }
        let key = DbKey::generate().map_err(|_| CreateError::Random)?;
        let meta = protect(dir, &key, protection)?;
        let conn = match db::open_encrypted(&dir.join(DB_FILE), &key) {
            Ok(c) => c,
            Err(e) => {
                unprotect(dir, &meta);
                return Err(e.into());
            }
        };
        // Without its metadata the folder would hold a profile that says it exists but can
        // never be opened: undo everything instead.
        if let Err(e) = meta.write(dir) {
            drop(conn);
            unprotect(dir, &meta);
            for name in DB_FILES {
                let _ = fs::remove_file(dir.join(name));
            }
            return Err(e.into());
        }
        Ok(Self {
            conn,
            dir: dir.to_owned(),
            key,
            meta,
        })
    }

    /// Turns a complete database built under a temporary name (backup import) into the
    /// profile of `dir`: protects `key`, renames the database into place, writes the metadata.
    pub(crate) fn adopt_database(
        dir: &Path,
        tmp_db: &Path,
        key: DbKey,
        protection: KeyProtection<'_>,
    ) -> Result<Self, CreateError> {
        if Self::exists(dir) {
            return Err(CreateError::AlreadyExists);
        }
        let meta = protect(dir, &key, protection)?;
        let done = (|| -> Result<Connection, CreateError> {
            fs::rename(tmp_db, dir.join(DB_FILE))?;
            fsutil::sync_dir(dir)?;
            let conn = db::open_encrypted(&dir.join(DB_FILE), &key)?;
            meta.write(dir)?;
            Ok(conn)
        })();
        match done {
            Ok(conn) => Ok(Self {
                conn,
                dir: dir.to_owned(),
                key,
                meta,
            }),
            Err(e) => {
                unprotect(dir, &meta);
                if dir.join(DB_FILE).exists() {
                    let _ = fs::rename(dir.join(DB_FILE), tmp_db);
                }
                Err(e)
            }
        }
    }

    /// Opens a keyring-mode profile.
    pub fn open_with_keyring(dir: &Path) -> Result<Self, OpenError> {
        let meta = Meta::read(dir)?;
        let account = match (&meta.mode, &meta.account) {
            (KeyMode::Keyring, Some(a)) => a.clone(),
            _ => return Err(OpenError::WrongMode { actual: meta.mode }),
        };
        let key = keyring_store::load(&account)?;
        Self::finish_open(dir, key, meta)
    }

    /// Opens a passphrase-mode profile. A wrong passphrase changes nothing on disk.
    pub fn open_with_passphrase(dir: &Path, passphrase: &Passphrase) -> Result<Self, OpenError> {
        let meta = Meta::read(dir)?;
        if meta.mode != KeyMode::Passphrase {
            return Err(OpenError::WrongMode { actual: meta.mode });
        }
        let file = fs::read(dir.join(KEY_FILE))?;
        let key = keyfile::unwrap(&file, passphrase)?;
        Self::finish_open(dir, key, meta)
    }

    fn finish_open(dir: &Path, key: DbKey, meta: Meta) -> Result<Self, OpenError> {
        let db_path = dir.join(DB_FILE);
        if !db_path.exists() {
            return Err(OpenError::NoProfile);
        }
        let conn = db::open_encrypted(&db_path, &key)?;
        let mut store = Self {
            conn,
            dir: dir.to_owned(),
            key,
            meta,
        };
        // Disappearing messages whose time passed while the app was closed go now, and so
        // does the receive bookkeeping of long-delivered envelopes.
        let now = now_ms();
        store
            .delete_expired(now)
            .and_then(|_| store.prune_processed_relay_ids(now - RELAY_ID_RETENTION_MS))
            .map_err(|e| {
                OpenError::Database(DbOpenError::Sqlite {
                    code: e.code(),
                    source: e.into_source(),
                })
            })?;
        Ok(store)
    }

    /// The profile folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current key mode.
    pub fn key_mode(&self) -> KeyMode {
        self.meta.mode
    }

    /// Closes the database, checkpointing and removing the WAL.
    pub fn close(self) -> Result<(), DbOpenError> {
        self.conn.close().map_err(|(_, e)| DbOpenError::from(e))
    }

    /// Deletes this profile: closes the database, deletes the key where it is kept (the
    /// keyring entry in keyring mode, `sotto.key` in passphrase mode) and removes the
    /// database files and `profile.meta`. Only the store's own file names are removed; the
    /// folder and anything else in it stay. Used to undo a profile whose set-up failed.
    pub fn delete(self) -> Result<(), DeleteError> {
        let Self {
            conn, dir, meta, ..
        } = self;
        let mut first: Option<DeleteError> = None;
        if let Err((_, e)) = conn.close() {
            first.get_or_insert(DeleteError::Close(DbOpenError::from(e)));
        }
        if let Some(account) = &meta.account
            && let Err(e) = keyring_store::delete(account)
        {
            first.get_or_insert(DeleteError::Keyring(e));
        }
        // profile.meta last: while any other file remains it still says what the folder is.
        for name in DB_FILES.into_iter().chain([KEY_FILE, META_FILE]) {
            match fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first.get_or_insert(DeleteError::Io(e));
                }
            }
        }
        match first {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Switches from keyring mode to passphrase mode. The key file is written durably before
    /// the keyring entry is deleted.
    pub fn switch_to_passphrase(
        &mut self,
        passphrase: &Passphrase,
        params: KdfParams,
    ) -> Result<(), RewrapError> {
        let account = match (&self.meta.mode, &self.meta.account) {
            (KeyMode::Keyring, Some(a)) => a.clone(),
            _ => {
                return Err(RewrapError::WrongMode {
                    actual: self.meta.mode,
                });
            }
        };
        let file = keyfile::wrap(&self.key, passphrase, params).map_err(RewrapError::KeyFile)?;
        fsutil::write_atomic(&self.dir.join(KEY_FILE), &file)?;
        let meta = Meta {
            mode: KeyMode::Passphrase,
            account: None,
        };
        meta.write(&self.dir)?;
        self.meta = meta;
        keyring_store::delete(&account).map_err(RewrapError::KeyringCleanup)
    }

    /// Switches from passphrase mode to keyring mode, which lowers the protection: so only
    /// with the `current` passphrase (checked first; if it is wrong nothing is written).
    /// The keyring entry is written and read back before the metadata switches and the key
    /// file is deleted.
    pub fn switch_to_keyring(&mut self, current: &Passphrase) -> Result<(), RewrapError> {
        self.check_passphrase(current)?;
        let account = new_account().map_err(|_| RewrapError::Random)?;
        keyring_store::store(&account, &self.key)?;
        let meta = Meta {
            mode: KeyMode::Keyring,
            account: Some(account),
        };
        meta.write(&self.dir)?;
        self.meta = meta;
        fsutil::remove_durably(&self.dir.join(KEY_FILE))?;
        Ok(())
    }

    /// Changes the passphrase (passphrase mode). The current passphrase is checked against
    /// the key file first; if it is wrong nothing is written.
    pub fn change_passphrase(
        &mut self,
        current: &Passphrase,
        new: &Passphrase,
        params: KdfParams,
    ) -> Result<(), RewrapError> {
        self.check_passphrase(current)?;
        let file = keyfile::wrap(&self.key, new, params).map_err(RewrapError::KeyFile)?;
        fsutil::write_atomic(&self.dir.join(KEY_FILE), &file)?;
        Ok(())
    }

    /// Checks that `passphrase` opens this passphrase-mode profile's key file (and that the
    /// file holds this database's key), for actions that must confirm it is the owner:
    /// lowering the key protection, exporting everything. Nothing is written.
    pub fn check_passphrase(&self, passphrase: &Passphrase) -> Result<(), RewrapError> {
        if self.meta.mode != KeyMode::Passphrase {
            return Err(RewrapError::WrongMode {
                actual: self.meta.mode,
            });
        }
        let file = fs::read(self.dir.join(KEY_FILE))?;
        match keyfile::unwrap(&file, passphrase) {
            Ok(k) if k.bytes() == self.key.bytes() => Ok(()),
            Ok(_) | Err(KeyFileError::WrongPassphrase) => Err(RewrapError::WrongPassphrase),
            Err(e) => Err(RewrapError::KeyFile(e)),
        }
    }
}
