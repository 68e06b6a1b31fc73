//! The messaging engine: account setup, contacts, sending through the outbox, and the receive
//! pipeline (open → check sender → decrypt → commit → acknowledge).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use sotto_protocol::sealed_sender::SealError;
use sotto_protocol::session::EncryptError;
use sotto_protocol::{
    AccountId, Address, CiphertextMessage, IdentityKeyPair, IdentityPublicKey, KemPreKeyKind,
    KemPreKeyPublic, KemPreKeySecret, OneTimePreKeyPublic, OneTimePreKeySecret, PreKeyBundle,
    ResponderPreKeys, SealedEnvelope, Session, SignedPreKeyPublic, SignedPreKeySecret,
    sealed_sender,
};
use sotto_relay_wire::{self as wire, ErrorCode, Push, Request, Response};
use thiserror::Error;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::content::{ClientMessageId, Content};
use crate::pin::{PinError, pin_verifier};
use crate::relay::{Backoff, ConnectError, RelayConnection, RequestError, with_backoff};
use crate::state::{ClientState, Contact, ReceivedCommit, StateError, StoredMessage};

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
    /// The relay refused (`UsernameTaken`, `PinRequired`, `PinIncorrect`, …).
    #[error(transparent)]
    Relay(#[from] RequestError),
}

