//! Events pushed to the UI on the `sotto://event` channel, built from the engine's events.

use serde::Serialize;
use sotto_client::{Client, ClientMessageId, Event};
use sotto_store::{AccountId, Direction};
use specta::Type;

use crate::error::UiResult;
use crate::views::{MessageView, contact_id, message_view};

/// The one event channel's name.
pub const EVENT_CHANNEL: &str = "sotto://event";

/// The state of the relay connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionState {
    /// Connected.
    Online,
    /// Trying to reconnect.
    Connecting,
    /// Not connected.
    Offline,
}

/// Something the UI should show.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum SottoEvent {
    /// A new message arrived.
    Message {
        /// The message.
        message: MessageView,
        /// It is a message request from someone unknown.
        request: bool,
        /// The sender's key changed with it.
        key_changed: bool,
    },
    /// Our messages reached the contact's device.
    Delivered {
        /// The contact.
        contact_id: String,
        /// Our messages' ids.
        #[specta(type = Vec<specta_typescript::Number>)]
        message_ids: Vec<i64>,
    },
    /// The contact read our messages.
    Read {
        /// The contact.
        contact_id: String,
        /// Our messages' ids.
        #[specta(type = Vec<specta_typescript::Number>)]
        message_ids: Vec<i64>,
    },
    /// The contact started or stopped typing.
    Typing {
        /// The contact.
        contact_id: String,
        /// Typing now.
        typing: bool,
    },
    /// The conversation's disappearing timer changed.
    TimerChanged {
        /// The contact.
        contact_id: String,
        /// The new timer (0 = off).
        secs: u32,
    },
    /// Disappearing messages were deleted.
    Expired {
        /// The deleted messages.
        #[specta(type = Vec<specta_typescript::Number>)]
        message_ids: Vec<i64>,
        /// Their conversations' contacts.
        contact_ids: Vec<String>,
    },
    /// A contact's safety number changed.
    KeyChanged {
        /// The contact.
        contact_id: String,
    },
    /// The relay connection changed.
    Connection {
        /// The new state.
        state: ConnectionState,
    },
    /// A backup export or import made progress.
    BackupProgress {
        /// Bytes done.
        #[specta(type = specta_typescript::Number)]
        done: u64,
        /// Bytes in all.
        #[specta(type = specta_typescript::Number)]
        total: u64,
    },
    /// Messages restored from a backup are all searchable now: a search shown as incomplete
    /// can be run again.
    SearchIndexReady,
    /// The profile was locked: drop all decrypted content.
    Locked,
}

impl SottoEvent {
    /// The connection event for `online`.
    pub fn connection(online: bool) -> Self {
        Self::Connection {
            state: if online {
                ConnectionState::Online
            } else {
                ConnectionState::Connecting
            },
        }
    }
}

fn outgoing_ids(
    client: &Client,
    contact: &AccountId,
    ids: &[ClientMessageId],
) -> UiResult<Vec<i64>> {
    let store = client.store();
    let Some(conv) = store
        .conversations()?
        .into_iter()
        .find(|c| c.contact == *contact)
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(m) = store.message_by_client_id(conv.id, Direction::Outgoing, id)? {
            out.push(m.id.0);
        }
    }
    Ok(out)
}

/// The UI event for an engine event, if the UI cares.
pub fn translate(client: &Client, event: Event) -> UiResult<Option<SottoEvent>> {
    Ok(match event {
        Event::Message {
            contact,
            message,
            request,
            key_changed,
        } => client
            .store()
            .message(message)?
            .map(|m| SottoEvent::Message {
                message: message_view(&contact, &m),
                request,
                key_changed,
            }),
        Event::Delivered { contact, ids } => Some(SottoEvent::Delivered {
            message_ids: outgoing_ids(client, &contact, &ids)?,
            contact_id: contact_id(&contact),
        }),
        Event::Read { contact, ids } => Some(SottoEvent::Read {
            message_ids: outgoing_ids(client, &contact, &ids)?,
            contact_id: contact_id(&contact),
        }),
        Event::Typing { contact, started } => Some(SottoEvent::Typing {
            contact_id: contact_id(&contact),
            typing: started,
        }),
        Event::TimerChanged { contact, seconds } => Some(SottoEvent::TimerChanged {
            contact_id: contact_id(&contact),
            secs: seconds,
        }),
        Event::Expired { messages } => {
            let store = client.store();
            let mut contact_ids = Vec::new();
            for m in &messages {
                if let Some(conv) = store.conversation(m.conversation)? {
                    let id = contact_id(&conv.contact);
                    if !contact_ids.contains(&id) {
                        contact_ids.push(id);
                    }
                }
            }
            Some(SottoEvent::Expired {
                message_ids: messages.iter().map(|m| m.id.0).collect(),
                contact_ids,
            })
        }
        Event::SearchIndexReady => Some(SottoEvent::SearchIndexReady),
        _ => None,
    })
}
