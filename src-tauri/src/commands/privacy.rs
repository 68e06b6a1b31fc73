//! The privacy page: every setting with what it protects against, the hardened switch, the
//! check-up, and the key-storage switch (which re-wraps the database key).

use serde::Serialize;
use sotto_client::Client;
use sotto_client::privacy::{KeyStorage, PrivacySettings, Severity};
use sotto_store::{KdfParams, KeyMode, Passphrase, RewrapError};
use specta::Type;
use tauri::State;
use zeroize::Zeroizing;

use crate::error::{ErrorCode, UiError, UiResult};
use crate::session::Session;
use crate::views::KeyStorageView;

/// One setting as the page shows it.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct SettingView {
    /// Key (as in the CLI).
    pub key: String,
    /// Short label.
    pub label: String,
    /// What it protects against, in plain language.
    pub protects_against: String,
    /// Accepted values.
    pub values: String,
    /// Current value.
    pub value: String,
}

/// How much a risk matters.
#[derive(Debug, Clone, Copy, Serialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum SeverityView {
    /// A little about habits.
    Low,
    /// Who you talk to, or old messages.
    Medium,
    /// Message text in front of someone else.
    High,
}

/// A remaining risk.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct RiskView {
    /// Setting key.
    pub key: String,
    /// Setting label.
    pub label: String,
    /// How much it matters.
    pub severity: SeverityView,
    /// Current value.
    pub current: String,
    /// Why it is a risk.
    pub reason: String,
}

/// One change made by the hardened switch.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct ChangeView {
    /// Setting key.
    pub key: String,
    /// Setting label.
    pub label: String,
    /// Value before.
    pub old: String,
    /// Value after.
    pub new: String,
}

/// The whole page.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct PrivacyPage {
    /// Every setting.
    pub settings: Vec<SettingView>,
    /// Every setting is at its safest.
    pub hardened: bool,
    /// What is still risky.
    pub checkup: Vec<RiskView>,
    /// Whether this OS can keep the window out of screenshots.
    pub screen_security_supported: bool,
}

/// The hardened switch's result.
#[derive(Debug, Clone, Serialize, Type)]
#[serde(rename_all = "camelCase")]
pub struct HardenedResult {
    /// What changed.
    pub changed: Vec<ChangeView>,
    /// The page after the change.
    pub page: PrivacyPage,
}

/// Only Windows and macOS can exclude a window from capture.
pub const SCREEN_SECURITY_SUPPORTED: bool = cfg!(any(target_os = "windows", target_os = "macos"));

/// The settings with `key_storage` showing how the store is really protected.
fn effective(client: &Client) -> UiResult<PrivacySettings> {
    let mut s = client.privacy()?;
    s.key_storage = match client.store().key_mode() {
        KeyMode::Keyring => KeyStorage::Keyring,
        KeyMode::Passphrase => KeyStorage::Passphrase,
    };
    Ok(s)
}

fn page(client: &Client) -> UiResult<PrivacyPage> {
    let s = effective(client)?;
    let mut settings = Vec::new();
    for info in PrivacySettings::describe() {
        settings.push(SettingView {
            key: info.key.to_owned(),
            label: info.label.to_owned(),
            protects_against: info.protects_against.to_owned(),
            values: info.values.to_owned(),
            value: s
                .get(info.key)
                .map_err(|_| UiError::internal("A setting could not be read."))?,
        });
    }
    let checkup = s
        .checkup()
        .into_iter()
        .map(|r| RiskView {
            key: r.key.to_owned(),
            label: r.label.to_owned(),
            severity: match r.severity {
                Severity::Low => SeverityView::Low,
                Severity::Medium => SeverityView::Medium,
                Severity::High => SeverityView::High,
            },
            current: r.current,
            reason: r.reason.to_owned(),
        })
        .collect();
    Ok(PrivacyPage {
        settings,
        hardened: s.is_hardened(),
        checkup,
        screen_security_supported: SCREEN_SECURITY_SUPPORTED,
    })
}

