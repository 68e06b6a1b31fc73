//! Typed queries over the profile database.

use std::fmt;

use rusqlite::types::Type;
use rusqlite::{ErrorCode, OptionalExtension, Row, params};
use zeroize::Zeroizing;

use crate::store::Store;

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// Why a query failed. Never carries message text or secrets.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// SQLite failed.
    #[error("database error (SQLite code {code:?})")]
    Sqlite {
        /// The SQLite error code.
        code: Option<ErrorCode>,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },
}

impl QueryError {
    pub(crate) fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::NotFound => None,
            Self::Sqlite { code, .. } => *code,
        }
    }

    pub(crate) fn into_source(self) -> rusqlite::Error {
        match self {
            Self::NotFound => rusqlite::Error::QueryReturnedNoRows,
            Self::Sqlite { source, .. } => source,
        }
    }
}

impl From<rusqlite::Error> for QueryError {
    fn from(source: rusqlite::Error) -> Self {
        match source {
            rusqlite::Error::QueryReturnedNoRows => Self::NotFound,
            source => Self::Sqlite {
                code: source.sqlite_error_code(),
                source,
            },
        }
    }
}

type Result<T> = std::result::Result<T, QueryError>;

/// A 32-byte account id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountId(pub [u8; 32]);

/// A remote device: account plus device id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// The account.
    pub account: AccountId,
    /// The device within the account.
    pub device: u32,
}

/// Local conversation id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConversationId(pub i64);

/// Local message id (increases in insertion order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub i64);

/// Outbox entry id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutboxId(pub i64);

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            fn code(self) -> i64 { match self { $(Self::$v => $n),+ } }
            #[allow(dead_code)]
            fn from_code(c: i64) -> Option<Self> { match c { $($n => Some(Self::$v),)+ _ => None } }
        }
    };
}

code_enum!(
    /// Whether the user has verified a contact's identity key.
    Verification {
        /// Not verified (trust on first use).
        Unverified = 0,
        /// Verified by safety number or QR code.
        Verified = 1,
        /// The identity key changed since it was last seen or verified.
        Changed = 2,
    }
);
code_enum!(
    /// State of a message request from someone not yet accepted.
    MessageRequest {
        /// Incoming request awaiting the user's decision.
        Pending = 0,
        /// Accepted (or a contact the user added).
        Accepted = 1,
        /// Declined.
        Declined = 2,
    }
);
code_enum!(
    /// How an identity key was verified.
    VerifiedHow {
        /// Not verified: first seen and trusted on first use.
        FirstUse = 0,
        /// Safety numbers compared.
        SafetyNumber = 1,
        /// QR code scanned.
        QrCode = 2,
    }
);
code_enum!(
    /// Kind of own prekey.
    PrekeyKind {
        /// Signed EC prekey.
        Signed = 0,
        /// One-time EC prekey.
        OneTime = 1,
        /// ML-KEM prekey (one-time or last resort).
        Kem = 2,
    }
);
code_enum!(
    /// Message direction.
    Direction {
        /// Received.
        Incoming = 0,
        /// Sent by this device.
        Outgoing = 1,
    }
);
code_enum!(
    /// Delivery state of a message.
    DeliveryState {
        /// Queued, not yet accepted by the relay.
        Pending = 0,
        /// Accepted by the relay.
        Sent = 1,
        /// Delivered to the recipient's device.
        Delivered = 2,
        /// Read.
        Read = 3,
        /// Sending failed.
        Failed = 4,
    }
);

fn enum_col<T>(row: &Row<'_>, idx: usize, f: fn(i64) -> Option<T>) -> rusqlite::Result<T> {
    let v: i64 = row.get(idx)?;
    f(v).ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

fn account_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<AccountId> {
    let v: Vec<u8> = row.get(idx)?;
    v.as_slice().try_into().map(AccountId).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Blob, "account id length".into())
    })
}

/// A contact. `Debug` redacts username and display name.
#[derive(Clone, PartialEq, Eq)]
pub struct Contact {
    /// Account id.
    pub account: AccountId,
    /// Primary device id.
    pub device_id: u32,
    /// Username, if known.
    pub username: Option<String>,
    /// Display name, if known.
    pub display_name: Option<String>,
    /// Current identity public key.
    pub identity_key: Vec<u8>,
    /// Verification state.
    pub verification: Verification,
    /// Blocked by the user.
    pub blocked: bool,
    /// Message-request state.
    pub request: MessageRequest,
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contact")
            .field("account", &self.account)
            .field("device_id", &self.device_id)
            .field("verification", &self.verification)
            .field("blocked", &self.blocked)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// One identity key a contact has used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityKeyRecord {
    /// The public identity key.
    pub key: Vec<u8>,
    /// When it was first seen.
    pub first_seen: Timestamp,
    /// How it was verified.
    pub verified_how: VerifiedHow,
}

