//! The persistence the engine needs, as a narrow trait. The SQLCipher-backed implementation
//! comes from `sotto-store`; [`MemoryState`] is for tests and ephemeral use.
//!
//! Secrets cross the trait in their `sotto-protocol` storage encodings (zeroizing buffers).
//! Every method that changes more than one thing is meant to be **one transaction**: the
//! receive pipeline calls [`ClientState::commit_received`] and acknowledges the relay only
//! after it returned `Ok`.

use std::collections::{BTreeMap, HashMap, HashSet};

use sotto_protocol::{AccountId, Address};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::content::ClientMessageId;

/// Identity key pair storage bytes and the device id.
pub type StoredIdentity = (Zeroizing<Vec<u8>>, u32);

/// The backing store failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("client state storage failed")]
pub struct StateError;

/// What the user knows about another account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The account (its identity key).
    pub account: AccountId,
    /// Username it was added by, if any.
    pub username: Option<String>,
    /// Accepted by the user (added by username); `false` for message requests.
    pub accepted: bool,
    /// The username now resolves to a different account than the pinned one.
    pub key_changed: bool,
}

/// A stored conversation item.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The other party.
    pub peer: AccountId,
    /// Sent by us.
    pub outgoing: bool,
    /// Client message id.
    pub id: ClientMessageId,
    /// Sender's timestamp.
    pub sent_at_ms: u64,
    /// Text.
    pub text: String,
    /// Delivered to the peer (outgoing only).
    pub delivered: bool,
    /// Read by the peer (outgoing only).
    pub read: bool,
}

impl std::fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("outgoing", &self.outgoing)
            .field("delivered", &self.delivered)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

/// An envelope waiting for the relay to accept it. It is sealed once (the ratchet advanced
/// when it was created) and retried byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Local sequence number (send order).
    pub seq: u64,
    /// Recipient device.
    pub recipient: Address,
    /// The encoded sealed envelope.
    pub envelope: Vec<u8>,
}

/// Everything one received envelope changes, applied atomically.
#[derive(Debug, Clone, Default)]
pub struct ReceivedCommit {
    /// The relay message id, recorded as processed (`None` for local-only changes).
    pub relay_message_id: Option<u64>,
    /// New session state for a peer device, if decryption advanced one.
    pub session: Option<(Address, Zeroizing<Vec<u8>>)>,
    /// One-time X25519 prekey consumed by a session start.
    pub consumed_one_time_prekey: Option<u32>,
    /// One-time ML-KEM prekey consumed by a session start.
    pub consumed_kem_prekey: Option<u32>,
    /// Contact to create or update (message request).
    pub contact: Option<Contact>,
    /// A new message (also records its client message id as seen).
    pub message: Option<StoredMessage>,
    /// Outgoing messages of `peer` to mark delivered / read.
    pub receipts: Option<(AccountId, Vec<ClientMessageId>, bool)>,
    /// New disappearing-timer value for a peer.
    pub timer: Option<(AccountId, ClientMessageId, u32)>,
}