/// Moves the database key into the keyring, or wraps it with a passphrase.
fn switch_key_storage(
    client: &mut Client,
    mode: KeyStorageView,
    passphrase: Option<&str>,
) -> UiResult<()> {
    let store = client.store_mut();
    match (mode, store.key_mode()) {
        (KeyStorageView::Keyring, KeyMode::Keyring)
        | (KeyStorageView::Passphrase, KeyMode::Passphrase) => Ok(()),
        (KeyStorageView::Passphrase, KeyMode::Keyring) => {
            let text = passphrase.ok_or_else(|| UiError::invalid("Choose a passphrase."))?;
            if text.chars().count() < 8 {
                return Err(UiError::invalid(
                    "The passphrase must have at least 8 characters.",
                ));
            }
            let p = Passphrase::new(Zeroizing::new(text.to_owned()));
            store
                .switch_to_passphrase(&p, KdfParams::default())
                .map_err(|e| UiError::internal(format!("The key could not be re-wrapped: {e}")))
        }
        // Lowering the protection: only for whoever knows the current passphrase, not for
        // anyone who finds the window unlocked.
        (KeyStorageView::Keyring, KeyMode::Passphrase) => {
            let text =
                passphrase.ok_or_else(|| UiError::invalid("Enter your current passphrase."))?;
            let current = Passphrase::new(Zeroizing::new(text.to_owned()));
            store.switch_to_keyring(&current).map_err(|e| match e {
                RewrapError::WrongPassphrase => UiError::wrong_passphrase(),
                e => UiError::new(
                    ErrorCode::KeyringUnavailable,
                    format!("The key could not be moved to the keyring: {e}"),
                ),
            })
        }
    }
}

fn save(client: &mut Client, mut s: PrivacySettings) -> UiResult<()> {
    s.key_storage = effective(client)?.key_storage;
    client.set_privacy(&s)?;
    Ok(())
}

/// Applies the screen-security setting to the window after a change.
fn protect(session: &Session, page: &PrivacyPage) {
    let on = page
        .settings
        .iter()
        .any(|s| s.key == "screen-security" && s.value == "on");
    (session.sink().protect_screen)(on);
}

/// The privacy page.
#[tauri::command]
#[specta::specta]
pub async fn privacy_page(session: State<'_, Session>) -> UiResult<PrivacyPage> {
    let engine = session.engine().await?;
    engine.with(|client| page(client)).await
}

/// Changes one setting (keys and values as in the CLI). Key storage has its own command.
#[tauri::command]
#[specta::specta]
pub async fn set_setting(
    session: State<'_, Session>,
    key: String,
    value: String,
) -> UiResult<PrivacyPage> {
    if key == "key-storage" {
        return Err(UiError::invalid("Change key storage with set_key_storage."));
    }
    let engine = session.engine().await?;
    engine
        .with(move |client| {
            let mut s = client.privacy()?;
            s.set(&key, &value)
                .map_err(|e| UiError::invalid(e.to_string()))?;
            save(client, s)?;
            page(client)
        })
        .await
        .inspect(|p| protect(&session, p))
}

/// Hardened mode on: every setting at its safest (key storage moves to a passphrase only when
/// one is given). Off: back to the everyday defaults, key storage unchanged.
#[tauri::command]
#[specta::specta]
pub async fn set_hardened(
    session: State<'_, Session>,
    on: bool,
    passphrase: Option<String>,
) -> UiResult<HardenedResult> {
    let passphrase = passphrase.map(Zeroizing::new);
    let engine = session.engine().await?;
    engine
        .with(move |client| {
            let before = effective(client)?;
            let mut after = if on {
                let mut s = before.clone();
                s.apply_hardened();
                s
            } else {
                PrivacySettings::default()
            };
            if on && let Some(p) = passphrase.as_deref() {
                switch_key_storage(client, KeyStorageView::Passphrase, Some(p))?;
            }
            after.key_storage = effective(client)?.key_storage;
            save(client, after.clone())?;
            let mut changed = Vec::new();
            for info in PrivacySettings::describe() {
                let old = before.get(info.key).unwrap_or_default();
                let new = after.get(info.key).unwrap_or_default();
                if old != new {
                    changed.push(ChangeView {
                        key: info.key.to_owned(),
                        label: info.label.to_owned(),
                        old,
                        new,
                    });
                }
            }
            Ok(HardenedResult {
                changed,
                page: page(client)?,
            })
        })
        .await
        .inspect(|r| protect(&session, &r.page))
}

/// Switches where the database key is kept (re-wrapping it; messages are not re-encrypted).
/// `passphrase`: to a passphrase, the new one; back to the keyring, the current one (it
/// lowers the protection, so it must be the owner asking).
#[tauri::command]
#[specta::specta]
pub async fn set_key_storage(
    session: State<'_, Session>,
    mode: KeyStorageView,
    passphrase: Option<String>,
) -> UiResult<PrivacyPage> {
    let passphrase = passphrase.map(Zeroizing::new);
    let engine = session.engine().await?;
    engine
        .with(move |client| {
            switch_key_storage(client, mode, passphrase.as_deref().map(String::as_str))?;
            let s = client.privacy()?;
            save(client, s)?;
            page(client)
        })
        .await
}