/// A conversation with one contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Local id.
    pub id: ConversationId,
    /// The contact.
    pub contact: AccountId,
    /// Disappearing-message timer in seconds (0 = off).
    pub disappearing_secs: u32,
    /// Unread incoming messages.
    pub unread: u32,
    /// Time of the last message.
    pub last_activity: Timestamp,
}

/// A message to insert.
pub struct NewMessage<'a> {
    /// Conversation.
    pub conversation: ConversationId,
    /// Direction.
    pub direction: Direction,
    /// Sending device.
    pub sender: Address,
    /// Text.
    pub body: &'a str,
    /// Sender's timestamp.
    pub sent_at: Timestamp,
    /// When it was received (incoming).
    pub received_at: Option<Timestamp>,
    /// Initial delivery state.
    pub state: DeliveryState,
    /// Disappearing timer in seconds (0 = never).
    pub expire_timer_secs: u32,
    /// The relay's id of the envelope, for dedupe (incoming).
    pub relay_id: Option<&'a [u8]>,
    /// The sender's 16-byte client message id (unique per conversation and direction).
    pub client_id: Option<&'a [u8; 16]>,
}

/// A stored message. `Debug` redacts the body.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Local id.
    pub id: MessageId,
    /// Conversation.
    pub conversation: ConversationId,
    /// Direction.
    pub direction: Direction,
    /// Sending device.
    pub sender: Address,
    /// Text.
    pub body: String,
    /// Sender's timestamp.
    pub sent_at: Timestamp,
    /// When received.
    pub received_at: Option<Timestamp>,
    /// Delivery state.
    pub state: DeliveryState,
    /// Disappearing timer in seconds.
    pub expire_timer_secs: u32,
    /// When it will be deleted (set when the timer starts).
    pub expires_at: Option<Timestamp>,
    /// Relay message id.
    pub relay_id: Option<Vec<u8>>,
    /// The sender's client message id.
    pub client_id: Option<[u8; 16]>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("conversation", &self.conversation)
            .field("direction", &self.direction)
            .field("sent_at", &self.sent_at)
            .field("state", &self.state)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A message deleted by expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiredMessage {
    /// Its id.
    pub id: MessageId,
    /// Its conversation.
    pub conversation: ConversationId,
}

/// A sealed envelope waiting to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// Entry id.
    pub id: OutboxId,
    /// Recipient device.
    pub recipient: Address,
    /// The message it carries, if any.
    pub message: Option<MessageId>,
    /// Sealed envelope bytes (ciphertext).
    pub envelope: Vec<u8>,
    /// Send attempts so far.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: Timestamp,
}

const MESSAGE_COLS: &str = "id, conversation, direction, sender_account, sender_device, body, \
     sent_at, received_at, state, expire_timer, expires_at, relay_id, client_id";

fn message_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId(r.get(0)?),
        conversation: ConversationId(r.get(1)?),
        direction: enum_col(r, 2, Direction::from_code)?,
        sender: Address {
            account: account_col(r, 3)?,
            device: r.get(4)?,
        },
        body: r.get(5)?,
        sent_at: r.get(6)?,
        received_at: r.get(7)?,
        state: enum_col(r, 8, DeliveryState::from_code)?,
        expire_timer_secs: r.get(9)?,
        expires_at: r.get(10)?,
        relay_id: r.get(11)?,
        client_id: r.get(12)?,
    })
}

const CONTACT_COLS: &str = "account_id, device_id, username, display_name, identity_key, verification, blocked, request_state";

fn contact_row(r: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        account: account_col(r, 0)?,
        device_id: r.get(1)?,
        username: r.get(2)?,
        display_name: r.get(3)?,
        identity_key: r.get(4)?,
        verification: enum_col(r, 5, Verification::from_code)?,
        blocked: r.get(6)?,
        request: enum_col(r, 7, MessageRequest::from_code)?,
    })
}

fn conversation_row(r: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(r.get(0)?),
        contact: account_col(r, 1)?,
        disappearing_secs: r.get(2)?,
        unread: r.get(3)?,
        last_activity: r.get(4)?,
    })
}