/// Adding a contact failed.
#[derive(Debug, Error)]
pub enum ContactError {
    /// No account holds that username.
    #[error("username not found")]
    NotFound,
    /// The relay's bundle is malformed or its signatures do not verify.
    #[error("invalid prekey bundle")]
    InvalidBundle,
    /// PQXDH could not start.
    #[error("session setup failed")]
    Initiate,
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Connection trouble.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused or did not answer.
    #[error(transparent)]
    Relay(#[from] RequestError),
}

/// Sending failed. A message that reached the outbox is retried by [`Client::flush_outbox`].
#[derive(Debug, Error)]
pub enum SendError {
    /// No session with that contact (add it first).
    #[error("no session with this contact")]
    NoSession,
    /// Encryption or sealing failed.
    #[error("encryption failed")]
    Encrypt,
    /// The encoded content exceeds the largest sendable plaintext (65,535 bytes).
    #[error("message too large")]
    MessageTooLarge,
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Connection trouble; the envelope stays in the outbox.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused or did not answer; the envelope stays in the outbox.
    #[error(transparent)]
    Relay(#[from] RequestError),
}

/// Receiving failed; nothing was acknowledged.
#[derive(Debug, Error)]
pub enum ReceiveError {
    /// Local state failed (the envelope will be redelivered).
    #[error(transparent)]
    State(#[from] StateError),
    /// Not connected, or the connection dropped.
    #[error("not connected")]
    NotConnected,
}

/// What the receive pipeline produced. Message text is read from the state, never carried
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new text message was stored.
    Message {
        /// Sender account.
        from: AccountId,
        /// Client message id.
        id: ClientMessageId,
        /// Sender is not an accepted contact (a message request).
        request: bool,
    },
    /// The peer received our messages.
    Delivered {
        /// Peer.
        from: AccountId,
        /// Our message ids.
        ids: Vec<ClientMessageId>,
    },
    /// The peer read our messages.
    Read {
        /// Peer.
        from: AccountId,
        /// Our message ids.
        ids: Vec<ClientMessageId>,
    },
    /// Typing indicator.
    Typing {
        /// Peer.
        from: AccountId,
        /// Started (true) or stopped.
        started: bool,
    },
    /// The peer changed the disappearing timer.
    TimerChanged {
        /// Peer.
        from: AccountId,
        /// New value in seconds (0 = off).
        seconds: u32,
    },
    /// A redelivery or repeated message: nothing new to show.
    Duplicate,
    /// An envelope that could not be opened or decrypted, or whose sender lied about its
    /// account; acknowledged and discarded.
    Dropped,
    /// The sender's identity differs from the pinned key; discarded and the contact flagged.
    KeyMismatch {
        /// The claimed sender account.
        from: AccountId,
    },
    /// The relay delivered the whole queue.
    QueueDrained,
    /// The relay reported low prekey stock and we uploaded more.
    PrekeysReplenished,
    /// The relay reported low prekey stock but the upload failed (connection lost); call
    /// [`Client::top_up_prekeys`] after reconnecting.
    PrekeysTopUpFailed,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// Public prekey encodings of docs/PROTOCOL.md §4 (the relay stores them opaquely).
fn encode_signed(p: &SignedPreKeyPublic) -> Vec<u8> {
    let mut v = p.id.to_be_bytes().to_vec();
    v.extend_from_slice(&p.key);
    v.extend_from_slice(&p.signature);
    v
}

fn encode_one_time(p: &OneTimePreKeyPublic) -> Vec<u8> {
    let mut v = p.id.to_be_bytes().to_vec();
    v.extend_from_slice(&p.key);
    v
}

fn encode_kem(p: &KemPreKeyPublic) -> Vec<u8> {
    let mut v = p.id.to_be_bytes().to_vec();
    v.push(match p.kind {
        KemPreKeyKind::LastResort => 0x02,
        KemPreKeyKind::OneTime => 0x03,
    });
    v.extend_from_slice(&p.key);
    v.extend_from_slice(&p.signature);
    v
}

fn split_id(b: &[u8]) -> Option<(u32, &[u8])> {
    let (id, rest) = b.split_at_checked(4)?;
    Some((u32::from_be_bytes(id.try_into().ok()?), rest))
}

fn decode_signed(b: &[u8]) -> Option<SignedPreKeyPublic> {
    let (id, rest) = split_id(b)?;
    if rest.len() != 96 {
        return None;
    }
    Some(SignedPreKeyPublic {
        id,
        key: rest[..32].try_into().ok()?,
        signature: rest[32..].try_into().ok()?,
    })
}

fn decode_one_time(b: &[u8]) -> Option<OneTimePreKeyPublic> {
    let (id, rest) = split_id(b)?;
    Some(OneTimePreKeyPublic {
        id,
        key: rest.try_into().ok()?,
    })
}

fn decode_kem(b: &[u8]) -> Option<KemPreKeyPublic> {
    let (id, rest) = split_id(b)?;
    let (kind, rest) = rest.split_first()?;
    let kind = match kind {
        0x02 => KemPreKeyKind::LastResort,
        0x03 => KemPreKeyKind::OneTime,
        _ => return None,
    };
    let (key, sig) = rest.split_at_checked(rest.len().checked_sub(64)?)?;
    Some(KemPreKeyPublic {
        id,
        kind,
        key: key.to_vec(),
        signature: sig.try_into().ok()?,
    })
}

/// Turns the relay's bundle into a protocol bundle (identity = the address's account).
fn to_protocol_bundle(address: Address, b: &wire::Bundle) -> Option<PreKeyBundle> {
    let kem = b.kem_prekey.as_ref()?;
    let kem_prekey = decode_kem(&kem.prekey.bytes)?;
    if kem_prekey.id != kem.prekey.id {
        return None;
    }
    let signed_prekey = decode_signed(&b.signed_prekey.bytes)?;
    let one_time_prekey = match &b.one_time_prekey {
        Some(p) => Some(decode_one_time(&p.bytes)?),
        None => None,
    };
    Some(PreKeyBundle {
        address,
        identity: address.account.identity_key().ok()?,
        signed_prekey,
        one_time_prekey,
        kem_prekey,
    })
}

/// A decrypted message with the session that decrypted it.
type Decrypted = (Session, Zeroizing<Vec<u8>>);

/// A Sotto client: one device of one account, its state and its relay connections.
pub struct Client<S: ClientState> {
    state: S,
    url: String,
    timeout: Duration,
    identity: IdentityKeyPair,
    device: u32,
    auth: Option<RelayConnection>,
    pushes: Option<mpsc::UnboundedReceiver<Push>>,
    anon: Option<RelayConnection>,
}

impl<S: ClientState> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl<S: ClientState> Client<S> {
    /// Loads the identity from `state`, creating one (device 1) on first use. Does not connect.
    pub fn open(mut state: S, relay_url: &str) -> Result<Self, StateError> {
        let (identity, device) = match state.identity()? {
            Some((bytes, device)) => (
                IdentityKeyPair::from_bytes(&bytes).map_err(|_| StateError)?,
                device,
            ),
            None => {
                let id = IdentityKeyPair::generate(&mut OsRng);
                state.set_identity(&id.to_bytes()[..], PRIMARY_DEVICE)?;
                (id, PRIMARY_DEVICE)
            }
        };
        Ok(Self {
            state,
            url: relay_url.to_owned(),
            timeout: crate::relay::DEFAULT_REQUEST_TIMEOUT,
            identity,
            device,
            auth: None,
            pushes: None,
            anon: None,
        })
    }

