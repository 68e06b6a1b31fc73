//! The storage trait every backend implements, and its typed errors.

pub mod postgres;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

use std::future::Future;

use sotto_relay_wire::{Address, Bundle, Delivery, Prekey};

/// An account id: the 32-byte Ed25519 identity public key.
pub type AccountId = [u8; 32];

/// Retention and abuse policy enforced inside storage transactions.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Inactivity after which an unlocked username is free (ms).
    pub username_release_ms: u64,
    /// Inactivity after which a registration lock lapses (ms).
    pub reglock_lapse_ms: u64,
    /// Wrong PIN attempts allowed per lock per 24 hours.
    pub pin_attempts_per_day: u32,
    /// Most one-time prekeys of each kind per device.
    pub max_prekeys: u32,
    /// Most envelopes queued per mailbox.
    pub mailbox_cap: u64,
    /// Lifetime of a queued envelope (ms).
    pub message_ttl_ms: u64,
}

impl Policy {
    /// Builds the policy from the configuration.
    #[must_use]
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            username_release_ms: c.username_release_ms,
            reglock_lapse_ms: c.reglock_lapse_ms,
            pin_attempts_per_day: c.pin_attempts_per_day,
            max_prekeys: c.max_prekeys,
            mailbox_cap: c.mailbox_cap,
            message_ttl_ms: c.message_ttl_ms,
        }
    }
}

/// Backend failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(String),
    /// The storage worker is gone.
    #[error("storage worker stopped")]
    Closed,
}

/// Errors of [`Storage::claim_username`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClaimError {
    /// Another account holds the username and it is not claimable.
    #[error("username taken")]
    Taken,
    /// The account already has another username.
    #[error("account already has a username")]
    AlreadyHasUsername,
    /// The holder's registration lock requires a PIN.
    #[error("registration lock: PIN required")]
    PinRequired,
    /// Wrong PIN.
    #[error("wrong PIN, {remaining} attempts left")]
    PinIncorrect {
        /// Attempts left in the current 24-hour window.
        remaining: u32,
    },
    /// Too many wrong PINs.
    #[error("PIN attempts exhausted, retry in {retry_after_ms} ms")]
    PinLocked {
        /// Wait before the next attempt.
        retry_after_ms: u64,
    },
    /// Backend failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of [`Storage::change_username`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChangeError {
    /// The new username is held by someone else.
    #[error("username taken")]
    Taken,
    /// The account has no username to change.
    #[error("account has no username")]
    NoUsername,
    /// Backend failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of [`Storage::release_username`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReleaseError {
    /// The account has no username.
    #[error("account has no username")]
    NoUsername,
    /// Backend failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of [`Storage::add_one_time_prekeys`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum UploadError {
    /// The device would exceed the per-device cap.
    #[error("at most {cap} one-time prekeys per device")]
    TooMany {
        /// The cap.
        cap: u32,
    },
    /// Backend failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of [`Storage::fetch_bundle`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum BundleError {
    /// The device has no signed prekey.
    #[error("no bundle for this device")]
    NotFound,
    /// Backend failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of [`Storage::enqueue`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnqueueError {
    /// The recipient device never registered.
    #[error("unknown recipient")]
    UnknownRecipient,
    /// The mailbox holds `cap` envelopes already.
    #[error("mailbox full ({cap} envelopes)")]
    MailboxFull {
        /// The cap.
        cap: u64,
    },
    /// Backend failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Which one-time prekey pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimeKind {
    /// X25519 one-time prekeys.
    X25519,
    /// ML-KEM one-time prekeys.
    Kem,
}

/// Remaining one-time prekeys of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrekeyCounts {
    /// X25519.
    pub one_time: u32,
    /// ML-KEM.
    pub one_time_kem: u32,
}

/// Run with an accepted envelope's message id once it is committed (see
/// [`Storage::enqueue_then`]).
pub type OnCommit = Box<dyn FnOnce(u64) + Send + Sync>;

