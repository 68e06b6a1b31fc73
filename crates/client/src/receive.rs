//! The receive pipeline (docs/CLIENT.md): dedupe by relay id → open the sealed envelope →
//! check the sender → decrypt → dedupe by client message id → commit everything in one
//! transaction → acknowledge. A crash before the acknowledgement means a redelivery, which
//! the dedupe steps make invisible. Expired disappearing messages are deleted on the way.

use std::time::Duration;

use rand_core::OsRng;
use sotto_protocol::{
    AccountId, Address, CiphertextMessage, IdentityPublicKey, KemPreKeyKind, KemPreKeySecret,
    OneTimePreKeySecret, PreKeyReplayTag, Responded, ResponderPreKeys, SealedEnvelope, Session,
    SignedPreKeySecret, sealed_sender,
};
use sotto_relay_wire::{self as wire, Push};
use sotto_store::{
    Contact, DeliveryState, Direction, MessageRequest, NewMessage, PrekeyKind, QueryError, Store,
    Verification,
};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::content::{ClientMessageId, Content};
use crate::engine::{Client, Connections, PRIMARY_DEVICE, SetupError};
use crate::privacy::MessageRequests;
use crate::relay::ConnectError;
use crate::state::{StateError, db_account, db_address, now_ms, relay_id_bytes};

/// Receiving failed; nothing was acknowledged.
#[derive(Debug, Error)]
pub enum ReceiveError {
    /// Local state failed (the envelope will be redelivered).
    #[error(transparent)]
    State(#[from] StateError),
    /// Not connected: [`Client::connect`] was never called or [`Client::disconnect`] was.
    #[error("not connected")]
    NotConnected,
    /// Reconnecting after a lost connection failed for good (the relay refused this
    /// account, or its certificate is no longer trusted); automatic reconnection stopped.
    #[error("reconnecting failed: {0}")]
    Reconnect(ConnectError),
}

impl From<sotto_store::QueryError> for ReceiveError {
    fn from(e: sotto_store::QueryError) -> Self {
        Self::State(e.into())
    }
}

/// What the receive pipeline produced. Message text is read from the profile, never carried
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new text message was stored.
    Message {
        /// The contact (stable local id).
        contact: sotto_store::AccountId,
        /// The stored message.
        message: sotto_store::MessageId,
        /// Sender is not an accepted contact (a message request).
        request: bool,
        /// The sender's identity key differs from the one known for this username: the
        /// contact is now marked `Changed`.
        key_changed: bool,
    },
    /// The contact received our messages.
    Delivered {
        /// Contact.
        contact: sotto_store::AccountId,
        /// Our message ids.
        ids: Vec<ClientMessageId>,
    },
    /// The contact read our messages.
    Read {
        /// Contact.
        contact: sotto_store::AccountId,
        /// Our message ids.
        ids: Vec<ClientMessageId>,
    },
    /// Typing indicator.
    Typing {
        /// Contact.
        contact: sotto_store::AccountId,
        /// Started (true) or stopped.
        started: bool,
    },
    /// The contact changed the conversation's disappearing timer.
    TimerChanged {
        /// Contact.
        contact: sotto_store::AccountId,
        /// New value in seconds (0 = off).
        seconds: u32,
    },
    /// Disappearing messages whose time ran out were deleted.
    Expired {
        /// The deleted messages.
        messages: Vec<sotto_store::ExpiredMessage>,
    },
    /// A redelivery or repeated message: nothing new to show.
    Duplicate,
    /// An envelope that could not be opened or decrypted, whose sender lied about its
    /// account, or from a blocked sender; acknowledged and discarded.
    Dropped,
    /// The relay delivered the whole queue.
    QueueDrained,
    /// The relay reported low prekey stock and we uploaded more.
    PrekeysReplenished,
    /// The relay reported low prekey stock but the upload failed (connection lost); call
    /// [`Client::top_up_prekeys`] after reconnecting.
    PrekeysTopUpFailed,
    /// The authenticated connection dropped; the pump is reconnecting in the background
    /// ([`Client::is_connected`] is false until [`Event::Reconnected`]).
    ConnectionLost,
    /// The connection is back; queued messages were flushed and prekeys topped up.
    Reconnected,
    /// The search index caught up with the messages restored from a backup: search covers
    /// every message again (until then it finds only the newest part; see
    /// [`Client::search_index_pending`]).
    SearchIndexReady,
}

