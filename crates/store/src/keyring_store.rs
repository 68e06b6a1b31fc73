//! The database key in the OS keyring (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows) through the `keyring` crate, as raw secret bytes.

use keyring::Entry;
use zeroize::Zeroizing;

use crate::secret::DbKey;

/// Keyring service name under which every profile's key is stored.
pub const KEYRING_SERVICE: &str = "org.sotto.desktop";

/// Why the OS keyring could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// No keyring service answered, or it is locked or refused access.
    #[error(
        "the OS keyring could not be reached, is locked, or refused access ({reason}). Start a \
         Secret Service such as gnome-keyring, or unlock it; or protect this profile with a \
         passphrase instead (passphrase mode needs no keyring). The key was not stored anywhere \
         else."
    )]
    Unavailable {
        /// What the platform said (never contains the key).
        reason: String,
    },
    /// The keyring works but holds no key for this profile.
    #[error(
        "the OS keyring holds no key for this profile; it may have been deleted, or the profile \
         was copied from another machine"
    )]
    Missing,
    /// The keyring entry exists but does not hold a 32-byte key.
    #[error("the OS keyring entry for this profile does not hold a valid database key")]
    Invalid,
}

fn map_err(e: keyring::Error) -> KeyringError {
    match e {
        keyring::Error::NoEntry => KeyringError::Missing,
        keyring::Error::PlatformFailure(err) | keyring::Error::NoStorageAccess(err) => {
            KeyringError::Unavailable {
                reason: err.to_string(),
            }
        }
        keyring::Error::BadEncoding(_) | keyring::Error::Ambiguous(_) => KeyringError::Invalid,
        keyring::Error::TooLong(attr, _) | keyring::Error::Invalid(attr, _) => {
            KeyringError::Unavailable {
                reason: format!("the keyring rejected attribute {attr}"),
            }
        }
        _ => KeyringError::Unavailable {
            reason: "unknown keyring error".into(),
        },
    }
}

fn entry(account: &str) -> Result<Entry, KeyringError> {
    Entry::new(KEYRING_SERVICE, account).map_err(map_err)
}

/// Stores the key and reads it back, so success means the keyring really holds it.
pub(crate) fn store(account: &str, key: &DbKey) -> Result<(), KeyringError> {
    let e = entry(account)?;
    e.set_secret(key.bytes()).map_err(map_err)?;
    let back = load(account)?;
    if back.bytes() == key.bytes() {
        Ok(())
    } else {
        Err(KeyringError::Invalid)
    }
}

pub(crate) fn load(account: &str) -> Result<DbKey, KeyringError> {
    let secret = Zeroizing::new(entry(account)?.get_secret().map_err(map_err)?);
    DbKey::from_slice(&secret).ok_or(KeyringError::Invalid)
}

pub(crate) fn delete(account: &str) -> Result<(), KeyringError> {
    match entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(map_err(e)),
    }
}

/// Whether the OS keyring answers right now (a lookup of an entry that never exists); lets a
/// user interface suggest passphrase mode before the user picks the keyring.
#[must_use]
pub fn keyring_available() -> bool {
    match entry("sotto-availability-probe").and_then(|e| match e.get_secret() {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(map_err(e)),
    }) {
        Ok(()) => true,
        Err(_) => false,
    }
}