/// Everything the relay persists. All methods are atomic: each runs in one transaction.
pub trait Storage: Send + Sync + 'static {
    /// Records that a device authenticated (registers it; refreshes account activity).
    fn touch_device(
        &self,
        addr: Address,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Claims `username` for `account` (see section 13 of `docs/PROTOCOL.md` for the lock rules).
    fn claim_username(
        &self,
        account: AccountId,
        username: String,
        pin: Option<[u8; 32]>,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), ClaimError>> + Send;
    /// Resolves a username.
    fn lookup_username(
        &self,
        username: String,
    ) -> impl Future<Output = Result<Option<AccountId>, StorageError>> + Send;
    /// Replaces the account's username.
    fn change_username(
        &self,
        account: AccountId,
        username: String,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), ChangeError>> + Send;
    /// Releases the account's username.
    fn release_username(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<(), ReleaseError>> + Send;
    /// Sets the registration lock from a client's stretched PIN (stored salted and hashed).
    fn set_reglock(
        &self,
        account: AccountId,
        verifier: [u8; 32],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Removes the registration lock.
    fn clear_reglock(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Replaces the signed prekey.
    fn put_signed_prekey(
        &self,
        addr: Address,
        key: Prekey,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Replaces the last-resort ML-KEM prekey.
    fn put_last_resort_kem(
        &self,
        addr: Address,
        key: Prekey,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Adds one-time prekeys (same id replaces).
    fn add_one_time_prekeys(
        &self,
        addr: Address,
        kind: OneTimeKind,
        keys: Vec<Prekey>,
    ) -> impl Future<Output = Result<PrekeyCounts, UploadError>> + Send;
    /// Counts one-time prekeys.
    fn prekey_counts(
        &self,
        addr: Address,
    ) -> impl Future<Output = Result<PrekeyCounts, StorageError>> + Send;
    /// Builds a bundle, removing the one-time keys it hands out, and reports what is left.
    fn fetch_bundle(
        &self,
        addr: Address,
    ) -> impl Future<Output = Result<(Bundle, PrekeyCounts), BundleError>> + Send;
    /// Queues an envelope; returns its message id.
    fn enqueue(
        &self,
        recipient: Address,
        envelope: Vec<u8>,
        now_ms: u64,
    ) -> impl Future<Output = Result<u64, EnqueueError>> + Send {
        self.enqueue_then(recipient, envelope, now_ms, Box::new(|_| {}))
    }
    /// Like [`Storage::enqueue`], and runs `on_commit` with the message id once the envelope is
    /// committed, before the result is returned. Backends with one writer per mailbox run the
    /// hooks of one mailbox in commit (= id) order, so wake-ups sent from them reach the
    /// recipient's connection in id order.
    fn enqueue_then(
        &self,
        recipient: Address,
        envelope: Vec<u8>,
        now_ms: u64,
        on_commit: OnCommit,
    ) -> impl Future<Output = Result<u64, EnqueueError>> + Send;
    /// Unexpired envelopes with id greater than `after_id`, oldest first.
    fn pending(
        &self,
        addr: Address,
        after_id: u64,
        limit: u32,
        now_ms: u64,
    ) -> impl Future<Output = Result<Vec<Delivery>, StorageError>> + Send;
    /// Deletes an envelope on acknowledgement; false if it was not there.
    fn ack(
        &self,
        addr: Address,
        message_id: u64,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Deletes expired envelopes; returns how many.
    fn purge_expired(&self, now_ms: u64) -> impl Future<Output = Result<u64, StorageError>> + Send;
    /// Deletes `account` and everything held for it in one transaction: its devices, their
    /// prekeys and queued envelopes, its username and registration lock (and presence rows).
    /// Its username, if any, stays unclaimable until `now_ms` plus the lock-lapse period if a
    /// lock was set, else plus the username-release period (docs/RELAY_DATA.md). Deleting an
    /// unknown account succeeds and changes nothing.
    fn delete_account(
        &self,
        account: AccountId,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Checks the backend answers.
    fn health(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Records that `addr` is connected to this node (`online`) or no longer is. Backends
    /// shared by several relay nodes use it to decide whom to notify; the default does nothing.
    fn set_presence(
        &self,
        addr: Address,
        online: bool,
    ) -> impl Future<Output = Result<(), StorageError>> + Send {
        let _ = (addr, online);
        std::future::ready(Ok(()))
    }

    /// Devices whose mailbox received envelopes through another node. Called once by the
    /// server; the default (single-node backends) has none.
    fn take_remote_wakeups(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Address>> {
        None
    }
}

/// When the username of an account deleted at `now_ms` becomes claimable again: a deleted
/// account counts as inactive from that moment, so the lock-lapse period applies if it had a
/// registration lock and the unlocked-username release period otherwise.
#[must_use]
pub fn quarantine_until_ms(policy: &Policy, had_lock: bool, now_ms: u64) -> u64 {
    let period = if had_lock {
        policy.reglock_lapse_ms
    } else {
        policy.username_release_ms
    };
    now_ms.saturating_add(period)
}

/// The registration-lock hash: SHA-256("sotto-relay-reglock-v1" || salt || verifier).
#[must_use]
pub fn reglock_hash(salt: &[u8], verifier: &[u8; 32]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"sotto-relay-reglock-v1");
    h.update(salt);
    h.update(verifier);
    h.finalize().into()
}

/// Delay before the next PIN attempt after `failed` consecutive failures: none for the first
/// three, then 2^(failed-3) seconds, capped at one hour.
#[must_use]
pub fn pin_backoff_ms(failed: u32) -> u64 {
    if failed <= 3 {
        0
    } else {
        (1000u64 << (failed - 3).min(12)).min(3_600_000)
    }
}