/// The engine's persistence. Implementations must make each method atomic.
pub trait ClientState: Send {
    /// Identity key pair storage bytes and device id, once created.
    fn identity(&self) -> Result<Option<StoredIdentity>, StateError>;
    /// Stores the identity (account creation).
    fn set_identity(&mut self, identity: &[u8], device: u32) -> Result<(), StateError>;
    /// Allocates `count` consecutive fresh prekey ids and returns the first.
    fn allocate_prekey_ids(&mut self, count: u32) -> Result<u32, StateError>;
    /// Stores a signed prekey secret and makes it current.
    fn put_signed_prekey(&mut self, id: u32, secret: &[u8]) -> Result<(), StateError>;
    /// The current signed prekey id.
    fn current_signed_prekey(&self) -> Result<Option<u32>, StateError>;
    /// A signed prekey secret by id (current or retained previous ones).
    fn signed_prekey(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StateError>;
    /// Stores one-time X25519 prekey secrets.
    fn put_one_time_prekeys(
        &mut self,
        keys: &[(u32, Zeroizing<Vec<u8>>)],
    ) -> Result<(), StateError>;
    /// A one-time X25519 prekey secret.
    fn one_time_prekey(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StateError>;
    /// Stores ML-KEM prekey secrets (last-resort or one-time; the kind is inside).
    fn put_kem_prekeys(&mut self, keys: &[(u32, Zeroizing<Vec<u8>>)]) -> Result<(), StateError>;
    /// An ML-KEM prekey secret.
    fn kem_prekey(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StateError>;
    /// The session with a peer device.
    fn session(&self, peer: Address) -> Result<Option<Zeroizing<Vec<u8>>>, StateError>;
    /// Stores a session (a freshly initiated one, before anything was sent).
    fn put_session(&mut self, peer: Address, session: Zeroizing<Vec<u8>>)
    -> Result<(), StateError>;
    /// All contacts.
    fn contacts(&self) -> Result<Vec<Contact>, StateError>;
    /// A contact.
    fn contact(&self, account: AccountId) -> Result<Option<Contact>, StateError>;
    /// Creates or replaces a contact.
    fn put_contact(&mut self, contact: Contact) -> Result<(), StateError>;
    /// Whether a relay message id was already processed.
    fn is_processed(&self, relay_message_id: u64) -> Result<bool, StateError>;
    /// Whether a peer's client message id was already stored.
    fn has_message(&self, peer: AccountId, id: ClientMessageId) -> Result<bool, StateError>;
    /// Applies a received envelope's effects in one transaction.
    fn commit_received(&mut self, commit: ReceivedCommit) -> Result<(), StateError>;
    /// Stores an outgoing envelope with the session state that produced it (and the outgoing
    /// message, if any) in one transaction; returns its outbox sequence number.
    fn commit_outgoing(
        &mut self,
        peer: Address,
        session: Zeroizing<Vec<u8>>,
        envelope: Vec<u8>,
        message: Option<StoredMessage>,
    ) -> Result<u64, StateError>;
    /// Pending outbox items, oldest first.
    fn outbox(&self) -> Result<Vec<OutboxItem>, StateError>;
    /// Removes an item the relay accepted.
    fn remove_outbox(&mut self, seq: u64) -> Result<(), StateError>;
    /// The conversation with a peer, in storage order.
    fn messages(&self, peer: AccountId) -> Result<Vec<StoredMessage>, StateError>;
    /// The disappearing timer of a conversation, seconds (0 = off).
    fn timer(&self, peer: AccountId) -> Result<u32, StateError>;
}

/// In-memory [`ClientState`]. Cloning it snapshots the whole state.
#[derive(Clone, Default)]
pub struct MemoryState {
    identity: Option<StoredIdentity>,
    next_prekey_id: u32,
    signed: BTreeMap<u32, Zeroizing<Vec<u8>>>,
    current_signed: Option<u32>,
    one_time: HashMap<u32, Zeroizing<Vec<u8>>>,
    kem: HashMap<u32, Zeroizing<Vec<u8>>>,
    sessions: HashMap<Address, Zeroizing<Vec<u8>>>,
    contacts: HashMap<AccountId, Contact>,
    processed: HashSet<u64>,
    messages: Vec<StoredMessage>,
    outbox: BTreeMap<u64, OutboxItem>,
    next_seq: u64,
    timers: HashMap<AccountId, u32>,
}

impl std::fmt::Debug for MemoryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryState").finish_non_exhaustive()
    }
}

impl MemoryState {
    /// An empty state.
    pub fn new() -> Self {
        Self {
            next_prekey_id: 1,
            ..Self::default()
        }
    }