/// Messages added to the search index per pump turn while a backup's messages are indexed
/// (docs/CLIENT.md, "Search after a restore"): one transaction of a few tens of
/// milliseconds, so pushes and the front end's own work wait at most that long.
pub const SEARCH_INDEX_BATCH: u32 = 5000;

/// Something [`Client::next_incoming`] picked up for [`Client::process`] to handle. Opaque;
/// its `Debug` names only the kind (never envelope bytes).
pub struct Incoming(Kind);

enum Kind {
    Push(Push),
    ExpiryDue,
    /// The push stream of connection number `generation` ended.
    Closed(u64),
    /// The background reconnection finished.
    Reconnected(Box<Result<Connections, ConnectError>>),
    /// Time for the hourly signed-prekey check.
    Upkeep,
    /// Delivery receipts are owed for messages already reported.
    SendReceipts,
    /// Messages restored from a backup still wait for the search index.
    IndexSearch,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Kind::Push(Push::Envelope(_)) => "Envelope",
            Kind::Push(Push::QueueDrained) => "QueueDrained",
            Kind::Push(Push::PrekeysLow { .. }) => "PrekeysLow",
            Kind::Push(Push::Challenge { .. }) => "Challenge",
            Kind::ExpiryDue => "ExpiryDue",
            Kind::Closed(_) => "Closed",
            Kind::Reconnected(_) => "Reconnected",
            Kind::Upkeep => "Upkeep",
            Kind::SendReceipts => "SendReceipts",
            Kind::IndexSearch => "IndexSearch",
        };
        f.debug_tuple("Incoming").field(&kind).finish()
    }
}

/// Who a received text belongs to.
enum Sender {
    Known(sotto_store::AccountId),
    New(Box<Contact>),
    /// A contact known by username now writes from a new identity key.
    Rekeyed {
        contact: sotto_store::AccountId,
        key: AccountId,
    },
}

enum Action {
    Drop,
    Duplicate,
    Text {
        sender: Sender,
        id: ClientMessageId,
        sent_at_ms: u64,
        expire_secs: u32,
        text: Zeroizing<String>,
        request: bool,
    },
    Receipt {
        contact: sotto_store::AccountId,
        ids: Vec<ClientMessageId>,
        read: bool,
    },
    Typing {
        contact: sotto_store::AccountId,
        started: bool,
    },
    Timer {
        contact: sotto_store::AccountId,
        seconds: u32,
    },
}

/// Everything one envelope changes; committed in one transaction.
struct Plan {
    relay_id: [u8; 8],
    session: Option<(Address, Zeroizing<Vec<u8>>)>,
    consumed_one_time: Option<u32>,
    consumed_kem: Option<u32>,
    replay_tag: Option<PreKeyReplayTag>,
    action: Action,
}

struct Decrypted {
    session: Session,
    plaintext: Zeroizing<Vec<u8>>,
    consumed_one_time: Option<u32>,
    consumed_kem: Option<u32>,
    replay_tag: Option<PreKeyReplayTag>,
}

/// Settings key holding the replay tags (docs/PROTOCOL.md, section 5) of the session starts
/// accepted with signed prekey `id` and no one-time prekey: their 32-byte digests,
/// concatenated. Delete it together with that signed prekey.
pub(crate) fn replay_tags_key(signed_prekey_id: u32) -> String {
    format!("client.prekey_replay.{signed_prekey_id}")
}

fn replay_tag_seen(store: &Store, tag: &PreKeyReplayTag) -> Result<bool, QueryError> {
    Ok(store
        .setting(&replay_tags_key(tag.signed_prekey_id))?
        .is_some_and(|v| v.chunks_exact(32).any(|d| d == tag.digest)))
}

fn record_replay_tag(store: &Store, tag: &PreKeyReplayTag) -> Result<(), QueryError> {
    let key = replay_tags_key(tag.signed_prekey_id);
    let mut digests = store.setting(&key)?.unwrap_or_default();
    if !digests.chunks_exact(32).any(|d| d == tag.digest) {
        digests.extend_from_slice(&tag.digest);
        store.put_setting(&key, &digests)?;
    }
    Ok(())
}

