//! The engine's core: a [`Client`] is one device of one account with its profile database and
//! relay connections. Account setup and prekey upkeep live here; contacts and verification in
//! `contacts`, sending in `send`, the receive pipeline in `receive`.

use std::time::Duration;

use rand_core::OsRng;
use sotto_protocol::{
    AccountId, Address, IdentityKeyPair, KemPreKeyKind, KemPreKeySecret, OneTimePreKeySecret,
    SignedPreKeySecret,
};
use sotto_relay_wire::{self as wire, Push, Request, Response};
use sotto_store::{PrekeyKind, Store};
use thiserror::Error;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::pin::{PinError, pin_verifier};
use crate::prekey_codec::{encode_kem, encode_one_time, encode_signed};
use crate::privacy::PrivacySettings;
use crate::relay::{Backoff, ConnectError, RelayConnection, RequestError, with_backoff};
use crate::state::{self, StateError, keys, now_ms};

/// The device id of a first device (peers are addressed at this device for now).
pub const PRIMARY_DEVICE: u32 = 1;
/// One-time X25519 prekeys kept on the relay.
pub const ONE_TIME_TARGET: u32 = 20;
/// One-time ML-KEM prekeys kept on the relay.
pub const KEM_TARGET: u32 = 10;

/// Account setup and prekey maintenance failed.
#[derive(Debug, Error)]
pub enum SetupError {
    /// Local state failed or holds an undecodable secret.
    #[error(transparent)]
    State(#[from] StateError),
    /// Not connected.
    #[error("not connected")]
    NotConnected,
    /// The relay refused or did not answer.
    #[error(transparent)]
    Relay(#[from] RequestError),
}

/// Claiming a username or setting the registration lock failed.
#[derive(Debug, Error)]
pub enum UsernameError {
    /// PIN could not be stretched.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// Not connected.
    #[error("not connected")]
    NotConnected,
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The relay refused (`UsernameTaken`, `PinRequired`, `PinIncorrect`, …).
    #[error(transparent)]
    Relay(#[from] RequestError),
}

/// Saving the privacy settings failed.
#[derive(Debug, Error)]
pub enum SavePrivacyError {
    /// A value is out of range.
    #[error(transparent)]
    Invalid(#[from] crate::privacy::SettingsEncodeError),
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A Sotto client: one device of one account, its profile database and its relay
/// connections.
pub struct Client {
    pub(crate) store: Store,
    pub(crate) url: String,
    pub(crate) timeout: Duration,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) device: u32,
    pub(crate) auth: Option<RelayConnection>,
    pub(crate) pushes: Option<mpsc::UnboundedReceiver<Push>>,
    pub(crate) anon: Option<RelayConnection>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens the account in `store`, creating its identity (device 1) on first use, and
    /// deletes messages whose disappearing timer ran out while the profile was closed. The
    /// relay address is remembered in the profile. Does not connect.
    pub fn open(mut store: Store, relay_url: &str) -> Result<Self, StateError> {
        let (identity, device) = match store.own_identity()? {
            Some(bytes) => (
                IdentityKeyPair::from_bytes(&bytes).map_err(|_| StateError::corrupt())?,
                state::get_u32(&store, keys::DEVICE)?.unwrap_or(PRIMARY_DEVICE),
            ),
            None => {
                let id = IdentityKeyPair::generate(&mut OsRng);
                store.atomically(|s| {
                    s.set_own_identity(&id.to_bytes()[..], now_ms())?;
                    state::put_u32(s, keys::DEVICE, PRIMARY_DEVICE)
                })?;
                (id, PRIMARY_DEVICE)
            }
        };
        store.put_setting(keys::RELAY, relay_url.as_bytes())?;
        store.delete_expired(now_ms())?;
        Ok(Self {
            store,
            url: relay_url.to_owned(),
            timeout: crate::relay::DEFAULT_REQUEST_TIMEOUT,
            identity,
            device,
            auth: None,
            pushes: None,
            anon: None,
        })
    }

    /// The relay address this profile was last opened with.
    pub fn saved_relay(store: &Store) -> Result<Option<String>, StateError> {
        state::get_string(store, keys::RELAY)
    }

    /// This account's id (its identity key).
    pub fn account(&self) -> AccountId {
        self.identity.public().account_id()
    }

    /// This device's address.
    pub fn address(&self) -> Address {
        Address::new(self.account().0, self.device)
    }

    /// The relay address.
    pub fn relay_url(&self) -> &str {
        &self.url
    }

    /// The username this account claimed, if any.
    pub fn username(&self) -> Result<Option<String>, StateError> {
        state::get_string(&self.store, keys::USERNAME)
    }

    /// The profile database (read access for front ends).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Consumes the client, returning its database.
    pub fn into_store(self) -> Store {
        self.store
    }

    /// The privacy settings (defaults until the user changes one).
    pub fn privacy(&self) -> Result<PrivacySettings, StateError> {
        match self.store.setting(keys::PRIVACY)? {
            None => Ok(PrivacySettings::default()),
            Some(b) => PrivacySettings::from_bytes(&b).map_err(|_| StateError::corrupt()),
        }
    }

    /// Saves the privacy settings.
    pub fn set_privacy(&mut self, settings: &PrivacySettings) -> Result<(), SavePrivacyError> {
        let bytes = settings.to_bytes()?;
        self.store
            .put_setting(keys::PRIVACY, &bytes)
            .map_err(StateError::from)?;
        Ok(())
    }

    /// Whether the authenticated connection is up.
    pub fn is_connected(&self) -> bool {
        self.auth.as_ref().is_some_and(RelayConnection::is_open)
    }

    /// Connects (authenticated + anonymous), retrying with exponential backoff and jitter up
    /// to `attempts` times.
    pub async fn connect(&mut self, attempts: u32) -> Result<(), ConnectError> {
        self.disconnect();
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let (url, identity, device, timeout) =
            (&self.url, &self.identity, self.device, self.timeout);
        let (conn, pushes) = with_backoff(backoff.clone(), attempts, || {
            RelayConnection::authenticated(url, identity, device, timeout)
        })
        .await?;
        let anon = with_backoff(backoff, attempts, || {
            RelayConnection::anonymous(url, timeout)
        })
        .await?;
        self.auth = Some(conn);
        self.pushes = Some(pushes);
        self.anon = Some(anon);
        // A profile restored from a backup replaces its prekeys before anything else
        // (restore.rs); if that fails the marker stays and the next connection retries.
        if let Err(e) = self.finish_restore().await {
            tracing::warn!(error = %e, "replacing prekeys after a backup import failed");
        }
        Ok(())
    }

    /// Drops both connections.
    pub fn disconnect(&mut self) {
        self.auth = None;
        self.pushes = None;
        self.anon = None;
    }

    pub(crate) async fn auth_request(&self, r: Request) -> Result<Response, RequestError> {
        match &self.auth {
            Some(c) => c.request(r).await,
            None => Err(RequestError::Closed),
        }
    }

    pub(crate) async fn anon_request(&mut self, r: Request) -> Result<Response, RequestError> {
        if !self.anon.as_ref().is_some_and(RelayConnection::is_open) {
            self.anon = RelayConnection::anonymous(&self.url, self.timeout)
                .await
                .ok();
        }
        match &self.anon {
            Some(c) => c.request(r).await,
            None => Err(RequestError::Closed),
        }
    }

    /// Uploads a signed prekey, the last-resort ML-KEM prekey and the one-time stocks. Call
    /// once after the first [`connect`](Self::connect).
    pub async fn register(&mut self) -> Result<(), SetupError> {
        if self.auth.is_none() {
            return Err(SetupError::NotConnected);
        }
        self.rotate_signed_prekey().await?;
        let id = state::allocate_prekey_ids(&mut self.store, 1)?;
        let last_resort =
            KemPreKeySecret::generate(&mut OsRng, &self.identity, id, KemPreKeyKind::LastResort);
        self.store
            .put_prekey(PrekeyKind::Kem, id, &last_resort.to_bytes(), now_ms())
            .map_err(StateError::from)?;
        self.auth_request(Request::UploadLastResortKemPrekey(wire::Prekey {
            id,
            bytes: encode_kem(&last_resort.public()),
        }))
        .await?;
        self.upload_one_time(ONE_TIME_TARGET, KEM_TARGET).await
    }

    async fn upload_one_time(&mut self, count: u32, kem_count: u32) -> Result<(), SetupError> {
        if count > 0 {
            let first = state::allocate_prekey_ids(&mut self.store, count)?;
            let keys = OneTimePreKeySecret::generate_batch(&mut OsRng, first, count)
                .iter()
                .map(|k| (k.id(), k.to_bytes(), encode_one_time(&k.public())))
                .collect();
            self.store_and_upload(PrekeyKind::OneTime, keys, Request::UploadOneTimePrekeys)
                .await?;
        }
        if kem_count > 0 {
            let first = state::allocate_prekey_ids(&mut self.store, kem_count)?;
            let keys = (first..first.saturating_add(kem_count))
                .map(|id| {
                    let k = KemPreKeySecret::generate(
                        &mut OsRng,
                        &self.identity,
                        id,
                        KemPreKeyKind::OneTime,
                    );
                    (id, k.to_bytes(), encode_kem(&k.public()))
                })
                .collect();
            self.store_and_upload(PrekeyKind::Kem, keys, Request::UploadOneTimeKemPrekeys)
                .await?;
        }
        Ok(())
    }

    /// Stores one-time prekey secrets (one transaction), then uploads their public halves.
    async fn store_and_upload(
        &mut self,
        kind: PrekeyKind,
        keys: Vec<(u32, Zeroizing<Vec<u8>>, Vec<u8>)>,
        request: fn(Vec<wire::Prekey>) -> Request,
    ) -> Result<(), SetupError> {
        let now = now_ms();
        self.store.atomically(|s| {
            for (id, secret, _) in &keys {
                s.put_prekey(kind, *id, secret, now)?;
            }
            Ok::<_, StateError>(())
        })?;
        let upload = keys
            .into_iter()
            .map(|(id, _, bytes)| wire::Prekey { id, bytes })
            .collect();
        self.auth_request(request(upload)).await?;
        Ok(())
    }

    /// Asks the relay how many one-time prekeys are left: `(x25519, ml_kem)`.
    pub async fn prekey_count(&self) -> Result<(u32, u32), SetupError> {
        match self.auth_request(Request::PrekeyCount).await? {
            Response::PrekeyCount {
                one_time,
                one_time_kem,
            } => Ok((one_time, one_time_kem)),
            _ => Err(SetupError::Relay(RequestError::UnexpectedResponse)),
        }
    }

    /// Uploads enough one-time prekeys to bring both stocks back to their targets.
    pub async fn top_up_prekeys(&mut self) -> Result<(), SetupError> {
        let (one_time, kem) = self.prekey_count().await?;
        self.upload_one_time(
            ONE_TIME_TARGET.saturating_sub(one_time),
            KEM_TARGET.saturating_sub(kem),
        )
        .await
    }

    /// Generates and uploads a new signed prekey. Previous ones stay in the profile so
    /// session starts made against them still work. Returns the new id.
    pub async fn rotate_signed_prekey(&mut self) -> Result<u32, SetupError> {
        if self.auth.is_none() {
            return Err(SetupError::NotConnected);
        }
        let id = state::allocate_prekey_ids(&mut self.store, 1)?;
        let spk = SignedPreKeySecret::generate(&mut OsRng, &self.identity, id);
        self.auth_request(Request::UploadSignedPrekey(wire::Prekey {
            id,
            bytes: encode_signed(&spk.public()),
        }))
        .await?;
        let now = now_ms();
        self.store.atomically(|s| {
            s.put_prekey(PrekeyKind::Signed, id, &spk.to_bytes(), now)?;
            state::put_u32(s, keys::SIGNED_PREKEY, id)
        })?;
        Ok(id)
    }

    /// Claims `username`. With a PIN, the stretched verifier is sent (needed to take over a
    /// username locked by another identity) and then set as this account's registration lock.
    pub async fn claim_username(
        &mut self,
        username: &str,
        pin: Option<&str>,
    ) -> Result<(), UsernameError> {
        if self.auth.is_none() {
            return Err(UsernameError::NotConnected);
        }
        let verifier = pin.map(|p| pin_verifier(p, username)).transpose()?;
        self.auth_request(Request::UsernameClaim {
            username: username.to_owned(),
            pin_verifier: verifier.as_deref().copied(),
        })
        .await?;
        if let Some(v) = verifier {
            self.auth_request(Request::RegLockSet { pin_verifier: *v })
                .await?;
        }
        self.store
            .put_setting(keys::USERNAME, username.as_bytes())
            .map_err(StateError::from)?;
        Ok(())
    }
}
