//! How the engine keeps its state in the profile database (`sotto-store`): the small
//! key-value records it needs beyond the store's tables, and conversions between protocol
//! and store types. Everything that changes more than one row goes through
//! [`Store::atomically`], so the receive pipeline acknowledges the relay only after one
//! committed transaction.

use std::time::{SystemTime, UNIX_EPOCH};

use sotto_protocol::{AccountId, Address};
use sotto_store::{QueryError, Store, Timestamp};
use thiserror::Error;

/// The profile database failed, or holds something this build cannot decode.
#[derive(Debug, Error)]
#[error("the profile database failed")]
pub struct StateError(#[source] Option<QueryError>);

impl StateError {
    /// A stored record could not be decoded.
    pub(crate) fn corrupt() -> Self {
        Self(None)
    }
}

impl From<QueryError> for StateError {
    fn from(e: QueryError) -> Self {
        Self(Some(e))
    }
}

/// Settings keys the engine owns (values are big-endian integers or UTF-8).
pub(crate) mod keys {
    pub const DEVICE: &str = "client.device";
    pub const NEXT_PREKEY_ID: &str = "client.next_prekey_id";
    pub const SIGNED_PREKEY: &str = "client.signed_prekey";
    /// When the current signed prekey was made (i64 milliseconds).
    pub const SIGNED_PREKEY_AT: &str = "client.signed_prekey_at";
    /// Replaced signed prekeys still kept: (u32 id, i64 retired-at ms) records.
    pub const SIGNED_PREKEY_RETIRED: &str = "client.signed_prekey_retired";
    pub const USERNAME: &str = "client.username";
    pub const RELAY: &str = "client.relay";
    /// PEM CA certificates trusted for a wss:// relay besides the OS trust store.
    pub const RELAY_CA: &str = "client.relay_ca";
    pub const PRIVACY: &str = "client.privacy";
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> Timestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn get_u32(store: &Store, key: &str) -> Result<Option<u32>, StateError> {
    match store.setting(key)? {
        None => Ok(None),
        Some(v) => Ok(Some(u32::from_be_bytes(
            v.as_slice().try_into().map_err(|_| StateError::corrupt())?,
        ))),
    }
}

pub(crate) fn put_u32(store: &Store, key: &str, v: u32) -> Result<(), StateError> {
    Ok(store.put_setting(key, &v.to_be_bytes())?)
}

pub(crate) fn get_string(store: &Store, key: &str) -> Result<Option<String>, StateError> {
    store
        .setting(key)?
        .map(|v| String::from_utf8(v).map_err(|_| StateError::corrupt()))
        .transpose()
}

/// Allocates `count` consecutive fresh prekey ids (one counter for every kind, so ids never
/// collide) and returns the first.
pub(crate) fn allocate_prekey_ids(store: &mut Store, count: u32) -> Result<u32, StateError> {
    store.atomically(|s| {
        let first = get_u32(s, keys::NEXT_PREKEY_ID)?.unwrap_or(1).max(1);
        let next = first.checked_add(count).ok_or_else(StateError::corrupt)?;
        put_u32(s, keys::NEXT_PREKEY_ID, next)?;
        Ok(first)
    })
}

/// The store's id for an account.
pub(crate) fn db_account(a: AccountId) -> sotto_store::AccountId {
    sotto_store::AccountId(a.0)
}

/// The store's form of a device address.
pub(crate) fn db_address(a: Address) -> sotto_store::Address {
    sotto_store::Address {
        account: db_account(a.account),
        device: a.device.0,
    }
}

/// The relay's message id as the store records it.
pub(crate) fn relay_id_bytes(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The account a contact's current identity key names (where messages go).
pub(crate) fn contact_account(c: &sotto_store::Contact) -> Result<AccountId, StateError> {
    Ok(AccountId(
        c.identity_key
            .as_slice()
            .try_into()
            .map_err(|_| StateError::corrupt())?,
    ))
}