/// Turns user input into an FTS5 query of quoted terms (so no FTS syntax is interpreted).
fn fts_query(input: &str) -> String {
    input
        .split_whitespace()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn insert_in(tx: &rusqlite::Connection, m: &NewMessage<'_>) -> Result<Option<MessageId>> {
    let now = m.received_at.unwrap_or(m.sent_at);
    if let Some(relay_id) = m.relay_id {
        let fresh = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO processed_relay_ids (relay_id, processed_at) VALUES (?1, ?2)",
            )?
            .execute(params![relay_id, now])?;
        if fresh == 0 {
            return Ok(None);
        }
    }
    tx.prepare_cached(
        "INSERT INTO messages (conversation, direction, sender_account, sender_device, body,
             sent_at, received_at, state, expire_timer, relay_id, client_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        m.conversation.0,
        m.direction.code(),
        &m.sender.account.0[..],
        m.sender.device,
        m.body,
        m.sent_at,
        m.received_at,
        m.state.code(),
        m.expire_timer_secs,
        m.relay_id,
        m.client_id.map(|c| &c[..])
    ])?;
    let id = tx.last_insert_rowid();
    let unread = i64::from(m.direction == Direction::Incoming);
    let n = tx
        .prepare_cached(
            "UPDATE conversations SET unread = unread + ?2, last_activity = max(last_activity, ?3)
             WHERE id = ?1",
        )?
        .execute(params![m.conversation.0, unread, now])?;
    if n == 0 {
        return Err(QueryError::NotFound);
    }
    Ok(Some(MessageId(id)))
}

impl Store {
    // ---- own identity and prekeys ----

    /// Stores the own identity (opaque secret blob), replacing any previous one.
    pub fn set_own_identity(&self, blob: &[u8], now: Timestamp) -> Result<()> {
        self.conn.execute(
            "INSERT INTO own_identity (id, blob, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
            params![blob, now],
        )?;
        Ok(())
    }

    /// The own identity blob, if set.
    pub fn own_identity(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self
            .conn
            .query_row("SELECT blob FROM own_identity WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?
            .map(Zeroizing::new))
    }

