//! Sending: content → Double Ratchet → sealed sender → outbox (one transaction with the
//! advanced session and the stored message) → relay. An envelope leaves the outbox only when
//! the relay accepted it; a failed flush leaves it for the next one, byte for byte.

use rand_core::{OsRng, RngCore};
use sotto_protocol::sealed_sender::{self, SealError};
use sotto_protocol::session::EncryptError;
use sotto_protocol::{Address, Session};
use sotto_relay_wire::{self as wire, ErrorCode, Request};
use sotto_store::{DeliveryState, Direction, MessageRequest, NewMessage, Verification};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::contacts::ContactError;
use crate::content::{ClientMessageId, Content, MAX_RECEIPT_IDS};
use crate::engine::Client;
use crate::relay::{ConnectError, RequestError};
use crate::state::{StateError, contact_account, db_address, now_ms};

/// Sending failed. A message that reached the outbox is retried by [`Client::flush_outbox`].
#[derive(Debug, Error)]
pub enum SendError {
    /// No such contact.
    #[error("no such contact")]
    UnknownContact,
    /// The contact is blocked.
    #[error("this contact is blocked")]
    Blocked,
    /// The contact's identity key changed and the privacy settings block sending until the
    /// user verifies or accepts the new key.
    #[error("the contact's safety number changed: verify or accept it before sending")]
    KeyChanged,
    /// No session with that contact (add it first).
    #[error("no session with this contact")]
    NoSession,
    /// There was no session with the contact and none could be started (a profile restored
    /// from a backup starts without sessions); nothing was queued.
    #[error("could not start a session with this contact")]
    SessionSetup(#[source] ContactError),
    /// Encryption or sealing failed.
    #[error("encryption failed")]
    Encrypt,
    /// The encoded content exceeds the largest sendable plaintext (65,535 bytes).
    #[error("message too large")]
    MessageTooLarge,
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The relay refused the message for good (the recipient is no longer on the relay, or
    /// the message is larger than this relay accepts); it is marked `Failed` and not retried.
    #[error("the relay refused this message; it was not sent")]
    Undeliverable,
    /// Connection trouble; the envelope stays in the outbox.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused or did not answer; the envelope stays in the outbox.
    #[error(transparent)]
    Relay(#[from] RequestError),
}

impl From<sotto_store::QueryError> for SendError {
    fn from(e: sotto_store::QueryError) -> Self {
        Self::State(e.into())
    }
}

impl SendError {
    /// The message is safely queued and will go out with the next successful flush.
    pub fn is_queued(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::Relay(_))
    }
}

/// Whether the relay's refusal of an envelope is final: the same bytes would be refused
/// again (a full mailbox, a rate limit or a lost connection can pass).
fn never_accepted(e: &RequestError) -> bool {
    matches!(
        e,
        RequestError::Relay {
            code: ErrorCode::UnknownRecipient | ErrorCode::EnvelopeTooLarge,
            ..
        } | RequestError::Encode(_)
    )
}

fn random_id() -> ClientMessageId {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    id
}

impl Client {
    fn seal_content(
        &mut self,
        peer: Address,
        content: &Content,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), SendError> {
        let bytes = self
            .store
            .session(&db_address(peer))?
            .ok_or(SendError::NoSession)?;
        let mut session = Session::from_bytes(&bytes).map_err(|_| StateError::corrupt())?;
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
            SealError::NonContributory | SealError::Encode(_) => SendError::Encrypt,
        })?;
        let envelope = envelope.encode().map_err(|_| SendError::MessageTooLarge)?;
        Ok((session.to_bytes(), envelope))
    }

    /// Where messages for a contact go, after the checks every send makes.
    fn recipient(
        &self,
        contact: &sotto_store::AccountId,
        user_content: bool,
    ) -> Result<(Address, sotto_store::Contact), SendError> {
        let c = self
            .store
            .contact(contact)?
            .ok_or(SendError::UnknownContact)?;
        if c.blocked {
            return Err(SendError::Blocked);
        }
        if user_content
            && c.verification == Verification::Changed
            && self.privacy()?.block_on_key_change
        {
            return Err(SendError::KeyChanged);
        }
        let account = contact_account(&c)?;
        Ok((Address::new(account.0, c.device_id), c))
    }

    /// Makes sure there is a session with `peer`, starting one from its fetched prekey bundle
    /// if not (after a backup import there is none; see restore.rs).
    async fn session_for(&mut self, peer: Address) -> Result<(), SendError> {
        self.ensure_session(peer.account)
            .await
            .map_err(SendError::SessionSetup)
    }

    /// Encrypts control content for a contact and queues it; then flushes.
    pub(crate) async fn send_control(
        &mut self,
        contact: &sotto_store::AccountId,
        content: &Content,
    ) -> Result<(), SendError> {
        let (peer, _) = self.recipient(contact, false)?;
        self.session_for(peer).await?;
        let (session, envelope) = self.seal_content(peer, content)?;
        let now = now_ms();
        self.store.atomically(|s| {
            s.put_session(&db_address(peer), &session, now)?;
            s.enqueue_outbox(&db_address(peer), None, &envelope, now)?;
            Ok::<_, SendError>(())
        })?;
        self.flush_outbox().await.map(|_| ())
    }

