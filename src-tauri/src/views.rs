//! What the UI is shown: plain data built from the store, shaped as docs/DESKTOP_API.md says.
//! Nothing here holds keys; message text appears only in the views the UI asked for.

use serde::{Deserialize, Serialize};
use sotto_client::{Client, account_hex, parse_account_hex};
use sotto_store::{
    AccountId, Contact, Conversation, DeliveryState, Direction, Message, MessageRequest,
    Verification,
};
use specta::Type;

use crate::error::{UiError, UiResult};

/// How the store key is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStorageView {
    /// The OS keyring.
    Keyring,
    /// A passphrase asked at every start.
    Passphrase,
}

impl From<sotto_store::KeyMode> for KeyStorageView {
    fn from(mode: sotto_store::KeyMode) -> Self {
        match mode {
            sotto_store::KeyMode::Keyring => Self::Keyring,
            sotto_store::KeyMode::Passphrase => Self::Passphrase,
        }
    }
}

/// The open profile.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// Our username.
    pub username: String,
    /// Our account id (hex).
    pub account_id: String,
    /// The relay URL.
    pub relay: String,
    /// Whether the relay is the one embedded in the app.
    pub embedded_relay: bool,
    /// How the store key is protected.
    pub key_storage: KeyStorageView,
}

/// Whether onboarding, unlock or the main window comes first.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(
    tag = "state",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum ProfileStatus {
    /// No profile yet.
    New {
        /// Whether the OS keyring answers.
        keyring_available: bool,
    },
    /// A passphrase profile waiting for its passphrase.
    Locked {
        /// How the key is protected.
        key_storage: KeyStorageView,
    },
    /// Open.
    Ready {
        /// The profile.
        me: Me,
    },
}

/// A contact's verification state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum VerificationView {
    /// Not compared yet.
    Unverified,
    /// Compared and matching.
    Verified,
    /// The key changed since it was last seen.
    Changed,
}

impl From<Verification> for VerificationView {
    fn from(v: Verification) -> Self {
        match v {
            Verification::Unverified => Self::Unverified,
            Verification::Verified => Self::Verified,
            Verification::Changed => Self::Changed,
        }
    }
}

/// Delivery state of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryView {
    /// Waiting for the relay.
    Queued,
    /// Refused by the relay for good; not sent.
    Failed,
    /// Accepted by the relay.
    Sent,
    /// On the recipient's device.
    Delivered,
    /// Read by the recipient.
    Read,
    /// An incoming message.
    Received,
}

/// The newest message of a conversation, for the list.
#[derive(Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct LastMessage {
    /// Its text.
    pub text: String,
    /// When it was sent.
    #[specta(type = specta_typescript::Number)]
    pub at_ms: i64,
    /// Whether we sent it.
    pub outgoing: bool,
}

/// One row of the conversation list.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    /// The contact's stable id (hex).
    pub contact_id: String,
    /// Username, if known.
    pub username: Option<String>,
    /// What to call them.
    pub display_name: String,
    /// Unread incoming messages.
    pub unread: u32,
    /// The newest message.
    pub last_message: Option<LastMessage>,
    /// Disappearing timer (0 = off).
    pub timer_secs: u32,
    /// Verification state.
    pub verification: VerificationView,
    /// Blocked by us.
    pub blocked: bool,
    /// An unanswered message request.
    pub request: bool,
}

/// One message.
#[derive(Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Local id.
    #[specta(type = specta_typescript::Number)]
    pub id: i64,
    /// The conversation's contact id (hex).
    pub contact_id: String,
    /// Whether we sent it.
    pub outgoing: bool,
    /// Its text.
    pub text: String,
    /// Sender's time.
    #[specta(type = specta_typescript::Number)]
    pub sent_at_ms: i64,
    /// When it arrived here.
    #[specta(type = Option<specta_typescript::Number>)]
    pub received_at_ms: Option<i64>,
    /// Delivery state.
    pub state: DeliveryView,
    /// Disappearing timer (0 = off).
    pub expire_secs: u32,
    /// When it will be deleted, once the timer started.
    #[specta(type = Option<specta_typescript::Number>)]
    pub expires_at_ms: Option<i64>,
}

/// The contact id the UI uses.
pub fn contact_id(account: &AccountId) -> String {
    account_hex(&account.0)
}

/// Parses a contact id from the UI.
pub fn parse_contact_id(id: &str) -> UiResult<AccountId> {
    parse_account_hex(id)
        .map(AccountId)
        .ok_or_else(|| UiError::invalid("That is not a contact id."))
}

/// A name to show for a contact.
pub fn display_name(contact: &Contact) -> String {
    contact
        .display_name
        .clone()
        .or_else(|| contact.username.clone())
        .unwrap_or_else(|| {
            let hex = contact_id(&contact.account);
            format!("Unknown {}", hex.get(..8).unwrap_or(&hex))
        })
}