impl Client {
    /// Whether messages restored from a backup are still missing from the search index
    /// (search finds only the newest of them meanwhile). The event pump indexes them
    /// [`SEARCH_INDEX_BATCH`] at a time and reports [`Event::SearchIndexReady`] when done;
    /// the progress is kept in the profile, so a restart continues where it stopped.
    pub fn search_index_pending(&self) -> Result<bool, StateError> {
        Ok(self.store.search_backlog_pending()?)
    }

    /// Indexes every message still missing from the search index now (for a front end that
    /// searches without running the event pump, such as a one-shot command).
    pub fn finish_search_index(&mut self) -> Result<(), StateError> {
        Ok(self.store.finish_search_backlog(SEARCH_INDEX_BATCH)?)
    }

    /// Deletes messages whose disappearing timer ran out (from the database and the search
    /// index) and returns them.
    pub fn expire_due(&mut self) -> Result<Vec<sotto_store::ExpiredMessage>, StateError> {
        Ok(self.store.delete_expired(now_ms())?)
    }

    /// Waits up to `wait` for the next thing the pump has to handle: a relay push, a
    /// disappearing message whose time ran out, the connection closing or coming back, the
    /// hourly signed-prekey check (crate::rotation), or, after a backup import, the next
    /// batch of messages for the search index (returned at once, behind anything already
    /// waiting, until [`Event::SearchIndexReady`]).
    /// `Ok(None)` on timeout. Pass what it returns to [`process`](Self::process).
    ///
    /// Once [`connect`](Self::connect) succeeded, a lost connection is restored by a
    /// background task (backoff with jitter, 250 ms doubling to 30 s); this call never waits
    /// longer than `wait` for it, and [`process`](Self::process) reports
    /// [`Event::ConnectionLost`] and [`Event::Reconnected`]. `Err(NotConnected)` only when
    /// not connected at all (never connected, or after [`disconnect`](Self::disconnect)).
    ///
    /// **Cancel-safe.** It only awaits the push channel and a timer and changes nothing in
    /// the profile or the connection, so it can be a branch of `tokio::select!`: if another
    /// branch wins, the push it was waiting for stays in the channel for the next call.
    /// Every returned [`Incoming`] should be processed; one dropped unprocessed is not lost
    /// for good when it is an envelope (it was not acknowledged, so the relay pushes it again
    /// on the next connection) but other pushes (`QueueDrained`, `PrekeysLow`) are.
    pub async fn next_incoming(
        &mut self,
        wait: Duration,
    ) -> Result<Option<Incoming>, ReceiveError> {
        if !self.owed_receipts.is_empty() && self.auth.is_some() {
            // A push already waiting goes first, so a burst is acknowledged by one receipt.
            if let Some(p) = self.pushes.as_mut().and_then(|p| p.try_recv().ok()) {
                return Ok(Some(Incoming(Kind::Push(p))));
            }
            return Ok(Some(Incoming(Kind::SendReceipts)));
        }
        let now = now_ms();
        let wait = match self.store.next_expiry()? {
            Some(at) if at <= now => return Ok(Some(Incoming(Kind::ExpiryDue))),
            Some(at) => wait.min(Duration::from_millis(
                u64::try_from(at.saturating_sub(now)).unwrap_or(0),
            )),
            None => wait,
        };
        let generation = self.generation;
        let upkeep_at = self.next_upkeep;
        // A backup's messages waiting for the search index are indexed one batch per turn,
        // after whatever is already waiting (a push, the reconnection's outcome, upkeep).
        let index_search = self.store.search_backlog_pending()?;
        if let Some(pushes) = self.pushes.as_mut() {
            let upkeep_in = upkeep_at.map(|at| at.saturating_duration_since(Instant::now()));
            if upkeep_in.is_some_and(|d| d.is_zero()) {
                return Ok(Some(Incoming(Kind::Upkeep)));
            }
            if index_search {
                return Ok(Some(Incoming(match pushes.try_recv() {
                    Ok(p) => Kind::Push(p),
                    Err(mpsc::error::TryRecvError::Disconnected) => Kind::Closed(generation),
                    Err(mpsc::error::TryRecvError::Empty) => Kind::IndexSearch,
                })));
            }
            let wait = upkeep_in.map_or(wait, |d| wait.min(d));
            return Ok(match tokio::time::timeout(wait, pushes.recv()).await {
                Err(_) if self.expiry_due()? => Some(Incoming(Kind::ExpiryDue)),
                Err(_) => upkeep_at
                    .is_some_and(|at| at <= Instant::now())
                    .then_some(Incoming(Kind::Upkeep)),
                Ok(None) => Some(Incoming(Kind::Closed(generation))),
                Ok(Some(p)) => Some(Incoming(Kind::Push(p))),
            });
        }
        let reconnect = self.reconnect.as_mut().ok_or(ReceiveError::NotConnected)?;
        if index_search {
            return Ok(Some(Incoming(match reconnect.result.try_recv() {
                Ok(outcome) => Kind::Reconnected(Box::new(outcome)),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    Kind::Reconnected(Box::new(Err(ConnectError::Closed)))
                }
                Err(mpsc::error::TryRecvError::Empty) => Kind::IndexSearch,
            })));
        }
        Ok(
            match tokio::time::timeout(wait, reconnect.result.recv()).await {
                Err(_) => self.expiry_due()?.then_some(Incoming(Kind::ExpiryDue)),
                // The task ended without a result (it cannot, short of a bug): start over.
                Ok(outcome) => Some(Incoming(Kind::Reconnected(Box::new(
                    outcome.unwrap_or(Err(ConnectError::Closed)),
                )))),
            },
        )
    }

    /// Handles what [`next_incoming`](Self::next_incoming) returned: decrypts and commits an
    /// envelope (then acknowledges it and owes a delivery receipt, sent by the next pump
    /// turn), sends owed receipts, deletes expired messages, tops up prekeys. `Ok(None)` when
    /// there is nothing to report.
    ///
    /// **Not cancel-safe by design, but safe to drop:** run it to completion (do not race it
    /// in `select!`). If it is dropped anyway nothing is corrupted: an envelope either was
    /// committed in one transaction or was not, and an unacknowledged one is redelivered on
    /// the next connection, where the dedupe steps hide a repeat.
    pub async fn process(&mut self, incoming: Incoming) -> Result<Option<Event>, ReceiveError> {
        let push = match incoming.0 {
            Kind::Push(p) => p,
            Kind::ExpiryDue => {
                let expired = self.expire_due()?;
                return Ok((!expired.is_empty()).then_some(Event::Expired { messages: expired }));
            }
            Kind::Closed(generation) => {
                // Stale news (the caller reconnected or disconnected meanwhile) changes nothing.
                if generation != self.generation || self.pushes.is_none() {
                    return Ok(None);
                }
                tracing::info!("relay connection lost; reconnecting");
                self.start_reconnect();
                return Ok(Some(Event::ConnectionLost));
            }
            Kind::Reconnected(outcome) => return self.reconnected(*outcome).await,
            Kind::Upkeep => {
                self.upkeep().await;
                return Ok(None);
            }
            Kind::SendReceipts => {
                self.send_owed_receipts().await;
                return Ok(None);
            }
            Kind::IndexSearch => {
                let more = self.store.index_search_backlog(SEARCH_INDEX_BATCH)?;
                return Ok((!more).then_some(Event::SearchIndexReady));
            }
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

    /// Waits up to `wait` for the next event and processes it: [`next_incoming`] then
    /// [`process`]. `Ok(None)` on timeout. Not cancel-safe (the processing part is not); an
    /// event loop that also waits for other things uses the two halves.
    ///
    /// [`next_incoming`]: Self::next_incoming
    /// [`process`]: Self::process
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, ReceiveError> {
        match self.next_incoming(wait).await? {
            Some(incoming) => self.process(incoming).await,
            None => Ok(None),
        }
    }

    async fn reconnected(
        &mut self,
        outcome: Result<Connections, ConnectError>,
    ) -> Result<Option<Event>, ReceiveError> {
        if self.reconnect.is_none() {
            // `connect` or `disconnect` was called meanwhile; drop the late connections.
            return Ok(None);
        }
        match outcome {
            Ok(c) => {
                self.reconnect = None;
                self.install(c);
                tracing::info!("relay connection restored");
                // Best effort: what fails here is retried by the next flush or top-up.
                match self.flush_outbox().await {
                    Ok(n) => tracing::debug!(sent = n, "outbox flushed after reconnecting"),
                    Err(e) => tracing::warn!(error = %e, "outbox not flushed after reconnecting"),
                }
                if let Err(e) = self.top_up_prekeys().await {
                    tracing::warn!(error = %e, "prekey top-up after reconnecting failed");
                }
                self.upkeep().await;
                Ok(Some(Event::Reconnected))
            }
            Err(e) if e.is_permanent() => {
                self.reconnect = None;
                Err(ReceiveError::Reconnect(e))
            }
            Err(_) => {
                self.start_reconnect();
                Ok(None)
            }
        }
    }

    /// Whether a disappearing message's time has run out.
    fn expiry_due(&self) -> Result<bool, ReceiveError> {
        Ok(self.store.next_expiry()?.is_some_and(|at| at <= now_ms()))
    }

    fn ack(&self, message_id: u64) -> Result<(), ReceiveError> {
        self.auth
            .as_ref()
            .ok_or(ReceiveError::NotConnected)?
            .ack(message_id)
            .map_err(|_| ReceiveError::NotConnected)
    }

    async fn receive(&mut self, d: wire::Delivery) -> Result<Event, ReceiveError> {
        let relay_id = relay_id_bytes(d.message_id);
        if self.store.is_relay_processed(&relay_id)? {
            self.ack(d.message_id)?;
            return Ok(Event::Duplicate);
        }
        let plan = self.plan(relay_id, &d.envelope).await?;
        let event = self.commit(plan)?;
        // Committed: a lost acknowledgement only means a redelivery, which the dedupe makes
        // invisible, so the event is still reported.
        if self.ack(d.message_id).is_err() {
            tracing::debug!("acknowledgement not sent; the relay will redeliver");
        }
        if let Event::Message {
            contact,
            message,
            request: false,
            ..
        } = &event
            && self.privacy()?.delivery_receipts
            && let Some(id) = self.store.message(*message)?.and_then(|m| m.client_id)
        {
            self.owed_receipts.push((*contact, id));
        }
        Ok(event)
    }

    /// Opens, checks and decrypts one envelope and decides what it changes (nothing is
    /// written yet).
    async fn plan(&mut self, relay_id: [u8; 8], envelope: &[u8]) -> Result<Plan, ReceiveError> {
        let mut plan = Plan {
            relay_id,
            session: None,
            consumed_one_time: None,
            consumed_kem: None,
            replay_tag: None,
            action: Action::Drop,
        };
        let Ok(envelope) = SealedEnvelope::decode(envelope) else {
            return Ok(plan);
        };
        let Ok(opened) = sealed_sender::open(&self.identity, self.address(), &envelope) else {
            return Ok(plan);
        };
        let sender = opened.sender_address;
        let from = sender.account;
        if opened.sender_identity.account_id() != from {
            return Ok(plan);
        }
        let contact = self.store.contact_by_identity_key(&from.0)?;
        if contact.as_ref().is_some_and(|c| c.blocked) {
            return Ok(plan);
        }
        let Some(d) = self.decrypt(sender, &opened.sender_identity, &opened.message)? else {
            return Ok(plan);
        };
        plan.session = Some((sender, d.session.to_bytes()));
        plan.consumed_one_time = d.consumed_one_time;
        plan.consumed_kem = d.consumed_kem;
        plan.replay_tag = d.replay_tag;
        let Ok(content) = Content::decode(&d.plaintext) else {
            return Ok(plan);
        };
        plan.action = match (content, contact) {
            (
                Content::Text {
                    id,
                    sent_at_ms,
                    expire_secs,
                    sender_username,
                    text,
                },
                known,
            ) => {
                let (sender, request) = match known {
                    Some(c) => {
                        let conv = self.store.conversation_with(&c.account, now_ms())?;
                        if self
                            .store
                            .message_by_client_id(conv, Direction::Incoming, &id)?
                            .is_some()
                        {
                            plan.action = Action::Duplicate;
                            return Ok(plan);
                        }
                        (
                            Sender::Known(c.account),
                            c.request != MessageRequest::Accepted,
                        )
                    }
                    None => match self.stranger(from, &sender_username).await? {
                        Some(found) => found,
                        None => return Ok(plan),
                    },
                };
                Action::Text {
                    sender,
                    id,
                    sent_at_ms,
                    expire_secs,
                    text: Zeroizing::new(text),
                    request,
                }
            }
            // Control messages from strangers are ignored.
            (_, None) => Action::Drop,
            (Content::DeliveryReceipt(ids), Some(c)) => Action::Receipt {
                contact: c.account,
                ids,
                read: false,
            },
            (Content::ReadReceipt(ids), Some(c)) => Action::Receipt {
                contact: c.account,
                ids,
                read: true,
            },
            (Content::Typing(started), Some(c)) => Action::Typing {
                contact: c.account,
                started,
            },
            (Content::DisappearingTimer { seconds, .. }, Some(c)) => Action::Timer {
                contact: c.account,
                seconds,
            },
        };
        Ok(plan)
    }

    /// Decides who an unknown sender is. A claimed username counts only if the relay's
    /// directory maps it to the sender's key; if a contact already has that username, this
    /// is that contact with a new key. `None` (drop the message) when message requests are
    /// turned off or that contact is blocked.
    async fn stranger(
        &mut self,
        from: AccountId,
        claimed: &str,
    ) -> Result<Option<(Sender, bool)>, ReceiveError> {
        if self.privacy()?.message_requests == MessageRequests::Block {
            return Ok(None);
        }
        // A key a contact used before moving to another one (a contact's id is its first
        // key): it is no longer theirs, and taking it for a new person would collide.
        if self.store.contact(&db_account(from))?.is_some() {
            return Ok(None);
        }
        let verified = !claimed.is_empty() && self.lookup(claimed).await.ok() == Some(from);
        if verified && let Some(c) = self.store.contact_by_username(claimed)? {
            // A blocked person stays blocked under a new key (a re-registration, or a relay
            // answering the look-up with another key).
            if c.blocked {
                return Ok(None);
            }
            let request = c.request != MessageRequest::Accepted;
            return Ok(Some((
                Sender::Rekeyed {
                    contact: c.account,
                    key: from,
                },
                request,
            )));
        }
        let contact = Contact {
            account: db_account(from),
            device_id: PRIMARY_DEVICE,
            username: verified.then(|| claimed.to_owned()),
            display_name: None,
            identity_key: from.0.to_vec(),
            verification: Verification::Unverified,
            blocked: false,
            request: MessageRequest::Pending,
        };
        Ok(Some((Sender::New(Box::new(contact)), true)))
    }

    /// Applies a plan in one transaction and returns the event to report.
    fn commit(&mut self, plan: Plan) -> Result<Event, ReceiveError> {
        let now = now_ms();
        self.store.atomically(|s| {
            s.mark_relay_processed(&plan.relay_id, now)?;
            if let Some((addr, session)) = &plan.session {
                s.put_session(&db_address(*addr), session, now)?;
            }
            if let Some(id) = plan.consumed_one_time {
                s.remove_prekey(PrekeyKind::OneTime, id)?;
            }
            if let Some(id) = plan.consumed_kem {
                s.remove_prekey(PrekeyKind::Kem, id)?;
            }
            if let Some(tag) = &plan.replay_tag {
                record_replay_tag(s, tag)?;
            }
            Ok::<_, ReceiveError>(match plan.action {
                Action::Drop => Event::Dropped,
                Action::Duplicate => Event::Duplicate,
                Action::Text {
                    sender,
                    id,
                    sent_at_ms,
                    expire_secs,
                    text,
                    request,
                } => {
                    let (contact, key_changed, sender_account) = match sender {
                        Sender::Known(c) => (c, false, c),
                        Sender::New(c) => {
                            s.add_contact(&c, now)?;
                            (c.account, false, c.account)
                        }
                        Sender::Rekeyed { contact, key } => {
                            s.set_identity_key(&contact, &key.0, now)?;
                            (contact, true, db_account(key))
                        }
                    };
                    let conv = s.conversation_with(&contact, now)?;
                    // Also a contact reached under a new key: the text may already be here.
                    if s.message_by_client_id(conv, Direction::Incoming, &id)?
                        .is_some()
                    {
                        return Ok(Event::Duplicate);
                    }
                    if s.conversation(conv)?.map(|c| c.disappearing_secs) != Some(expire_secs) {
                        s.set_disappearing_timer(conv, expire_secs)?;
                    }
                    let message = s
                        .insert_message(&NewMessage {
                            conversation: conv,
                            direction: Direction::Incoming,
                            sender: sotto_store::Address {
                                account: sender_account,
                                device: PRIMARY_DEVICE,
                            },
                            body: &text,
                            sent_at: i64::try_from(sent_at_ms).unwrap_or(i64::MAX),
                            received_at: Some(now),
                            state: DeliveryState::Delivered,
                            expire_timer_secs: expire_secs,
                            relay_id: None,
                            client_id: Some(&id),
                        })?
                        .ok_or(StateError::corrupt())?;
                    Event::Message {
                        contact,
                        message,
                        request,
                        key_changed,
                    }
                }
                Action::Receipt { contact, ids, read } => {
                    let conv = s.conversation_with(&contact, now)?;
                    let state = if read {
                        DeliveryState::Read
                    } else {
                        DeliveryState::Delivered
                    };
                    s.mark_outgoing(conv, &ids, state, now)?;
                    if read {
                        Event::Read { contact, ids }
                    } else {
                        Event::Delivered { contact, ids }
                    }
                }
                Action::Typing { contact, started } => Event::Typing { contact, started },
                Action::Timer { contact, seconds } => {
                    let conv = s.conversation_with(&contact, now)?;
                    s.set_disappearing_timer(conv, seconds)?;
                    Event::TimerChanged { contact, seconds }
                }
            })
        })
    }

    /// Decrypts with the existing session, or starts a responder session for a PreKey
    /// message. `Ok(None)` when the message cannot be decrypted.
    fn decrypt(
        &mut self,
        sender: Address,
        sender_identity: &IdentityPublicKey,
        message: &CiphertextMessage,
    ) -> Result<Option<Decrypted>, StateError> {
        if let Some(bytes) = self.store.session(&db_address(sender))? {
            let mut session = Session::from_bytes(&bytes).map_err(|_| StateError::corrupt())?;
            if let Ok(plaintext) = session.decrypt(&mut OsRng, message) {
                return Ok(Some(Decrypted {
                    session,
                    plaintext,
                    consumed_one_time: None,
                    consumed_kem: None,
                    replay_tag: None,
                }));
            }
        }
        let CiphertextMessage::PreKey(p) = message else {
            return Ok(None);
        };
        let corrupt = |_| StateError::corrupt();
        let Some(signed) = self.store.prekey(PrekeyKind::Signed, p.signed_prekey_id)? else {
            return Ok(None);
        };
        let signed = SignedPreKeySecret::from_bytes(&signed).map_err(corrupt)?;
        let Some(kem) = self.store.prekey(PrekeyKind::Kem, p.kem_prekey_id)? else {
            return Ok(None);
        };
        let kem = KemPreKeySecret::from_bytes(&kem).map_err(corrupt)?;
        let one_time = match p.one_time_prekey_id {
            Some(id) => match self.store.prekey(PrekeyKind::OneTime, id)? {
                Some(b) => Some(OneTimePreKeySecret::from_bytes(&b).map_err(corrupt)?),
                None => return Ok(None),
            },
            None => None,
        };
        // A session start without a one-time prekey that was accepted before is a replay.
        let seen = match p.replay_tag() {
            Some(tag) => replay_tag_seen(&self.store, &tag)?,
            None => false,
        };
        let keys = ResponderPreKeys {
            signed_prekey: &signed,
            one_time_prekey: one_time.as_ref(),
            kem_prekey: &kem,
            replay_seen: &|_| seen,
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
            Ok(Responded {
                session,
                plaintext,
                replay_tag,
            }) => Ok(Some(Decrypted {
                session,
                plaintext,
                consumed_one_time: p.one_time_prekey_id,
                consumed_kem: (kem.kind() == KemPreKeyKind::OneTime).then(|| kem.id()),
                replay_tag,
            })),
            Err(_) => Ok(None),
        }
    }
}