    /// This account's id (its identity key).
    pub fn account(&self) -> AccountId {
        self.identity.public().account_id()
    }

    /// This device's address.
    pub fn address(&self) -> Address {
        Address::new(self.account().0, self.device)
    }

    /// The state (read access for the UI).
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Consumes the client, returning its state.
    pub fn into_state(self) -> S {
        self.state
    }

    /// Connects (authenticated + anonymous), retrying with exponential backoff and jitter up
    /// to `attempts` times.
    pub async fn connect(&mut self, attempts: u32) -> Result<(), ConnectError> {
        self.auth = None;
        self.pushes = None;
        self.anon = None;
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
        Ok(())
    }

    /// Drops both connections.
    pub fn disconnect(&mut self) {
        self.auth = None;
        self.pushes = None;
        self.anon = None;
    }

    async fn auth_request(&self, r: Request) -> Result<Response, RequestError> {
        match &self.auth {
            Some(c) => c.request(r).await,
            None => Err(RequestError::Closed),
        }
    }

    async fn anon_request(&mut self, r: Request) -> Result<Response, RequestError> {
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
        let id = self.state.allocate_prekey_ids(1)?;
        let last_resort =
            KemPreKeySecret::generate(&mut OsRng, &self.identity, id, KemPreKeyKind::LastResort);
        self.state
            .put_kem_prekeys(&[(id, last_resort.to_bytes())])?;
        self.auth_request(Request::UploadLastResortKemPrekey(wire::Prekey {
            id,
            bytes: encode_kem(&last_resort.public()),
        }))
        .await?;
        self.upload_one_time(ONE_TIME_TARGET, KEM_TARGET).await
    }