/// A message as the UI shows it.
pub fn message_view(contact: &AccountId, m: &Message) -> MessageView {
    let outgoing = m.direction == Direction::Outgoing;
    let state = if !outgoing {
        DeliveryView::Received
    } else {
        match m.state {
            DeliveryState::Pending => DeliveryView::Queued,
            DeliveryState::Failed => DeliveryView::Failed,
            DeliveryState::Sent => DeliveryView::Sent,
            DeliveryState::Delivered => DeliveryView::Delivered,
            DeliveryState::Read => DeliveryView::Read,
        }
    };
    MessageView {
        id: m.id.0,
        contact_id: contact_id(contact),
        outgoing,
        text: m.body.clone(),
        sent_at_ms: m.sent_at,
        received_at_ms: m.received_at,
        state,
        expire_secs: m.expire_timer_secs,
        expires_at_ms: m.expires_at,
    }
}

/// The list row for one contact and its conversation (if any message was exchanged yet).
pub fn summary(
    client: &Client,
    contact: &Contact,
    conversation: Option<&Conversation>,
) -> UiResult<ConversationSummary> {
    let last = match conversation {
        Some(c) => client.store().newest_messages(c.id, 1)?.pop(),
        None => None,
    };
    Ok(ConversationSummary {
        contact_id: contact_id(&contact.account),
        username: contact.username.clone(),
        display_name: display_name(contact),
        unread: conversation.map_or(0, |c| c.unread),
        last_message: last.map(|m| LastMessage {
            text: m.body,
            at_ms: m.sent_at,
            outgoing: m.direction == Direction::Outgoing,
        }),
        timer_secs: conversation.map_or(0, |c| c.disappearing_secs),
        verification: contact.verification.into(),
        blocked: contact.blocked,
        request: contact.request == MessageRequest::Pending,
    })
}

/// All conversations, newest activity first.
pub fn conversations(client: &Client) -> UiResult<Vec<ConversationSummary>> {
    let conversations = client.store().conversations()?;
    let mut rows = Vec::new();
    for contact in client.contacts()? {
        if contact.request == MessageRequest::Declined {
            continue;
        }
        let conv = conversations.iter().find(|c| c.contact == contact.account);
        let activity = conv.map_or(0, |c| c.last_activity);
        rows.push((activity, summary(client, &contact, conv)?));
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// One contact's row.
pub fn conversation_summary(client: &Client, account: &AccountId) -> UiResult<ConversationSummary> {
    let contact = client
        .store()
        .contact(account)?
        .ok_or_else(|| UiError::not_found("No such contact."))?;
    let conversations = client.store().conversations()?;
    let conv = conversations.iter().find(|c| c.contact == contact.account);
    summary(client, &contact, conv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_ids_round_trip_and_reject_garbage() {
        let account = AccountId([0xab; 32]);
        let id = contact_id(&account);
        assert_eq!(id.len(), 64);
        assert_eq!(parse_contact_id(&id).ok(), Some(account));
        assert!(parse_contact_id("not hex").is_err());
        assert!(parse_contact_id(&id[..62]).is_err());
    }

    #[test]
    fn unknown_contacts_get_a_short_id_name() {
        let contact = Contact {
            account: AccountId([0x12; 32]),
            device_id: 1,
            username: None,
            display_name: None,
            identity_key: vec![0x12; 32],
            verification: Verification::Unverified,
            blocked: false,
            request: MessageRequest::Pending,
        };
        assert_eq!(display_name(&contact), "Unknown 12121212");
        let named = Contact {
            username: Some("alice".into()),
            ..contact
        };
        assert_eq!(display_name(&named), "alice");
    }
}

// Message text stays out of Debug output (and so out of logs and panics).
impl std::fmt::Debug for LastMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastMessage")
            .field("at_ms", &self.at_ms)
            .field("outgoing", &self.outgoing)
            .finish_non_exhaustive()
    }
}

// Message text stays out of Debug output (and so out of logs and panics).
impl std::fmt::Debug for MessageView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageView")
            .field("id", &self.id)
            .field("contact_id", &self.contact_id)
            .field("outgoing", &self.outgoing)
            .field("state", &self.state)
            .field("expire_secs", &self.expire_secs)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_message_text() {
        let m = MessageView {
            id: 1,
            contact_id: "ab".into(),
            outgoing: true,
            text: "canary words".into(),
            sent_at_ms: 0,
            received_at_ms: None,
            state: DeliveryView::Sent,
            expire_secs: 0,
            expires_at_ms: None,
        };
        assert!(!format!("{m:?}").contains("canary"));
        let last = LastMessage {
            text: "canary words".into(),
            at_ms: 0,
            outgoing: false,
        };
        assert!(!format!("{last:?}").contains("canary"));
    }
}