    /// Stores an own prekey (opaque secret blob).
    pub fn put_prekey(&self, kind: PrekeyKind, id: u32, blob: &[u8], now: Timestamp) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO own_prekeys (kind, id, blob, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![kind.code(), id, blob, now],
        )?;
        Ok(())
    }

    /// An own prekey.
    pub fn prekey(&self, kind: PrekeyKind, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT blob FROM own_prekeys WHERE kind = ?1 AND id = ?2",
                params![kind.code(), id],
                |r| r.get(0),
            )
            .optional()?
            .map(Zeroizing::new))
    }

    /// Ids of own prekeys of a kind, ascending.
    pub fn prekey_ids(&self, kind: PrekeyKind) -> Result<Vec<u32>> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM own_prekeys WHERE kind = ?1 ORDER BY id")?;
        let ids = st
            .query_map([kind.code()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// Deletes an own prekey (e.g. a used one-time prekey). Returns whether it existed.
    pub fn remove_prekey(&self, kind: PrekeyKind, id: u32) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM own_prekeys WHERE kind = ?1 AND id = ?2",
            params![kind.code(), id],
        )? > 0)
    }

    // ---- contacts ----

    /// Adds a contact and records its identity key as first seen now.
    pub fn add_contact(&mut self, c: &Contact, now: Timestamp) -> Result<()> {
        let tx = self.conn.savepoint()?;
        tx.execute(
            "INSERT INTO contacts (account_id, device_id, username, display_name, identity_key,
                 verification, blocked, request_state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                &c.account.0[..],
                c.device_id,
                c.username,
                c.display_name,
                c.identity_key,
                c.verification.code(),
                c.blocked,
                c.request.code(),
                now
            ],
        )?;
        tx.execute(
            "INSERT INTO identity_key_history (account_id, identity_key, first_seen, verified_how)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                &c.account.0[..],
                c.identity_key,
                now,
                VerifiedHow::FirstUse.code()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Updates a contact's names, device, blocked and request state (not its identity key or
    /// verification: see [`Store::set_identity_key`] and [`Store::set_verified`]).
    pub fn update_contact(&self, c: &Contact) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE contacts SET device_id = ?2, username = ?3, display_name = ?4, blocked = ?5,
                 request_state = ?6 WHERE account_id = ?1",
            params![
                &c.account.0[..],
                c.device_id,
                c.username,
                c.display_name,
                c.blocked,
                c.request.code()
            ],
        )?;
        if n == 0 {
            Err(QueryError::NotFound)
        } else {
            Ok(())
        }
    }

    /// A contact by account id.
    pub fn contact(&self, account: &AccountId) -> Result<Option<Contact>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {CONTACT_COLS} FROM contacts WHERE account_id = ?1"),
                [&account.0[..]],
                contact_row,
            )
            .optional()?)
    }

    /// All contacts.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {CONTACT_COLS} FROM contacts ORDER BY created_at"
        ))?;
        let v = st
            .query_map([], contact_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// Deletes a contact with its key history, conversation and messages.
    pub fn delete_contact(&self, account: &AccountId) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM contacts WHERE account_id = ?1",
            [&account.0[..]],
        )? > 0)
    }

    /// Records the contact's current identity key. If it differs from the stored one, the key
    /// is replaced, appended to the history and the verification state becomes `Changed`.
    /// Returns whether the key changed.
    pub fn set_identity_key(
        &mut self,
        account: &AccountId,
        key: &[u8],
        now: Timestamp,
    ) -> Result<bool> {
        let tx = self.conn.savepoint()?;
        let old: Vec<u8> = tx.query_row(
            "SELECT identity_key FROM contacts WHERE account_id = ?1",
            [&account.0[..]],
            |r| r.get(0),
        )?;
        if old == key {
            return Ok(false);
        }
        tx.execute(
            "UPDATE contacts SET identity_key = ?2, verification = ?3 WHERE account_id = ?1",
            params![&account.0[..], key, Verification::Changed.code()],
        )?;
        tx.execute(
            "INSERT INTO identity_key_history (account_id, identity_key, first_seen, verified_how)
             VALUES (?1, ?2, ?3, ?4)",
            params![&account.0[..], key, now, VerifiedHow::FirstUse.code()],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Marks the contact's current identity key as verified (`how` = safety number or QR)
    /// or, with `how = FirstUse`, as unverified again.
    pub fn set_verified(&mut self, account: &AccountId, how: VerifiedHow) -> Result<()> {
        let state = if how == VerifiedHow::FirstUse {
            Verification::Unverified
        } else {
            Verification::Verified
        };
        let tx = self.conn.savepoint()?;
        let n = tx.execute(
            "UPDATE contacts SET verification = ?2 WHERE account_id = ?1",
            params![&account.0[..], state.code()],
        )?;
        if n == 0 {
            return Err(QueryError::NotFound);
        }
        tx.execute(
            "UPDATE identity_key_history SET verified_how = ?2 WHERE id = (
                 SELECT h.id FROM identity_key_history h JOIN contacts c
                   ON c.account_id = h.account_id AND c.identity_key = h.identity_key
                 WHERE h.account_id = ?1 ORDER BY h.id DESC LIMIT 1)",
            params![&account.0[..], how.code()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The identity keys a contact has used, oldest first.
    pub fn identity_key_history(&self, account: &AccountId) -> Result<Vec<IdentityKeyRecord>> {
        let mut st = self.conn.prepare(
            "SELECT identity_key, first_seen, verified_how FROM identity_key_history
             WHERE account_id = ?1 ORDER BY id",
        )?;
        let v = st
            .query_map([&account.0[..]], |r| {
                Ok(IdentityKeyRecord {
                    key: r.get(0)?,
                    first_seen: r.get(1)?,
                    verified_how: enum_col(r, 2, VerifiedHow::from_code)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    // ---- sessions ----

    /// The session state (opaque secret blob) with a remote device.
    pub fn session(&self, addr: &Address) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT blob FROM sessions WHERE account_id = ?1 AND device_id = ?2",
                params![&addr.account.0[..], addr.device],
                |r| r.get(0),
            )
            .optional()?
            .map(Zeroizing::new))
    }

    /// Stores the session state with a remote device.
    pub fn put_session(&self, addr: &Address, blob: &[u8], now: Timestamp) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO sessions (account_id, device_id, blob, updated_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![&addr.account.0[..], addr.device, blob, now],
        )?;
        Ok(())
    }

    /// Deletes the session with a remote device.
    pub fn delete_session(&self, addr: &Address) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM sessions WHERE account_id = ?1 AND device_id = ?2",
            params![&addr.account.0[..], addr.device],
        )? > 0)
    }

    // ---- conversations ----

    /// The conversation with a contact, created if missing.
    pub fn conversation_with(&self, contact: &AccountId, now: Timestamp) -> Result<ConversationId> {
        self.conn.execute(
            "INSERT OR IGNORE INTO conversations (contact, last_activity) VALUES (?1, ?2)",
            params![&contact.0[..], now],
        )?;
        Ok(ConversationId(self.conn.query_row(
            "SELECT id FROM conversations WHERE contact = ?1",
            [&contact.0[..]],
            |r| r.get(0),
        )?))
    }

    /// A conversation by id.
    pub fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, contact, disappearing_secs, unread, last_activity FROM conversations
                 WHERE id = ?1",
                [id.0],
                conversation_row,
            )
            .optional()?)
    }

    /// All conversations, most recently active first.
    pub fn conversations(&self) -> Result<Vec<Conversation>> {
        let mut st = self.conn.prepare(
            "SELECT id, contact, disappearing_secs, unread, last_activity FROM conversations
             ORDER BY last_activity DESC, id DESC",
        )?;
        let v = st
            .query_map([], conversation_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// Sets the disappearing-message timer for new messages in a conversation (0 = off).
    pub fn set_disappearing_timer(&self, id: ConversationId, secs: u32) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE conversations SET disappearing_secs = ?2 WHERE id = ?1",
            params![id.0, secs],
        )?;
        if n == 0 {
            Err(QueryError::NotFound)
        } else {
            Ok(())
        }
    }

    // ---- messages ----

    /// Inserts a message. With a relay id, the insert and marking the id processed are one
    /// transaction; if the id was already processed nothing is stored and `None` is returned.
    pub fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<Option<MessageId>> {
        let tx = self.conn.savepoint()?;
        let id = insert_in(&tx, m)?;
        tx.commit()?;
        Ok(id)
    }

    /// Inserts many messages in one transaction (history sync, imports, benchmarks); all or
    /// nothing. Entries whose relay id was already processed yield `None`.
    pub fn insert_messages(&mut self, msgs: &[NewMessage<'_>]) -> Result<Vec<Option<MessageId>>> {
        let tx = self.conn.savepoint()?;
        let ids = msgs
            .iter()
            .map(|m| insert_in(&tx, m))
            .collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(ids)
    }

    /// Marks a relay message id processed without storing a message (e.g. receipts).
    /// Returns `false` if it was already processed.
    pub fn mark_relay_processed(&self, relay_id: &[u8], now: Timestamp) -> Result<bool> {
        Ok(self.conn.execute(
            "INSERT OR IGNORE INTO processed_relay_ids (relay_id, processed_at) VALUES (?1, ?2)",
            params![relay_id, now],
        )? > 0)
    }

    /// Forgets relay message ids processed before `before` (ms): they hold a receive time for
    /// every envelope ever received, which should not outlive the messages. The relay keeps
    /// an unacknowledged envelope 30 days by default; a text redelivered after its id was
    /// forgotten is still caught by its client message id.
    pub fn prune_processed_relay_ids(&self, before: Timestamp) -> Result<usize> {
        Ok(self.conn.execute(
            "DELETE FROM processed_relay_ids WHERE processed_at < ?1",
            [before],
        )?)
    }

    /// Whether a relay message id was already processed.
    pub fn is_relay_processed(&self, relay_id: &[u8]) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM processed_relay_ids WHERE relay_id = ?1",
                [relay_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// A message by id.
    pub fn message(&self, id: MessageId) -> Result<Option<Message>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {MESSAGE_COLS} FROM messages WHERE id = ?1"),
                [id.0],
                message_row,
            )
            .optional()?)
    }

    /// The newest `limit` messages of a conversation, oldest first.
    pub fn newest_messages(&self, conv: ConversationId, limit: u32) -> Result<Vec<Message>> {
        self.messages_before(conv, MessageId(i64::MAX), limit)
    }

    /// Up to `limit` messages older than `before`, oldest first (for scrolling back).
    pub fn messages_before(
        &self,
        conv: ConversationId,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE conversation = ?1 AND id < ?2
             ORDER BY id DESC LIMIT ?3"
        ))?;
        let mut v: Vec<Message> = st
            .query_map(params![conv.0, before.0, limit], message_row)?
            .collect::<rusqlite::Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    /// Updates an outgoing message's delivery state. When it leaves `Pending` (sent, or
    /// failed for good) its disappearing timer starts: a chat's timer covers every copy.
    pub fn set_delivery_state(
        &self,
        id: MessageId,
        state: DeliveryState,
        now: Timestamp,
    ) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE messages SET state = ?2,
                 expires_at = CASE WHEN ?2 <> 0 AND expire_timer > 0 AND expires_at IS NULL
                              THEN ?3 + expire_timer * 1000 ELSE expires_at END
             WHERE id = ?1",
            params![id.0, state.code(), now],
        )?;
        if n == 0 {
            Err(QueryError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Marks every incoming message of a conversation read, resets the unread count and starts
    /// the disappearing timers of those messages. Returns how many messages changed.
    pub fn mark_read(&mut self, conv: ConversationId, now: Timestamp) -> Result<usize> {
        let tx = self.conn.savepoint()?;
        let n = tx.execute(
            "UPDATE messages SET state = ?3,
                 expires_at = CASE WHEN expire_timer > 0 AND expires_at IS NULL
                              THEN ?2 + expire_timer * 1000 ELSE expires_at END
             WHERE conversation = ?1 AND direction = ?4 AND state <> ?3",
            params![
                conv.0,
                now,
                DeliveryState::Read.code(),
                Direction::Incoming.code()
            ],
        )?;
        tx.execute(
            "UPDATE conversations SET unread = 0 WHERE id = ?1",
            [conv.0],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Deletes one message (and its search-index entry).
    pub fn delete_message(&self, id: MessageId) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM messages WHERE id = ?1", [id.0])?
            > 0)
    }

    /// Deletes every message whose `expires_at` is at or before `now`, removing it from the
    /// search index too, and returns what was deleted.
    pub fn delete_expired(&mut self, now: Timestamp) -> Result<Vec<ExpiredMessage>> {
        let tx = self.conn.savepoint()?;
        let gone = {
            let mut st = tx.prepare(
                "DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1
                 RETURNING id, conversation",
            )?;
            st.query_map([now], |r| {
                Ok(ExpiredMessage {
                    id: MessageId(r.get(0)?),
                    conversation: ConversationId(r.get(1)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.commit()?;
        Ok(gone)
    }

    /// When the next disappearing message is due, if any timer is running (so the caller can
    /// schedule [`Store::delete_expired`]).
    pub fn next_expiry(&self) -> Result<Option<Timestamp>> {
        Ok(self.conn.query_row(
            "SELECT min(expires_at) FROM messages WHERE expires_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?)
    }

    /// Full-text search over message bodies; every whitespace-separated word must match
    /// (prefix matching is not applied). Newest first: FTS5 walks the
    /// doclist backwards by rowid and stops at `limit`, so common words stay fast on large
    /// tables (ranking by bm25 would score every match).
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<Message>> {
        let q = fts_query(query);
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let cols = MESSAGE_COLS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {cols} FROM messages_fts f JOIN messages m ON m.id = f.rowid
             WHERE messages_fts MATCH ?1 ORDER BY f.rowid DESC LIMIT ?2"
        ))?;
        let v = st
            .query_map(params![q, limit], message_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    // ---- the search backlog (docs/STORE.md, "Search backlog") ----

    /// Whether some messages are not in the search index yet (after a backup import, until
    /// [`Store::index_search_backlog`] has caught up). [`Store::search`] finds only indexed
    /// messages; the backlog is indexed newest first. One lookup in a one-row table.
    pub fn search_backlog_pending(&self) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM search_backlog")?
            .exists([])?)
    }

    /// How many messages are not in the search index yet (0 when it is complete). Counts the
    /// backlog's rows, so it costs a scan of them; for a yes/no answer use
    /// [`Store::search_backlog_pending`].
    pub fn search_backlog(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM messages, search_backlog WHERE messages.id BETWEEN lo AND hi",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Adds up to `max` of the newest messages still missing from the search index to it and
    /// shrinks the backlog accordingly, in one transaction (so an interruption loses nothing:
    /// the next call resumes where the last committed one stopped). Returns whether messages
    /// are still missing afterwards. Nothing to do (no backlog) returns `false` at once.
    pub fn index_search_backlog(&mut self, max: u32) -> Result<bool> {
        let tx = self.conn.savepoint()?;
        let Some((lo, hi)) = tx
            .prepare_cached("SELECT lo, hi FROM search_backlog")?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
        else {
            return Ok(false);
        };
        // The lowest id of this batch: the max-th newest message of the backlog, if there are
        // that many; otherwise the batch takes everything that is left.
        let boundary: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM messages WHERE id BETWEEN ?1 AND ?2 ORDER BY id DESC
                 LIMIT 1 OFFSET ?3",
            )?
            .query_row(params![lo, hi, i64::from(max.max(1)) - 1], |r| r.get(0))
            .optional()?;
        let from = boundary.unwrap_or(lo);
        tx.prepare_cached(
            "INSERT INTO messages_fts(rowid, body)
             SELECT id, body FROM messages WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
        )?
        .execute(params![from, hi])?;
        let more = match boundary {
            Some(b) if b > lo => tx
                .prepare_cached("SELECT 1 FROM messages WHERE id BETWEEN ?1 AND ?2")?
                .exists([lo, b - 1])?
                .then_some(b - 1),
            _ => None,
        };
        match more {
            Some(hi) => tx
                .prepare_cached("UPDATE search_backlog SET hi = ?1")?
                .execute([hi])?,
            None => tx
                .prepare_cached("DELETE FROM search_backlog")?
                .execute([])?,
        };
        tx.commit()?;
        Ok(more.is_some())
    }

    /// Checks the search index against the messages (FTS5 `integrity-check` with the content
    /// table): `true` when every message outside the backlog is indexed exactly as stored and
    /// nothing else is. Only meaningful with no backlog (pending messages are missing from the
    /// index by design). Reads the whole index.
    pub fn verify_search_index(&self) -> Result<bool> {
        match self.conn.execute(
            "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseCorrupt) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Indexes the whole search backlog now, in batches of `batch` messages (each its own
    /// transaction).
    pub fn finish_search_backlog(&mut self, batch: u32) -> Result<()> {
        while self.index_search_backlog(batch)? {}
        Ok(())
    }

    // ---- outbox ----

    /// Queues a sealed envelope for sending.
    pub fn enqueue_outbox(
        &self,
        recipient: &Address,
        message: Option<MessageId>,
        envelope: &[u8],
        now: Timestamp,
    ) -> Result<OutboxId> {
        self.conn.execute(
            "INSERT INTO outbox (recipient, recipient_device, message, envelope, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &recipient.account.0[..],
                recipient.device,
                message.map(|m| m.0),
                envelope,
                now
            ],
        )?;
        Ok(OutboxId(self.conn.last_insert_rowid()))
    }

    /// The oldest `limit` queued envelopes.
    pub fn peek_outbox(&self, limit: u32) -> Result<Vec<OutboxItem>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, recipient, recipient_device, message, envelope, attempts, created_at
             FROM outbox ORDER BY id LIMIT ?1",
        )?;
        let v = st
            .query_map([limit], |r| {
                Ok(OutboxItem {
                    id: OutboxId(r.get(0)?),
                    recipient: Address {
                        account: account_col(r, 1)?,
                        device: r.get(2)?,
                    },
                    message: r.get::<_, Option<i64>>(3)?.map(MessageId),
                    envelope: r.get(4)?,
                    attempts: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// Counts a failed send attempt.
    pub fn record_outbox_attempt(&self, id: OutboxId) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
            [id.0],
        )?;
        if n == 0 {
            Err(QueryError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Removes a sent (or abandoned) envelope.
    pub fn remove_outbox(&self, id: OutboxId) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id.0])?
            > 0)
    }

    // ---- client engine support ----

    /// Runs `f` as one transaction (a savepoint, so the store's own multi-statement
    /// operations nest inside it): everything `f` did is committed if it returns `Ok`, and
    /// rolled back otherwise.
    pub fn atomically<T, E: From<QueryError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn
            .execute_batch("SAVEPOINT sotto_atomic")
            .map_err(QueryError::from)?;
        match f(self) {
            Ok(v) => {
                self.conn
                    .execute_batch("RELEASE sotto_atomic")
                    .map_err(QueryError::from)?;
                Ok(v)
            }
            Err(e) => {
                // The rollback can only fail if the connection is unusable; the caller's error
                // is the one worth reporting.
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO sotto_atomic; RELEASE sotto_atomic");
                Err(e)
            }
        }
    }

    /// The contact whose current identity key is `key`.
    pub fn contact_by_identity_key(&self, key: &[u8]) -> Result<Option<Contact>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {CONTACT_COLS} FROM contacts WHERE identity_key = ?1"),
                [key],
                contact_row,
            )
            .optional()?)
    }

    /// The contact known under `username` (the most recently created one if several).
    pub fn contact_by_username(&self, username: &str) -> Result<Option<Contact>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {CONTACT_COLS} FROM contacts WHERE username = ?1
                     ORDER BY created_at DESC LIMIT 1"
                ),
                [username],
                contact_row,
            )
            .optional()?)
    }

    /// The message with client id `client_id` in a conversation and direction.
    pub fn message_by_client_id(
        &self,
        conv: ConversationId,
        direction: Direction,
        client_id: &[u8; 16],
    ) -> Result<Option<Message>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {MESSAGE_COLS} FROM messages
                     WHERE conversation = ?1 AND direction = ?2 AND client_id = ?3"
                ),
                params![conv.0, direction.code(), &client_id[..]],
                message_row,
            )
            .optional()?)
    }

    /// Raises the delivery state of our outgoing messages named by client id (a receipt from
    /// the peer); a state never goes backwards. Starts disappearing timers not yet running.
    /// Returns how many messages changed.
    pub fn mark_outgoing(
        &mut self,
        conv: ConversationId,
        client_ids: &[[u8; 16]],
        state: DeliveryState,
        now: Timestamp,
    ) -> Result<usize> {
        let tx = self.conn.savepoint()?;
        let mut changed = 0;
        {
            let mut st = tx.prepare_cached(
                "UPDATE messages SET state = ?4,
                     expires_at = CASE WHEN expire_timer > 0 AND expires_at IS NULL
                                  THEN ?5 + expire_timer * 1000 ELSE expires_at END
                 WHERE conversation = ?1 AND direction = ?2 AND client_id = ?3
                   AND state < ?4 AND state <> 4",
            )?;
            for id in client_ids {
                changed += st.execute(params![
                    conv.0,
                    Direction::Outgoing.code(),
                    &id[..],
                    state.code(),
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Client ids of the incoming messages of a conversation not yet marked read (what a read
    /// receipt names), oldest first.
    pub fn unread_client_ids(&self, conv: ConversationId) -> Result<Vec<[u8; 16]>> {
        let mut st = self.conn.prepare_cached(
            "SELECT client_id FROM messages WHERE conversation = ?1 AND direction = ?2
               AND state <> ?3 AND client_id IS NOT NULL ORDER BY id",
        )?;
        let v = st
            .query_map(
                params![
                    conv.0,
                    Direction::Incoming.code(),
                    DeliveryState::Read.code()
                ],
                |r| r.get(0),
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// Number of messages in a conversation.
    pub fn message_count(&self, conv: ConversationId) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM messages WHERE conversation = ?1",
            [conv.0],
            |r| r.get(0),
        )?)
    }

    // ---- settings ----

    /// A setting's value.
    pub fn setting(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Sets a setting.
    pub fn put_setting(&self, key: &str, value: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
        Ok(())
    }

    /// Deletes a setting.
    pub fn delete_setting(&self, key: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])?
            > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_terms() {
        assert_eq!(fts_query("  hello wo\"rld  "), "\"hello\" \"wo\"\"rld\"");
        assert_eq!(fts_query("   "), "");
    }

    /// The check the backlog tests rely on does notice an index that disagrees with the
    /// messages (here: a backlog row added by hand over an indexed message, so deleting the
    /// message leaves its index entry behind).
    #[test]
    fn verify_search_index_notices_a_stale_entry() {
        use crate::keyfile::KdfParams;
        use crate::secret::Passphrase;
        use crate::store::KeyProtection;
        let tmp = tempfile::tempdir().unwrap();
        let fast = KdfParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        };
        let pw = Passphrase::from("pw");
        let mut store =
            Store::create(&tmp.path().join("p"), KeyProtection::Passphrase(&pw, fast)).unwrap();
        let who = AccountId([1; 32]);
        store
            .add_contact(
                &Contact {
                    account: who,
                    device_id: 1,
                    username: None,
                    display_name: None,
                    identity_key: vec![1; 33],
                    verification: Verification::Unverified,
                    blocked: false,
                    request: MessageRequest::Accepted,
                },
                0,
            )
            .unwrap();
        let conv = store.conversation_with(&who, 0).unwrap();
        let id = store
            .insert_message(&NewMessage {
                conversation: conv,
                direction: Direction::Incoming,
                sender: Address {
                    account: who,
                    device: 1,
                },
                body: "indexed words",
                sent_at: 0,
                received_at: None,
                state: DeliveryState::Delivered,
                expire_timer_secs: 0,
                relay_id: None,
                client_id: None,
            })
            .unwrap()
            .unwrap();
        assert!(store.verify_search_index().unwrap());
        store
            .conn
            .execute("INSERT INTO search_backlog VALUES (1, ?1, ?1)", [id.0])
            .unwrap();
        store.delete_message(id).unwrap();
        store
            .conn
            .execute("DELETE FROM search_backlog", [])
            .unwrap();
        assert!(!store.verify_search_index().unwrap());
    }
}