    /// Sends a text message to a contact with the conversation's disappearing timer; returns
    /// its client message id. Replying to a message request accepts it. If the relay cannot
    /// be reached the message stays queued (`Err(e)` with `e.is_queued()`) and goes out with
    /// the next [`flush_outbox`](Self::flush_outbox).
    pub async fn send_text(
        &mut self,
        contact: &sotto_store::AccountId,
        text: &str,
    ) -> Result<ClientMessageId, SendError> {
        let (peer, mut c) = self.recipient(contact, true)?;
        self.session_for(peer).await?;
        let now = now_ms();
        let conv = self.store.conversation_with(contact, now)?;
        let timer = self
            .store
            .conversation(conv)?
            .map_or(0, |c| c.disappearing_secs);
        let id = random_id();
        let content = Content::Text {
            id,
            sent_at_ms: u64::try_from(now).unwrap_or(0),
            expire_secs: timer,
            sender_username: self.username()?.unwrap_or_default(),
            text: text.to_owned(),
        };
        let (session, envelope) = self.seal_content(peer, &content)?;
        let me = db_address(self.address());
        let message = self.store.atomically(|s| {
            s.put_session(&db_address(peer), &session, now)?;
            let message = s.insert_message(&NewMessage {
                conversation: conv,
                direction: Direction::Outgoing,
                sender: me,
                body: text,
                sent_at: now,
                received_at: None,
                state: DeliveryState::Pending,
                expire_timer_secs: timer,
                relay_id: None,
                client_id: Some(&id),
            })?;
            s.enqueue_outbox(&db_address(peer), message, &envelope, now)?;
            if c.request != MessageRequest::Accepted {
                c.request = MessageRequest::Accepted;
                s.update_contact(&c)?;
            }
            Ok::<_, SendError>(message)
        })?;
        self.flush_outbox().await?;
        if let Some(m) = message
            && self
                .store
                .message(m)?
                .is_some_and(|m| m.state == DeliveryState::Failed)
        {
            return Err(SendError::Undeliverable);
        }
        Ok(id)
    }

    /// Marks the conversation read (starting the disappearing timers of its incoming
    /// messages) and, if read receipts are on and the contact is accepted, tells the contact.
    /// Returns how many messages became read.
    pub async fn mark_read(
        &mut self,
        contact: &sotto_store::AccountId,
    ) -> Result<usize, SendError> {
        let now = now_ms();
        let conv = self.store.conversation_with(contact, now)?;
        let ids = self.store.unread_client_ids(conv)?;
        let n = self.store.mark_read(conv, now)?;
        let accepted = self
            .store
            .contact(contact)?
            .is_some_and(|c| c.request == MessageRequest::Accepted && !c.blocked);
        if accepted && self.privacy()?.read_receipts {
            for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                self.send_control(contact, &Content::ReadReceipt(chunk.to_vec()))
                    .await?;
            }
        }
        Ok(n)
    }

    /// Sends a typing indicator, if typing indicators are on.
    pub async fn send_typing(
        &mut self,
        contact: &sotto_store::AccountId,
        started: bool,
    ) -> Result<(), SendError> {
        if !self.privacy()?.typing_indicators {
            return Ok(());
        }
        self.send_control(contact, &Content::Typing(started)).await
    }

    /// Changes the conversation's disappearing timer (seconds, 0 = off) and tells the contact,
    /// so both sides use it.
    pub async fn set_disappearing_timer(
        &mut self,
        contact: &sotto_store::AccountId,
        seconds: u32,
    ) -> Result<(), SendError> {
        let conv = self.store.conversation_with(contact, now_ms())?;
        self.store.set_disappearing_timer(conv, seconds)?;
        let content = Content::DisappearingTimer {
            id: random_id(),
            sent_at_ms: u64::try_from(now_ms()).unwrap_or(0),
            seconds,
        };
        self.send_control(contact, &content).await
    }

    /// Sends every queued envelope in order until the relay accepted all of them; stops at
    /// the first failure that may pass (that envelope and later ones stay queued). A sent
    /// message becomes `Sent` and its disappearing timer starts. An envelope the relay refuses
    /// for good (the recipient no longer exists, or it is larger than this relay takes) leaves
    /// the outbox and its message becomes `Failed`. Returns how many went.
    pub async fn flush_outbox(&mut self) -> Result<usize, SendError> {
        let mut sent = 0;
        loop {
            let batch = self.store.peek_outbox(64)?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for item in batch {
                let request = Request::SendEnvelope {
                    recipient: wire::Address {
                        account: item.recipient.account.0,
                        device: item.recipient.device,
                    },
                    envelope: item.envelope,
                };
                let outcome = match self.anon_request(request).await {
                    Ok(_) => DeliveryState::Sent,
                    // Refused for good: retrying would hold up everything queued behind it.
                    Err(e) if never_accepted(&e) => DeliveryState::Failed,
                    Err(e) => {
                        self.store.record_outbox_attempt(item.id)?;
                        return Err(e.into());
                    }
                };
                let now = now_ms();
                self.store.atomically(|s| {
                    s.remove_outbox(item.id)?;
                    if let Some(m) = item.message
                        && s.message(m)?
                            .is_some_and(|m| m.state == DeliveryState::Pending)
                    {
                        s.set_delivery_state(m, outcome, now)?;
                    }
                    Ok::<_, SendError>(())
                })?;
                if outcome == DeliveryState::Sent {
                    sent += 1;
                }
            }
        }
    }

    /// Number of envelopes waiting in the outbox.
    pub fn queued(&self) -> Result<usize, StateError> {
        Ok(self.store.peek_outbox(u32::MAX)?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PRIMARY_DEVICE;
    use sotto_protocol::{
        CiphertextMessage, IdentityKeyPair, KemPreKeyKind, KemPreKeySecret, OneTimePreKeySecret,
        PreKeyBundle, SealedEnvelope, SignedPreKeySecret,
    };

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
        let encoded = envelope.encode().unwrap();
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
