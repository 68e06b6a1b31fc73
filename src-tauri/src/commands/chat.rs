//! Conversations and messages.

use serde::Serialize;
use sotto_client::{Client, SendError};
use sotto_store::{AccountId, ConversationId, MessageId};
use specta::Type;
use tauri::State;

use crate::error::{UiError, UiResult};
use crate::session::Session;
use crate::views::{
    self, ConversationSummary, MessageView, display_name, message_view, parse_contact_id,
};

/// Longest page of messages the UI may ask for at once.
const MAX_PAGE: u32 = 500;
/// Most search results returned.
const MAX_HITS: u32 = 50;

/// A search result.
#[derive(Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// The message.
    #[specta(type = specta_typescript::Number)]
    pub message_id: i64,
    /// Its conversation's contact.
    pub contact_id: String,
    /// The contact's name.
    pub display_name: String,
    /// The message text.
    pub snippet: String,
    /// When it was sent.
    #[specta(type = specta_typescript::Number)]
    pub at_ms: i64,
}

/// What a search found, and whether it could not look everywhere yet.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    /// The matching messages, newest first.
    pub hits: Vec<SearchHit>,
    /// Messages restored from a backup are still being added to the search index, so older
    /// ones may be missing from `hits` (the engine indexes them in the background).
    pub indexing: bool,
}

fn conversation_of(client: &Client, contact: &AccountId) -> UiResult<Option<ConversationId>> {
    Ok(client
        .store()
        .conversations()?
        .into_iter()
        .find(|c| c.contact == *contact)
        .map(|c| c.id))
}

fn known(client: &Client, contact: &AccountId) -> UiResult<()> {
    client
        .store()
        .contact(contact)?
        .map(|_| ())
        .ok_or_else(|| UiError::not_found("No such contact."))
}

/// All conversations, newest activity first, message requests included.
#[tauri::command]
#[specta::specta]
pub async fn conversations(session: State<'_, Session>) -> UiResult<Vec<ConversationSummary>> {
    let engine = session.engine().await?;
    engine.with(|client| views::conversations(client)).await
}

/// How many messages a conversation holds.
#[tauri::command]
#[specta::specta]
pub async fn message_count(session: State<'_, Session>, contact_id: String) -> UiResult<u32> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .with(move |client| {
            Ok(match conversation_of(client, &contact)? {
                Some(conv) => {
                    u32::try_from(client.store().message_count(conv)?).unwrap_or(u32::MAX)
                }
                None => 0,
            })
        })
        .await
}

/// A page of messages, oldest first: the `limit` newest older than `before_id` (or the newest).
#[tauri::command]
#[specta::specta]
pub async fn messages(
    session: State<'_, Session>,
    contact_id: String,
    before_id: Option<f64>,
    limit: u32,
) -> UiResult<Vec<MessageView>> {
    let contact = parse_contact_id(&contact_id)?;
    let limit = limit.clamp(1, MAX_PAGE);
    #[allow(clippy::cast_possible_truncation)]
    let before = before_id.map(|id| MessageId(id as i64));
    let engine = session.engine().await?;
    engine
        .with(move |client| {
            known(client, &contact)?;
            let Some(conv) = conversation_of(client, &contact)? else {
                return Ok(Vec::new());
            };
            let store = client.store();
            let page = match before {
                Some(before) => store.messages_before(conv, before, limit)?,
                None => store.newest_messages(conv, limit)?,
            };
            Ok(page.iter().map(|m| message_view(&contact, m)).collect())
        })
        .await
}