    async fn upload_one_time(&mut self, count: u32, kem_count: u32) -> Result<(), SetupError> {
        if count > 0 {
            let first = self.state.allocate_prekey_ids(count)?;
            let keys = OneTimePreKeySecret::generate_batch(&mut OsRng, first, count);
            let secrets: Vec<_> = keys.iter().map(|k| (k.id(), k.to_bytes())).collect();
            self.state.put_one_time_prekeys(&secrets)?;
            let upload = keys
                .iter()
                .map(|k| wire::Prekey {
                    id: k.id(),
                    bytes: encode_one_time(&k.public()),
                })
                .collect();
            self.auth_request(Request::UploadOneTimePrekeys(upload))
                .await?;
        }
        if kem_count > 0 {
            let first = self.state.allocate_prekey_ids(kem_count)?;
            let keys: Vec<_> = (first..first.saturating_add(kem_count))
                .map(|id| {
                    KemPreKeySecret::generate(
                        &mut OsRng,
                        &self.identity,
                        id,
                        KemPreKeyKind::OneTime,
                    )
                })
                .collect();
            let secrets: Vec<_> = keys.iter().map(|k| (k.id(), k.to_bytes())).collect();
            self.state.put_kem_prekeys(&secrets)?;
            let upload = keys
                .iter()
                .map(|k| wire::Prekey {
                    id: k.id(),
                    bytes: encode_kem(&k.public()),
                })
                .collect();
            self.auth_request(Request::UploadOneTimeKemPrekeys(upload))
                .await?;
        }
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

    /// Generates and uploads a new signed prekey. Previous ones stay in the state so
    /// session starts made against them still work. Returns the new id.
    pub async fn rotate_signed_prekey(&mut self) -> Result<u32, SetupError> {
        if self.auth.is_none() {
            return Err(SetupError::NotConnected);
        }
        let id = self.state.allocate_prekey_ids(1)?;
        let spk = SignedPreKeySecret::generate(&mut OsRng, &self.identity, id);
        self.auth_request(Request::UploadSignedPrekey(wire::Prekey {
            id,
            bytes: encode_signed(&spk.public()),
        }))
        .await?;
        self.state.put_signed_prekey(id, &spk.to_bytes())?;
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
        Ok(())
    }

    /// Resolves a username to its account (anonymous connection).
    pub async fn lookup(&mut self, username: &str) -> Result<AccountId, ContactError> {
        match self
            .anon_request(Request::UsernameLookup {
                username: username.to_owned(),
            })
            .await
        {
            Ok(Response::Account { account }) => Ok(AccountId(account)),
            Ok(_) => Err(ContactError::Relay(RequestError::UnexpectedResponse)),
            Err(RequestError::Relay {
                code: ErrorCode::NotFound,
                ..
            }) => Err(ContactError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds (or accepts) a contact by username: lookup → pin the identity → fetch and verify
    /// its bundle → start a session, unless one exists already. If the username now belongs
    /// to a different account than a contact pinned under that name, that contact is flagged
    /// `key_changed`.
    pub async fn add_contact(&mut self, username: &str) -> Result<AccountId, ContactError> {
        let account = self.lookup(username).await?;
        let identity = account
            .identity_key()
            .map_err(|_| ContactError::InvalidBundle)?;
        self.flag_username_moves(username, account)?;
        self.state.put_contact(Contact {
            account,
            username: Some(username.to_owned()),
            accepted: true,
            key_changed: false,
        })?;
        let peer = Address::new(account.0, PRIMARY_DEVICE);
        if self.state.session(peer)?.is_some() {
            return Ok(account);
        }
        let bundle = match self
            .anon_request(Request::FetchBundle {
                address: wire::Address {
                    account: account.0,
                    device: PRIMARY_DEVICE,
                },
            })
            .await?
        {
            Response::Bundle(b) => b,
            _ => return Err(ContactError::Relay(RequestError::UnexpectedResponse)),
        };
        let bundle = to_protocol_bundle(peer, &bundle).ok_or(ContactError::InvalidBundle)?;
        let verified = bundle
            .verify(&identity)
            .map_err(|_| ContactError::InvalidBundle)?;
        let session = Session::initiate(&mut OsRng, &self.identity, self.address(), &verified)
            .map_err(|_| ContactError::Initiate)?;
        self.state.put_session(peer, session.to_bytes())?;
        Ok(account)
    }

    fn flag_username_moves(
        &mut self,
        username: &str,
        account: AccountId,
    ) -> Result<(), StateError> {
        for mut c in self.state.contacts()? {
            if c.account != account && c.username.as_deref() == Some(username) {
                c.key_changed = true;
                self.state.put_contact(c)?;
            }
        }
        Ok(())
    }

    fn seal_content(
        &mut self,
        peer: Address,
        content: &Content,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), SendError> {
        let bytes = self.state.session(peer)?.ok_or(SendError::NoSession)?;
        let mut session = Session::from_bytes(&bytes).map_err(|_| StateError)?;
        let message = session.encrypt(&content.encode()).map_err(|e| match e {
            EncryptError::TooLarge => SendError::MessageTooLarge,
            EncryptError::Ratchet(_) => SendError::Encrypt,
        })?;
        let envelope = sealed_sender::seal(
            &mut OsRng,
            &self.identity,
            self.address(),
            &session.remote_identity(),
            peer,
            &message,
        )
        .map_err(|e| match e {
            SealError::MessageTooLarge => SendError::MessageTooLarge,
            SealError::NonContributory => SendError::Encrypt,
        })?;
        Ok((session.to_bytes(), envelope.encode()))
    }

    /// Encrypts `content` for `peer`, stores the envelope in the outbox together with the
    /// advanced session (and `message`), then tries to flush the outbox.
    async fn send_content(
        &mut self,
        peer: AccountId,
        content: &Content,
        message: Option<StoredMessage>,
    ) -> Result<(), SendError> {
        let addr = Address::new(peer.0, PRIMARY_DEVICE);
        let (session, envelope) = self.seal_content(addr, content)?;
        self.state
            .commit_outgoing(addr, session, envelope, message)?;
        self.flush_outbox().await.map(|_| ())
    }

    /// Sends a text message; returns its client message id. If the relay cannot be reached
    /// the message stays in the outbox (`Err(Connect/Relay)`) and is retried by
    /// [`flush_outbox`](Self::flush_outbox).
    pub async fn send_text(
        &mut self,
        peer: AccountId,
        text: &str,
    ) -> Result<ClientMessageId, SendError> {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        let sent_at_ms = now_ms();
        let stored = StoredMessage {
            peer,
            outgoing: true,
            id,
            sent_at_ms,
            text: text.to_owned(),
            delivered: false,
            read: false,
        };
        let content = Content::Text {
            id,
            sent_at_ms,
            text: text.to_owned(),
        };
        self.send_content(peer, &content, Some(stored)).await?;
        Ok(id)
    }

    /// Tells `peer` we read these messages.
    pub async fn send_read_receipt(
        &mut self,
        peer: AccountId,
        ids: Vec<ClientMessageId>,
    ) -> Result<(), SendError> {
        self.send_content(peer, &Content::ReadReceipt(ids), None)
            .await
    }

    /// Sends a typing indicator.
    pub async fn send_typing(&mut self, peer: AccountId, started: bool) -> Result<(), SendError> {
        self.send_content(peer, &Content::Typing(started), None)
            .await
    }

    /// Changes the conversation's disappearing timer (seconds, 0 = off) and tells `peer`.
    pub async fn set_disappearing_timer(
        &mut self,
        peer: AccountId,
        seconds: u32,
    ) -> Result<(), SendError> {
        let mut id = [0u8; 16];
        OsRng.fill_bytes(&mut id);
        self.state.commit_received(ReceivedCommit {
            relay_message_id: None,
            timer: Some((peer, id, seconds)),
            ..ReceivedCommit::default()
        })?;
        let content = Content::DisappearingTimer {
            id,
            sent_at_ms: now_ms(),
            seconds,
        };
        self.send_content(peer, &content, None).await
    }

    /// Sends every outbox envelope in order until the relay accepted all of them; stops at
    /// the first failure (that envelope and later ones stay queued). Returns how many went.
    pub async fn flush_outbox(&mut self) -> Result<usize, SendError> {
        let mut sent = 0;
        for item in self.state.outbox()? {
            let request = Request::SendEnvelope {
                recipient: wire::Address {
                    account: item.recipient.account.0,
                    device: item.recipient.device.0,
                },
                envelope: item.envelope,
            };
            self.anon_request(request).await?;
            self.state.remove_outbox(item.seq)?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Waits up to `wait` for the next push and processes it. `Ok(None)` on timeout.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, ReceiveError> {
        let pushes = self.pushes.as_mut().ok_or(ReceiveError::NotConnected)?;
        let push = match tokio::time::timeout(wait, pushes.recv()).await {
            Err(_) => return Ok(None),
            Ok(None) => {
                self.disconnect();
                return Err(ReceiveError::NotConnected);
            }
            Ok(Some(p)) => p,
        };
        match push {
            Push::Envelope(d) => self.receive(d).await.map(Some),
            Push::QueueDrained => Ok(Some(Event::QueueDrained)),
            Push::PrekeysLow { .. } => match self.top_up_prekeys().await {
                Ok(()) => Ok(Some(Event::PrekeysReplenished)),
                Err(SetupError::State(e)) => Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "prekey top-up failed; retry with top_up_prekeys");
                    Ok(Some(Event::PrekeysTopUpFailed))
                }
            },
            Push::Challenge { .. } => Ok(None),
        }
    }

    /// The receive pipeline for one envelope: dedupe by relay id → open → check sender →
    /// decrypt → dedupe by client message id → commit (one transaction) → PushAck.
    async fn receive(&mut self, d: wire::Delivery) -> Result<Event, ReceiveError> {
        let ack = |this: &Self| {
            this.auth
                .as_ref()
                .ok_or(ReceiveError::NotConnected)?
                .ack(d.message_id)
                .map_err(|_| ReceiveError::NotConnected)
        };
        if self.state.is_processed(d.message_id)? {
            ack(self)?;
            return Ok(Event::Duplicate);
        }
        let (commit, event) = self.process(d.message_id, &d.envelope)?;
        self.state.commit_received(commit)?;
        ack(self)?;
        if let Event::Message {
            from,
            id,
            request: false,
        } = &event
        {
            // Best effort: a failure leaves the receipt in the outbox.
            if let Err(e) = self
                .send_content(*from, &Content::DeliveryReceipt(vec![*id]), None)
                .await
            {
                tracing::debug!(error = %e, "delivery receipt queued");
            }
        }
        Ok(event)
    }

    fn process(
        &mut self,
        relay_message_id: u64,
        envelope: &[u8],
    ) -> Result<(ReceivedCommit, Event), StateError> {
        let mut commit = ReceivedCommit {
            relay_message_id: Some(relay_message_id),
            ..ReceivedCommit::default()
        };
        let dropped = |commit| Ok((commit, Event::Dropped));
        let Ok(envelope) = SealedEnvelope::decode(envelope) else {
            return dropped(commit);
        };
        let Ok(opened) = sealed_sender::open(&self.identity, self.address(), &envelope) else {
            return dropped(commit);
        };
        let sender = opened.sender_address;
        let from = sender.account;
        if opened.sender_identity.account_id() != from {
            return dropped(commit);
        }
        let contact = self.state.contact(from)?;
        let request = match &contact {
            Some(c) if c.account.identity_key().ok() != Some(opened.sender_identity) => {
                let mut flagged = c.clone();
                flagged.key_changed = true;
                commit.contact = Some(flagged);
                return Ok((commit, Event::KeyMismatch { from }));
            }
            Some(c) => !c.accepted,
            None => true,
        };
        let Some((session, plaintext)) = self.decrypt(
            sender,
            &opened.sender_identity,
            &opened.message,
            &mut commit,
        )?
        else {
            return dropped(commit);
        };
        commit.session = Some((sender, session.to_bytes()));
        if contact.is_none() {
            commit.contact = Some(Contact {
                account: from,
                username: None,
                accepted: false,
                key_changed: false,
            });
        }
        let Ok(content) = Content::decode(&plaintext) else {
            return Ok((commit, Event::Dropped));
        };
        let event = match content {
            Content::Text {
                id,
                sent_at_ms,
                text,
            } => {
                if self.state.has_message(from, id)? {
                    Event::Duplicate
                } else {
                    commit.message = Some(StoredMessage {
                        peer: from,
                        outgoing: false,
                        id,
                        sent_at_ms,
                        text,
                        delivered: false,
                        read: false,
                    });
                    Event::Message { from, id, request }
                }
            }
            Content::DeliveryReceipt(ids) => {
                commit.receipts = Some((from, ids.clone(), false));
                Event::Delivered { from, ids }
            }
            Content::ReadReceipt(ids) => {
                commit.receipts = Some((from, ids.clone(), true));
                Event::Read { from, ids }
            }
            Content::Typing(started) => Event::Typing { from, started },
            Content::DisappearingTimer { id, seconds, .. } => {
                commit.timer = Some((from, id, seconds));
                Event::TimerChanged { from, seconds }
            }
        };
        Ok((commit, event))
    }

    /// Decrypts with the existing session, or starts a responder session for a PreKey
    /// message. `Ok(None)` when the message cannot be decrypted.
    fn decrypt(
        &mut self,
        sender: Address,
        sender_identity: &IdentityPublicKey,
        message: &CiphertextMessage,
        commit: &mut ReceivedCommit,
    ) -> Result<Option<Decrypted>, StateError> {
        if let Some(bytes) = self.state.session(sender)? {
            let mut session = Session::from_bytes(&bytes).map_err(|_| StateError)?;
            if let Ok(pt) = session.decrypt(&mut OsRng, message) {
                return Ok(Some((session, pt)));
            }
        }
        let CiphertextMessage::PreKey(p) = message else {
            return Ok(None);
        };
        let Some(signed) = self.state.signed_prekey(p.signed_prekey_id)? else {
            return Ok(None);
        };
        let signed = SignedPreKeySecret::from_bytes(&signed).map_err(|_| StateError)?;
        let Some(kem) = self.state.kem_prekey(p.kem_prekey_id)? else {
            return Ok(None);
        };
        let kem = KemPreKeySecret::from_bytes(&kem).map_err(|_| StateError)?;
        let one_time = match p.one_time_prekey_id {
            Some(id) => match self.state.one_time_prekey(id)? {
                Some(b) => Some(OneTimePreKeySecret::from_bytes(&b).map_err(|_| StateError)?),
                None => return Ok(None),
            },
            None => None,
        };
        let keys = ResponderPreKeys {
            signed_prekey: &signed,
            one_time_prekey: one_time.as_ref(),
            kem_prekey: &kem,
        };
        match Session::respond(
            &mut OsRng,
            &self.identity,
            self.address(),
            sender,
            sender_identity,
            p,
            keys,
        ) {
            Ok((session, pt)) => {
                commit.consumed_one_time_prekey = p.one_time_prekey_id;
                if kem.kind() == KemPreKeyKind::OneTime {
                    commit.consumed_kem_prekey = Some(kem.id());
                }
                Ok(Some((session, pt)))
            }
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prekey_encodings_round_trip() {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let s = SignedPreKeySecret::generate(&mut OsRng, &id, 7).public();
        assert_eq!(decode_signed(&encode_signed(&s)), Some(s.clone()));
        assert_eq!(encode_signed(&s).len(), 100);
        let o = OneTimePreKeySecret::generate(&mut OsRng, 8).public();
        assert_eq!(decode_one_time(&encode_one_time(&o)), Some(o.clone()));
        let k = KemPreKeySecret::generate(&mut OsRng, &id, 9, KemPreKeyKind::OneTime).public();
        assert_eq!(encode_kem(&k).len(), 1253);
        assert_eq!(decode_kem(&encode_kem(&k)), Some(k));
        assert_eq!(decode_signed(&[0; 99]), None);
        assert_eq!(decode_kem(&[0; 10]), None);
    }

    /// The largest plaintext the protocol accepts, sent as the largest message form (a
    /// `PreKeyMessage`), seals to an envelope the relay accepts; one byte more is refused by
    /// `encrypt` with a typed error.
    #[test]
    fn largest_message_fits_relay_envelope_limit() {
        assert_eq!(sealed_sender::MAX_ENVELOPE_LEN, wire::MAX_ENVELOPE_LEN);
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = IdentityKeyPair::generate(&mut OsRng);
        let alice_addr = Address::new(alice.public().account_id().0, PRIMARY_DEVICE);
        let bob_addr = Address::new(bob.public().account_id().0, PRIMARY_DEVICE);
        let bundle = PreKeyBundle {
            address: bob_addr,
            identity: bob.public(),
            signed_prekey: SignedPreKeySecret::generate(&mut OsRng, &bob, 1).public(),
            one_time_prekey: Some(OneTimePreKeySecret::generate(&mut OsRng, 2).public()),
            kem_prekey: KemPreKeySecret::generate(&mut OsRng, &bob, 3, KemPreKeyKind::OneTime)
                .public(),
        };
        let verified = bundle.verify(&bob.public()).unwrap();
        let mut session = Session::initiate(&mut OsRng, &alice, alice_addr, &verified).unwrap();
        let max = sotto_protocol::padding::MAX_PLAINTEXT;
        assert_eq!(max, 65_535);
        assert_eq!(
            session.encrypt(&vec![0xAB; max + 1]).unwrap_err(),
            EncryptError::TooLarge
        );
        let message = session.encrypt(&vec![0xAB; max]).unwrap();
        assert!(matches!(message, CiphertextMessage::PreKey(_)));
        let envelope = sealed_sender::seal(
            &mut OsRng,
            &alice,
            alice_addr,
            &bob.public(),
            bob_addr,
            &message,
        )
        .unwrap();
        let encoded = envelope.encode();
        assert!(
            encoded.len() <= wire::MAX_ENVELOPE_LEN,
            "{} > {}",
            encoded.len(),
            wire::MAX_ENVELOPE_LEN
        );
        assert!(encoded.len() <= sealed_sender::MAX_ENVELOPE_LEN);
        assert_eq!(SealedEnvelope::decode(&encoded).unwrap(), envelope);
    }
}
