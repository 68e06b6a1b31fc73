//! The engine's core: a [`Client`] is one device of one account with its profile database and
//! relay connections. Account setup and prekey upkeep live here; contacts and verification in
//! `contacts`, sending in `send`, the receive pipeline in `receive`.

use std::time::Duration;

use rand_core::OsRng;
use sotto_protocol::{
    AccountId, Address, IdentityKeyPair, KemPreKeyKind, KemPreKeySecret, OneTimePreKeySecret,
};
use sotto_relay_wire::{self as wire, Push, Request, Response};
use sotto_store::{PrekeyKind, Store};
use thiserror::Error;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::pin::{PinError, pin_verifier};
use crate::prekey_codec::{encode_kem, encode_one_time};
use crate::privacy::PrivacySettings;
use crate::relay::{
    Backoff, ConnectError, ConnectOptions, RelayCaError, RelayConnection, RelayTls, RequestError,
    with_backoff,
};
use crate::state::{self, StateError, keys, now_ms};

/// The device id of a first device (peers are addressed at this device for now).
pub const PRIMARY_DEVICE: u32 = 1;
/// One-time X25519 prekeys kept on the relay.
pub const ONE_TIME_TARGET: u32 = 20;
/// One-time ML-KEM prekeys kept on the relay.
pub const KEM_TARGET: u32 = 10;

/// The TLS trust for `url`: `None` for ws://.
fn relay_tls(url: &str, ca_pem: Option<&[u8]>) -> Result<Option<RelayTls>, RelayCaError> {
    if url.starts_with("wss://") {
        RelayTls::new(ca_pem).map(Some)
    } else {
        // Still check the file, so a bad one is refused whatever the URL.
        ca_pem.map(crate::relay::parse_ca_pem).transpose()?;
        Ok(None)
    }
}

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

