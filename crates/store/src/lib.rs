//! Sotto's encrypted local store: the SQLCipher database whose key is held in the OS keyring or
//! wrapped by a passphrase, its migrations and typed queries.
//!
//! Depends on no other Sotto crate; knows nothing of networking or of any front end. See
//! docs/STORE.md for the key modes, file layouts and schema.
#![forbid(unsafe_code)]

pub mod backup;
mod db;
mod forensic;
mod fsutil;
mod keyfile;
mod keyring_store;
mod queries;
mod secret;
mod store;

pub use db::DbOpenError;
pub use forensic::Leftovers;
pub use keyfile::{KdfParams, KeyFileError};
pub use keyring_store::{KEYRING_SERVICE, KeyringError, keyring_available};
pub use queries::*;
pub use secret::{DB_KEY_LEN, Passphrase};
pub use store::{
    CreateError, DeleteError, KeyMode, KeyProtection, OpenError, RELAY_ID_RETENTION_MS,
    RewrapError, Store, key_mode,
};
