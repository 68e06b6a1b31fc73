//! Safety numbers: showing ours, scanning theirs, manual verification, saving our code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use sotto_client::{VerifyError, qr_image};
use specta::Type;
use tauri::State;

use crate::commands::contacts::{MAX_IMAGE_BYTES, qr_payload};
use crate::error::{ErrorCode, UiError, UiResult};
use crate::session::Session;
use crate::views::{VerificationView, display_name, parse_contact_id};

/// A contact's safety number screen.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SafetyNumber {
    /// The contact.
    pub contact_id: String,
    /// Their name.
    pub display_name: String,
    /// 12 groups of 5 digits.
    pub groups: Vec<String>,
    /// Our verification QR code (PNG, base64) for them to scan.
    pub qr_png: String,
    /// Verification state.
    pub verification: VerificationView,
}

/// The result of a scan.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ScanResult {
    /// Matched (verified now), did not match, or (frames only) no code seen yet.
    pub matched: Option<bool>,
}

/// A saved file.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    /// Where it was written.
    pub path: String,
}

/// Splits the 60 digits into the 12 groups of 5 people read aloud.
pub fn groups(digits: &str) -> Vec<String> {
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// The safety number and our QR code for a contact.
#[tauri::command]
#[specta::specta]
pub async fn safety_number(
    session: State<'_, Session>,
    contact_id: String,
) -> UiResult<SafetyNumber> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .with(move |client| {
            let c = client
                .store()
                .contact(&contact)?
                .ok_or_else(|| UiError::not_found("No such contact."))?;
            let digits = client.safety_number(&contact)?;
            let payload = client.verification_payload(&contact)?;
            let png = qr_image::encode_png(&payload)
                .map_err(|_| UiError::internal("The QR code could not be drawn."))?;
            Ok(SafetyNumber {
                contact_id,
                display_name: display_name(&c),
                groups: groups(&digits),
                qr_png: B64.encode(png),
                verification: c.verification.into(),
            })
        })
        .await
}

fn scan_result(result: Result<(), VerifyError>) -> UiResult<ScanResult> {
    match result {
        Ok(()) => Ok(ScanResult {
            matched: Some(true),
        }),
        Err(VerifyError::Mismatch) => Ok(ScanResult {
            matched: Some(false),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Compares the code in an image (their screen, photographed or saved) with ours.
#[tauri::command]
#[specta::specta]
pub async fn verify_image(
    session: State<'_, Session>,
    contact_id: String,
    image: String,
) -> UiResult<ScanResult> {
    let contact = parse_contact_id(&contact_id)?;
    let payload = qr_payload(&image)?;
    let engine = session.engine().await?;
    engine
        .with(move |client| scan_result(client.verify_scanned(&contact, &payload)))
        .await
}

/// Looks for their code in one camera frame (8-bit grey, row-major).
#[tauri::command]
#[specta::specta]
pub async fn verify_frame(
    session: State<'_, Session>,
    contact_id: String,
    width: u32,
    height: u32,
    luma: String,
) -> UiResult<ScanResult> {
    let contact = parse_contact_id(&contact_id)?;
    if luma.len() > MAX_IMAGE_BYTES / 3 * 4 + 4 {
        return Err(UiError::invalid("The camera frame is too large."));
    }
    let grey = B64
        .decode(luma.trim())
        .map_err(|_| UiError::invalid("The camera frame could not be read."))?;
    let Ok(payload) = qr_image::decode_luma(width, height, &grey) else {
        return Ok(ScanResult { matched: None });
    };
    let engine = session.engine().await?;
    engine
        .with(move |client| scan_result(client.verify_scanned(&contact, &payload)))
        .await
}

/// Marks a contact verified after comparing the digits (true), or clears it (false).
/// Accepting a changed key is `true`.
#[tauri::command]
#[specta::specta]
pub async fn set_verified(
    session: State<'_, Session>,
    contact_id: String,
    verified: bool,
) -> UiResult<()> {
    let contact = parse_contact_id(&contact_id)?;
    let engine = session.engine().await?;
    engine
        .with(move |client| Ok(client.set_verified(&contact, verified)?))
        .await
}

/// Keeps only characters that are safe in a file name on every platform.
pub fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() {
        "sotto-code.png".to_owned()
    } else if cleaned.to_ascii_lowercase().ends_with(".png") {
        cleaned.to_owned()
    } else {
        format!("{cleaned}.png")
    }
}

/// Saves a PNG (one of our QR codes) into the user's Downloads folder, or the profile folder
/// when there is none, never overwriting a file.
#[tauri::command]
#[specta::specta]
pub async fn save_image(session: State<'_, Session>, name: String, png: String) -> UiResult<Saved> {
    let bytes = B64
        .decode(png.trim())
        .map_err(|_| UiError::invalid("The image could not be read."))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.len() > MAX_IMAGE_BYTES {
        return Err(UiError::invalid("Only PNG images can be saved."));
    }
    let folder = directories::UserDirs::new()
        .and_then(|d| d.download_dir().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| session.dir().to_owned());
    std::fs::create_dir_all(&folder).map_err(|e| {
        UiError::new(
            ErrorCode::Io,
            format!("The folder could not be created ({}).", e.kind()),
        )
    })?;
    let name = safe_file_name(&name);
    let stem = name.trim_end_matches(".png").to_owned();
    for n in 0..1000 {
        let candidate = if n == 0 {
            folder.join(&name)
        } else {
            folder.join(format!("{stem}-{n}.png"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, &bytes).map_err(|e| {
                    UiError::new(
                        ErrorCode::Io,
                        format!("The image could not be saved ({}).", e.kind()),
                    )
                })?;
                return Ok(Saved {
                    path: candidate.display().to_string(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(UiError::new(
                    ErrorCode::Io,
                    format!("The image could not be saved ({}).", e.kind()),
                ));
            }
        }
    }
    Err(UiError::new(
        ErrorCode::Io,
        "Too many files with that name.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_digits_make_twelve_groups_of_five() {
        let digits: String = (0..60).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
        let g = groups(&digits);
        assert_eq!(g.len(), 12);
        assert!(g.iter().all(|x| x.len() == 5));
        assert_eq!(g.concat(), digits);
    }

    #[test]
    fn file_names_cannot_escape_the_folder() {
        assert_eq!(safe_file_name("../../etc/passwd"), "etcpasswd.png");
        assert_eq!(safe_file_name("alice code.png"), "alicecode.png");
        assert_eq!(safe_file_name("..."), "sotto-code.png");
        assert_eq!(safe_file_name("bob-safety"), "bob-safety.png");
    }
}