/// Sends a text. If the relay cannot be reached the message is kept in the outbox, returned as
/// `queued`, and sent when the connection is back.
#[tauri::command]
#[specta::specta]
pub async fn send_text(
    session: State<'_, Session>,
    contact_id: String,
    text: String,
) -> UiResult<MessageView> {
    let contact = parse_contact_id(&contact_id)?;
    let text = zeroize::Zeroizing::new(text);
    if text.trim().is_empty() {
        return Err(UiError::invalid("The message is empty."));
    }
    let engine = session.engine().await?;
    engine
        .run(move |client| {
            Box::pin(async move {
                let sent = client.send_text(&contact, &text).await;
                // A refused message is stored as failed: it is shown, marked "not sent".
                let queued = match sent {
                    Ok(_) | Err(SendError::Undeliverable) => false,
                    Err(e) if e.is_queued() => true,
                    Err(e) => return Err(e.into()),
                };
                let conv = conversation_of(client, &contact)?
                    .ok_or_else(|| UiError::internal("The message was not stored."))?;
                let newest = client.store().newest_messages(conv, 1)?;
                let message = newest
                    .first()
                    .ok_or_else(|| UiError::internal("The message was not stored."))?;
                let mut view = message_view(&contact, message);
                if queued {
                    view.state = views::DeliveryView::Queued;
                }
                Ok(view)
            })
        })
        .await
}

/// Marks a conversation read (and sends read receipts if they are on).
#[tauri::command]
#[specta::specta]
pub async fn mark_read(session: State<'_, Session>, contact_id: String) -> UiResult<()> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .run(move |client| {
            Box::pin(async move {
                match client.mark_read(&contact).await {
                    Ok(_) => Ok(()),
                    // Marked locally; the receipts wait in the outbox.
                    Err(e) if e.is_queued() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
        })
        .await
}

/// Tells the contact we started or stopped typing (if typing indicators are on).
#[tauri::command]
#[specta::specta]
pub async fn send_typing(
    session: State<'_, Session>,
    contact_id: String,
    typing: bool,
) -> UiResult<()> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .run(move |client| {
            Box::pin(async move {
                match client.send_typing(&contact, typing).await {
                    Ok(()) => Ok(()),
                    // Typing state is ephemeral: not worth an error.
                    Err(e) if e.is_queued() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
        })
        .await
}

/// Sets the conversation's disappearing timer (0 = off, else 5 s to 4 weeks).
#[tauri::command]
#[specta::specta]
pub async fn set_timer(session: State<'_, Session>, contact_id: String, secs: u32) -> UiResult<()> {
    let contact = parse_contact_id(&contact_id)?;
    if secs != 0
        && !(sotto_client::privacy::MIN_DISAPPEARING_SECS
            ..=sotto_client::privacy::MAX_DISAPPEARING_SECS)
            .contains(&secs)
    {
        return Err(UiError::invalid(
            "Disappearing messages last from 5 seconds to 4 weeks.",
        ));
    }
    let engine = session.engine().await?;
    engine
        .run(move |client| {
            Box::pin(async move {
                match client.set_disappearing_timer(&contact, secs).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.is_queued() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
        })
        .await
}

/// Full-text search across every conversation.
#[tauri::command]
#[specta::specta]
pub async fn search(session: State<'_, Session>, query: String) -> UiResult<SearchResults> {
    let query = zeroize::Zeroizing::new(query);
    if query.trim().is_empty() {
        return Ok(SearchResults {
            hits: Vec::new(),
            indexing: false,
        });
    }
    let engine = session.engine().await?;
    engine
        .with(move |client| {
            let store = client.store();
            let conversations = store.conversations()?;
            let mut hits = Vec::new();
            for m in store.search(&query, MAX_HITS)? {
                let Some(conv) = conversations.iter().find(|c| c.id == m.conversation) else {
                    continue;
                };
                let name = store
                    .contact(&conv.contact)?
                    .map_or_else(String::new, |c| display_name(&c));
                let view = message_view(&conv.contact, &m);
                hits.push(SearchHit {
                    message_id: view.id,
                    contact_id: view.contact_id,
                    display_name: name,
                    snippet: view.text,
                    at_ms: view.sent_at_ms,
                });
            }
            Ok(SearchResults {
                hits,
                indexing: client.search_index_pending()?,
            })
        })
        .await
}

// Message text stays out of Debug output (and so out of logs and panics).
impl std::fmt::Debug for SearchHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchHit")
            .field("message_id", &self.message_id)
            .field("contact_id", &self.contact_id)
            .field("at_ms", &self.at_ms)
            .finish_non_exhaustive()
    }
}
