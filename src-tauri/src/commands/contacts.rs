//! Adding, blocking, accepting and deleting contacts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use sotto_client::qr_image;
use specta::Type;
use tauri::State;

use crate::error::{ErrorCode, UiError, UiResult};
use crate::session::Session;
use crate::views::{self, ConversationSummary, parse_contact_id};

/// Largest image accepted from the UI (a photo of a QR code is far smaller).
pub(crate) const MAX_IMAGE_BYTES: usize = 16 * 1024 * 1024;

/// A QR code image.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct QrImage {
    /// PNG, base64.
    pub qr_png: String,
}

/// Decodes a base64 image from the UI and reads the QR code in it.
pub(crate) fn qr_payload(image_b64: &str) -> UiResult<Vec<u8>> {
    if image_b64.len() > MAX_IMAGE_BYTES / 3 * 4 + 4 {
        return Err(UiError::invalid("The image is too large."));
    }
    let bytes = B64
        .decode(image_b64.trim())
        .map_err(|_| UiError::invalid("The image could not be read."))?;
    qr_image::decode_image(&bytes).map_err(|e| {
        UiError::new(
            ErrorCode::NoQrCode,
            format!("No Sotto QR code was found in the image ({e})."),
        )
    })
}

/// Adds a contact by username and starts an encrypted session with them.
#[tauri::command]
#[specta::specta]
pub async fn add_contact(
    session: State<'_, Session>,
    username: String,
) -> UiResult<ConversationSummary> {
    let username = username.trim().trim_start_matches('@').to_owned();
    if username.is_empty() {
        return Err(UiError::invalid("Type a username."));
    }
    let engine = session.engine().await?;
    engine
        .run(move |client| {
            Box::pin(async move {
                let added = client.add_contact(&username).await?;
                views::conversation_summary(client, &added.contact)
            })
        })
        .await
}

/// Adds a contact from a scanned invite QR image; the contact counts as verified.
#[tauri::command]
#[specta::specta]
pub async fn add_contact_from_invite(
    session: State<'_, Session>,
    image: String,
) -> UiResult<ConversationSummary> {
    let invite = qr_payload(&image)?;
    let engine = session.engine().await?;
    engine
        .run(move |client| {
            Box::pin(async move {
                let added = client.add_contact_from_invite(&invite).await?;
                views::conversation_summary(client, &added.contact)
            })
        })
        .await
}

/// Our invite QR code, for others to add us by scanning it.
#[tauri::command]
#[specta::specta]
pub async fn my_invite(session: State<'_, Session>) -> UiResult<QrImage> {
    let engine = session.engine().await?;
    engine
        .with(|client| {
            let invite = client.invite()?;
            let png = qr_image::encode_png(&invite)
                .map_err(|_| UiError::internal("The QR code could not be drawn."))?;
            Ok(QrImage {
                qr_png: B64.encode(png),
            })
        })
        .await
}

/// Blocks or unblocks a contact.
#[tauri::command]
#[specta::specta]
pub async fn set_blocked(
    session: State<'_, Session>,
    contact_id: String,
    blocked: bool,
) -> UiResult<()> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .with(move |client| Ok(client.set_blocked(&contact, blocked)?))
        .await
}

/// Accepts a message request.
#[tauri::command]
#[specta::specta]
pub async fn accept_request(session: State<'_, Session>, contact_id: String) -> UiResult<()> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .with(move |client| Ok(client.answer_request(&contact, true)?))
        .await
}

/// Deletes a contact with its conversation and session.
#[tauri::command]
#[specta::specta]
pub async fn delete_contact(session: State<'_, Session>, contact_id: String) -> UiResult<()> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .with(move |client| Ok(client.delete_contact(&contact)?))
        .await
}