/// Deleting the account from the relay failed or was not confirmed (retrying is safe).
#[derive(Debug, Error)]
pub enum DeleteAccountError {
    /// Not connected.
    #[error("not connected")]
    NotConnected,
    /// The relay refused or could not be reached.
    #[error(transparent)]
    Relay(#[from] RequestError),
}

/// Setting the relay CA failed.
#[derive(Debug, Error)]
pub enum SetRelayCaError {
    /// The file is not a usable PEM CA certificate.
    #[error(transparent)]
    Ca(#[from] RelayCaError),
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
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
    /// Timeouts, keep-alive, and trust for a wss:// relay (`tls` is `None` for ws://).
    pub(crate) opts: ConnectOptions,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) device: u32,
    pub(crate) auth: Option<RelayConnection>,
    pub(crate) pushes: Option<mpsc::UnboundedReceiver<Push>>,
    pub(crate) anon: Option<RelayConnection>,
    /// Counts installed connections, so news about an older one cannot tear down a newer.
    pub(crate) generation: u64,
    /// Set while a lost connection is being restored in the background.
    pub(crate) reconnect: Option<Reconnecting>,
    /// When the event pump next checks the signed prekey's age.
    pub(crate) next_upkeep: Option<tokio::time::Instant>,
    /// Delivery receipts owed for messages already reported, sent by the next pump turn so
    /// that a message is shown before its receipt goes out (crate::receipts).
    pub(crate) owed_receipts: Vec<(sotto_store::AccountId, crate::content::ClientMessageId)>,
}

/// First delay before reconnecting after a lost connection (full jitter: 0 to this).
pub const RECONNECT_BASE: Duration = Duration::from_millis(250);
/// Longest delay between reconnection attempts.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// The two connections of a connected client.
pub(crate) struct Connections {
    pub(crate) auth: RelayConnection,
    pub(crate) pushes: mpsc::UnboundedReceiver<Push>,
    pub(crate) anon: RelayConnection,
}

/// A background task retrying the connection with backoff; it sends one result, then ends.
/// The task runs apart from the pump so a reconnection attempt never holds up
/// `next_incoming` (which would make it neither bounded by `wait` nor cancel-safe).
pub(crate) struct Reconnecting {
    pub(crate) result: mpsc::Receiver<Result<Connections, ConnectError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Reconnecting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn open_connections(
    url: &str,
    identity: &IdentityKeyPair,
    device: u32,
    opts: &ConnectOptions,
) -> Result<Connections, ConnectError> {
    let (auth, pushes) = RelayConnection::authenticated(url, identity, device, opts).await?;
    let anon = RelayConnection::anonymous(url, opts).await?;
    Ok(Connections { auth, pushes, anon })
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
        let tls = relay_tls(relay_url, store.setting(keys::RELAY_CA)?.as_deref())
            .map_err(|_| StateError::corrupt())?;
        Ok(Self {
            store,
            url: relay_url.to_owned(),
            opts: ConnectOptions {
                tls,
                ..ConnectOptions::default()
            },
            identity,
            device,
            auth: None,
            pushes: None,
            anon: None,
            generation: 0,
            reconnect: None,
            next_upkeep: None,
            owed_receipts: Vec::new(),
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

    /// Trusts `ca_pem` (PEM, one or more CA certificates), in addition to the OS trust store,
    /// for this profile's wss:// relay, and remembers it in the profile (`None` forgets it).
    /// Takes effect on the next connection.
    pub fn set_relay_ca(&mut self, ca_pem: Option<&[u8]>) -> Result<(), SetRelayCaError> {
        let tls = relay_tls(&self.url, ca_pem)?;
        match ca_pem {
            Some(pem) => self.store.put_setting(keys::RELAY_CA, pem),
            None => self.store.delete_setting(keys::RELAY_CA).map(|_| ()),
        }
        .map_err(StateError::from)?;
        self.opts.tls = tls;
        Ok(())
    }

    /// Sets the keep-alive ping interval (default 25 s) for connections opened from now on;
    /// a connection silent for 2.5 intervals is treated as lost and reconnected.
    pub fn set_keepalive(&mut self, interval: Duration) {
        self.opts.keepalive = interval;
    }

    /// Whether the profile trusts an extra CA for its relay.
    pub fn has_relay_ca(&self) -> Result<bool, StateError> {
        Ok(self.store.setting(keys::RELAY_CA)?.is_some())
    }

    /// The username this account claimed, if any.
    pub fn username(&self) -> Result<Option<String>, StateError> {
        state::get_string(&self.store, keys::USERNAME)
    }

    /// The profile database (read access for front ends).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The profile database, for changes that are not messaging (re-wrapping its key).
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
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

    /// Whether the authenticated connection is up. While it is down after having been up,
    /// the event pump reconnects by itself (see [`next_incoming`](Self::next_incoming)).
    pub fn is_connected(&self) -> bool {
        self.auth.as_ref().is_some_and(RelayConnection::is_open)
    }

    /// Connects (authenticated + anonymous), retrying with exponential backoff and jitter up
    /// to `attempts` times. From then on a dropped connection is restored by the event pump
    /// until [`disconnect`](Self::disconnect).
    pub async fn connect(&mut self, attempts: u32) -> Result<(), ConnectError> {
        self.disconnect();
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let (url, identity, device, opts) = (&self.url, &self.identity, self.device, &self.opts);
        let (auth, pushes) = with_backoff(backoff.clone(), attempts, || {
            RelayConnection::authenticated(url, identity, device, opts)
        })
        .await?;
        let anon =
            with_backoff(backoff, attempts, || RelayConnection::anonymous(url, opts)).await?;
        self.install(Connections { auth, pushes, anon });
        self.upkeep().await;
        Ok(())
    }

    /// Finishes a backup restore if one is pending, rotates the signed prekey if due and
    /// deletes retired ones past their grace period
    /// (crate::rotation); schedules the next check. A failure is only logged: the key stays
    /// valid and the next connect or hourly check tries again.
    pub(crate) async fn upkeep(&mut self) {
        // A profile restored from a backup replaces its prekeys before anything else
        // (restore.rs); if that fails the marker stays and the next connection retries.
        if let Err(e) = self.finish_restore().await {
            tracing::warn!(error = %e, "replacing prekeys after a backup import failed");
        }
        self.next_upkeep = Some(tokio::time::Instant::now() + crate::rotation::CHECK_EVERY);
        match self.maintain_signed_prekey().await {
            Ok(Some(_)) => tracing::info!("signed prekey rotated"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "signed prekey upkeep failed"),
        }
    }

    pub(crate) fn install(&mut self, c: Connections) {
        self.generation = self.generation.wrapping_add(1);
        self.auth = Some(c.auth);
        self.pushes = Some(c.pushes);
        self.anon = Some(c.anon);
    }

    /// Drops both connections and stops any automatic reconnection.
    pub fn disconnect(&mut self) {
        self.reconnect = None;
        self.auth = None;
        self.pushes = None;
        self.anon = None;
    }

    /// Starts connecting in the background, as after a lost connection, unless connected or
    /// already trying: for a front end that opened the profile while the relay was
    /// unreachable. The event pump reports `Reconnected` when it succeeds.
    pub fn connect_in_background(&mut self) {
        if self.auth.is_none() && self.reconnect.is_none() {
            self.start_reconnect();
        }
    }

    /// Drops the dead connections and starts restoring them in the background: attempts
    /// wait a random time up to 250 ms doubling to 30 s ([`RECONNECT_BASE`],
    /// [`RECONNECT_MAX`]); every loss starts the backoff over.
    pub(crate) fn start_reconnect(&mut self) {
        self.auth = None;
        self.pushes = None;
        self.anon = None;
        let (tx, result) = mpsc::channel(1);
        let (url, identity, device, opts) = (
            self.url.clone(),
            self.identity.clone(),
            self.device,
            self.opts.clone(),
        );
        let task = tokio::spawn(async move {
            let mut backoff = Backoff::new(RECONNECT_BASE, RECONNECT_MAX);
            loop {
                tokio::time::sleep(backoff.next_delay()).await;
                let outcome = open_connections(&url, &identity, device, &opts).await;
                let permanent = outcome.as_ref().is_err_and(ConnectError::is_permanent);
                match outcome {
                    Err(e) if !permanent => {
                        tracing::debug!(error = %e, "reconnection attempt failed");
                    }
                    done => {
                        let _ = tx.send(done).await;
                        return;
                    }
                }
            }
        });
        self.reconnect = Some(Reconnecting { result, task });
    }

    /// Sends a request on the authenticated connection. Not an `async fn` on purpose: the
    /// future borrows only the connection, never the whole `Client`, whose database is not
    /// `Sync`; so the engine's futures stay `Send` and the desktop app can spawn them.
    pub(crate) fn auth_request(
        &self,
        r: Request,
    ) -> impl Future<Output = Result<Response, RequestError>> + Send + use<'_> {
        let conn = self.auth.as_ref();
        async move {
            match conn {
                Some(c) => c.request(r).await,
                None => Err(RequestError::Closed),
            }
        }
    }

    pub(crate) async fn anon_request(&mut self, r: Request) -> Result<Response, RequestError> {
        if !self.anon.as_ref().is_some_and(RelayConnection::is_open) {
            self.anon = RelayConnection::anonymous(&self.url, &self.opts).await.ok();
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
    pub fn prekey_count(
        &self,
    ) -> impl Future<Output = Result<(u32, u32), SetupError>> + Send + use<'_> {
        // Borrows only the connection (see `auth_request`).
        let request = self.auth_request(Request::PrekeyCount);
        async move {
            match request.await? {
                Response::PrekeyCount {
                    one_time,
                    one_time_kem,
                } => Ok((one_time, one_time_kem)),
                _ => Err(SetupError::Relay(RequestError::UnexpectedResponse)),
            }
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

    /// Deletes this account from the relay: its username (held back from others for a
    /// while, docs/RELAY_DATA.md), registration lock, prekeys and queued messages. The relay
    /// closes the connection afterwards and this client stays disconnected, since the account
    /// no longer exists. The local profile is untouched: delete it with
    /// [`Store::delete`](sotto_store::Store::delete) (via [`into_store`](Self::into_store)).
    pub async fn delete_account(&mut self) -> Result<(), DeleteAccountError> {
        if self.auth.is_none() {
            return Err(DeleteAccountError::NotConnected);
        }
        self.auth_request(Request::DeleteAccount).await?;
        self.owed_receipts.clear();
        self.disconnect();
        Ok(())
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