    fn mark(&mut self, peer: AccountId, ids: &[ClientMessageId], read: bool) {
        for m in &mut self.messages {
            if m.outgoing && m.peer == peer && ids.contains(&m.id) {
                m.delivered = true;
                m.read |= read;
            }
        }
    }
}

impl ClientState for MemoryState {
    fn identity(&self) -> Result<Option<StoredIdentity>, StateError> {
        Ok(self.identity.clone())
    }
    fn set_identity(&mut self, identity: &[u8], device: u32) -> Result<(), StateError> {
        self.identity = Some((Zeroizing::new(identity.to_vec()), device));
        Ok(())
    }
    fn allocate_prekey_ids(&mut self, count: u32) -> Result<u32, StateError> {
        let first = self.next_prekey_id.max(1);
        self.next_prekey_id = first.checked_add(count).ok_or(StateError)?;
        Ok(first)
    }
    fn put_signed_prekey(&mut self, id: u32, secret: &[u8]) -> Result<(), StateError> {
        self.signed.insert(id, Zeroizing::new(secret.to_vec()));
        self.current_signed = Some(id);
        Ok(())
    }
    fn current_signed_prekey(&self) -> Result<Option<u32>, StateError> {
        Ok(self.current_signed)
    }
    fn signed_prekey(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StateError> {
        Ok(self.signed.get(&id).cloned())
    }
    fn put_one_time_prekeys(
        &mut self,
        keys: &[(u32, Zeroizing<Vec<u8>>)],
    ) -> Result<(), StateError> {
        self.one_time.extend(keys.iter().cloned());
        Ok(())
    }
    fn one_time_prekey(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StateError> {
        Ok(self.one_time.get(&id).cloned())
    }
    fn put_kem_prekeys(&mut self, keys: &[(u32, Zeroizing<Vec<u8>>)]) -> Result<(), StateError> {
        self.kem.extend(keys.iter().cloned());
        Ok(())
    }
    fn kem_prekey(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StateError> {
        Ok(self.kem.get(&id).cloned())
    }
    fn session(&self, peer: Address) -> Result<Option<Zeroizing<Vec<u8>>>, StateError> {
        Ok(self.sessions.get(&peer).cloned())
    }
    fn put_session(
        &mut self,
        peer: Address,
        session: Zeroizing<Vec<u8>>,
    ) -> Result<(), StateError> {
        self.sessions.insert(peer, session);
        Ok(())
    }
    fn contacts(&self) -> Result<Vec<Contact>, StateError> {
        Ok(self.contacts.values().cloned().collect())
    }
    fn contact(&self, account: AccountId) -> Result<Option<Contact>, StateError> {
        Ok(self.contacts.get(&account).cloned())
    }
    fn put_contact(&mut self, contact: Contact) -> Result<(), StateError> {
        self.contacts.insert(contact.account, contact);
        Ok(())
    }
    fn is_processed(&self, relay_message_id: u64) -> Result<bool, StateError> {
        Ok(self.processed.contains(&relay_message_id))
    }
    fn has_message(&self, peer: AccountId, id: ClientMessageId) -> Result<bool, StateError> {
        Ok(self
            .messages
            .iter()
            .any(|m| !m.outgoing && m.peer == peer && m.id == id))
    }
    fn commit_received(&mut self, c: ReceivedCommit) -> Result<(), StateError> {
        if let Some(id) = c.relay_message_id {
            self.processed.insert(id);
        }
        if let Some((addr, s)) = c.session {
            self.sessions.insert(addr, s);
        }
        if let Some(id) = c.consumed_one_time_prekey {
            self.one_time.remove(&id);
        }
        if let Some(id) = c.consumed_kem_prekey {
            self.kem.remove(&id);
        }
        if let Some(contact) = c.contact {
            self.contacts.insert(contact.account, contact);
        }
        if let Some(m) = c.message {
            self.messages.push(m);
        }
        if let Some((peer, ids, read)) = c.receipts {
            self.mark(peer, &ids, read);
        }
        if let Some((peer, _, seconds)) = c.timer {
            self.timers.insert(peer, seconds);
        }
        Ok(())
    }
    fn commit_outgoing(
        &mut self,
        peer: Address,
        session: Zeroizing<Vec<u8>>,
        envelope: Vec<u8>,
        message: Option<StoredMessage>,
    ) -> Result<u64, StateError> {
        self.sessions.insert(peer, session);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.insert(
            seq,
            OutboxItem {
                seq,
                recipient: peer,
                envelope,
            },
        );
        if let Some(m) = message {
            self.messages.push(m);
        }
        Ok(seq)
    }
    fn outbox(&self) -> Result<Vec<OutboxItem>, StateError> {
        Ok(self.outbox.values().cloned().collect())
    }
    fn remove_outbox(&mut self, seq: u64) -> Result<(), StateError> {
        self.outbox.remove(&seq);
        Ok(())
    }
    fn messages(&self, peer: AccountId) -> Result<Vec<StoredMessage>, StateError> {
        Ok(self
            .messages
            .iter()
            .filter(|m| m.peer == peer)
            .cloned()
            .collect())
    }
    fn timer(&self, peer: AccountId) -> Result<u32, StateError> {
        Ok(self.timers.get(&peer).copied().unwrap_or(0))
    }
}
