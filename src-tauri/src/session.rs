//! The app's one profile and its lifecycle: onboarding creates it, unlock (or the keyring) opens
//! it into a running [`Engine`], lock drops the engine and with it every decrypted byte this
//! process holds for the UI.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use sotto_client::Client;
use sotto_store::{KdfParams, KeyMode, KeyProtection, OpenError, Passphrase, Store};
use specta::Type;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::embedded_relay::EmbeddedRelay;
use crate::engine::{Engine, Sink};
use crate::error::{ErrorCode, UiError, UiResult};
use crate::events::SottoEvent;
use crate::views::{KeyStorageView, Me, ProfileStatus};

/// Which relay a new profile uses.
#[derive(Debug, Clone, Deserialize, Type)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RelayChoice {
    /// The relay embedded in the app, on this computer.
    Embedded,
    /// A relay somewhere else.
    Address {
        /// ws://host:port or wss://host.
        url: String,
    },
}

/// The profile of this app instance and, when open, its engine.
pub struct Session {
    dir: PathBuf,
    relay: Arc<EmbeddedRelay>,
    sink: Sink,
    engine: Mutex<Option<Engine>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn passphrase(text: &str) -> UiResult<Passphrase> {
    if text.chars().count() < 8 {
        return Err(UiError::invalid(
            "The passphrase must have at least 8 characters.",
        ));
    }
    Ok(Passphrase::new(Zeroizing::new(text.to_owned())))
}

fn open_error(e: OpenError) -> UiError {
    match e {
        OpenError::NoProfile => UiError::new(ErrorCode::Locked, "There is no profile yet."),
        OpenError::Keyring(k) => UiError::new(
            ErrorCode::KeyringUnavailable,
            format!(
                "The system keyring could not be reached ({k}). Unlock or start your keyring \
                 (for example GNOME Keyring or KWallet) and try again."
            ),
        ),
        OpenError::KeyFile(_) => UiError::new(
            ErrorCode::WrongPassphrase,
            "That passphrase is not correct.",
        ),
        e => UiError::internal(format!("The profile could not be opened: {e}")),
    }
}

impl Session {
    /// A session for the profile folder `dir`.
    pub fn new(dir: PathBuf, relay: Arc<EmbeddedRelay>, sink: Sink) -> Self {
        Self {
            dir,
            relay,
            sink,
            engine: Mutex::new(None),
        }
    }

    /// The profile folder.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The running engine, or `locked`.
    pub async fn engine(&self) -> UiResult<Engine> {
        self.engine.lock().await.clone().ok_or_else(UiError::locked)
    }

    /// What the UI should show first; opens a keyring profile on the way.
    pub async fn status(&self) -> UiResult<ProfileStatus> {
        if let Some(engine) = self.engine.lock().await.clone() {
            return Ok(ProfileStatus::Ready {
                me: self.me(&engine).await?,
            });
        }
        if !Store::exists(&self.dir) {
            return Ok(ProfileStatus::New {
                keyring_available: keyring_available(),
            });
        }
        match sotto_store::key_mode(&self.dir).map_err(open_error)? {
            KeyMode::Passphrase => Ok(ProfileStatus::Locked {
                key_storage: KeyStorageView::Passphrase,
            }),
            KeyMode::Keyring => {
                let store = Store::open_with_keyring(&self.dir).map_err(open_error)?;
                let me = self.start(store, None).await?;
                Ok(ProfileStatus::Ready { me })
            }
        }
    }

    /// Creates the profile, registers it and claims the username.
    pub async fn create(
        &self,
        username: &str,
        relay: RelayChoice,
        pin: Option<&str>,
        key_storage: KeyStorageView,
        passphrase_text: Option<&str>,
    ) -> UiResult<Me> {
        let mut slot = self.engine.lock().await;
        if slot.is_some() || Store::exists(&self.dir) {
            return Err(UiError::invalid("This profile already exists."));
        }
        if let Some(pin) = pin
            && pin.chars().count() < 4
        {
            return Err(UiError::invalid("The PIN must have at least 4 characters."));
        }
        let url = self.relay_url(relay).await?;
        let secret = match (key_storage, passphrase_text) {
            (KeyStorageView::Passphrase, Some(p)) => Some(passphrase(p)?),
            (KeyStorageView::Passphrase, None) => {
                return Err(UiError::invalid("Choose a passphrase."));
            }
            (KeyStorageView::Keyring, _) => None,
        };
        let protection = match &secret {
            Some(p) => KeyProtection::Passphrase(p, KdfParams::default()),
            None => KeyProtection::Keyring,
        };
        let store = Store::create(&self.dir, protection).map_err(|e| match e {
            sotto_store::CreateError::Keyring(k) => UiError::new(
                ErrorCode::KeyringUnavailable,
                format!(
                    "The system keyring could not be reached ({k}). Choose a passphrase instead."
                ),
            ),
            e => UiError::internal(format!("The profile could not be created: {e}")),
        })?;
        let mut client = Client::open(store, &url)?;
        if let Err(e) = register(&mut client, username, pin).await {
            // Leave nothing behind, including the key's keyring entry, so onboarding can
            // start over.
            if let Err(cleanup) = client.into_store().delete() {
                tracing::warn!(error = %cleanup, "half-made profile not fully removed");
            }
            return Err(e);
        }
        if url == self.relay.url() {
            self.relay.clone().keep_serving();
        }
        let engine = Engine::start(client, self.sink.clone());
        let me = self.me(&engine).await?;
        *slot = Some(engine);
        Ok(me)
    }

    /// Opens a passphrase profile.
    pub async fn unlock(&self, passphrase_text: &str) -> UiResult<Me> {
        if let Some(engine) = self.engine.lock().await.clone() {
            return self.me(&engine).await;
        }
        let pass = Passphrase::new(Zeroizing::new(passphrase_text.to_owned()));
        let store = Store::open_with_passphrase(&self.dir, &pass).map_err(open_error)?;
        self.start(store, None).await
    }

    /// Restores a backup into this (empty) profile folder and opens it.
    pub async fn restore(
        &self,
        file: &std::path::Path,
        backup_passphrase: &str,
        relay: RelayChoice,
        key_storage: KeyStorageView,
        passphrase_text: Option<&str>,
    ) -> UiResult<Me> {
        if self.engine.lock().await.is_some() || Store::exists(&self.dir) {
            return Err(UiError::invalid("This profile already exists."));
        }
        let url = self.relay_url(relay).await?;
        let backup_pass = Passphrase::new(Zeroizing::new(backup_passphrase.to_owned()));
        let secret = match (key_storage, passphrase_text) {
            (KeyStorageView::Passphrase, Some(p)) => Some(passphrase(p)?),
            (KeyStorageView::Passphrase, None) => {
                return Err(UiError::invalid("Choose a passphrase."));
            }
            (KeyStorageView::Keyring, _) => None,
        };
        let file = file.to_owned();
        let dir = self.dir.clone();
        let sink = self.sink.clone();
        let store = tokio::task::spawn_blocking(move || {
            let protection = match &secret {
                Some(p) => KeyProtection::Passphrase(p, KdfParams::default()),
                None => KeyProtection::Keyring,
            };
            let mut progress = |p: sotto_store::backup::Progress| {
                (sink.event)(SottoEvent::BackupProgress {
                    done: p.done,
                    total: p.total,
                });
            };
            sotto_store::backup::import(&file, &backup_pass, &dir, protection, &mut progress)
        })
        .await
        .map_err(|_| UiError::internal("The restore stopped unexpectedly."))?
        .map_err(crate::backup::import_error)?;
        self.start(store, Some(url)).await
    }

    /// Drops the open profile: the engine stops and the store closes.
    /// Refused for a keyring profile, which would simply reopen without asking anything.
    pub async fn lock(&self) -> UiResult<()> {
        let mut slot = self.engine.lock().await;
        let Some(engine) = slot.clone() else {
            return Ok(());
        };
        let mode = engine.with(|client| Ok(client.store().key_mode())).await?;
        if mode == KeyMode::Keyring {
            return Err(UiError::invalid(
                "App lock needs passphrase key storage: with the keyring, the profile opens \
                 without asking. Switch key storage to a passphrase on the privacy page.",
            ));
        }
        let engine = slot.take();
        drop(slot);
        drop(engine);
        (self.sink.event)(SottoEvent::Locked);
        Ok(())
    }

    /// Opens the client on `store` (on `relay`, else the relay the profile names) and starts
    /// the engine.
    async fn start(&self, store: Store, relay: Option<String>) -> UiResult<Me> {
        let saved = match relay {
            Some(url) => url,
            None => Client::saved_relay(&store)?
                .ok_or_else(|| UiError::internal("The profile does not name its relay."))?,
        };
        if saved == self.relay.url() {
            // Best effort: if another program holds the port, the engine keeps retrying.
            if let Err(e) = self.relay.ensure().await {
                tracing::warn!(error = %e, "embedded relay unavailable");
            }
            self.relay.clone().keep_serving();
        }
        let mut client = Client::open(store, &saved)?;
        // Offline is fine: the engine reconnects by itself and the outbox waits.
        if let Err(e) = client.connect(1).await {
            tracing::info!(error = %e, "relay not reachable yet");
            client.connect_in_background();
        }
        (self.sink.protect_screen)(client.privacy()?.screen_security);
        let engine = Engine::start(client, self.sink.clone());
        let me = self.me(&engine).await?;
        let mut slot = self.engine.lock().await;
        *slot = Some(engine);
        Ok(me)
    }

    async fn me(&self, engine: &Engine) -> UiResult<Me> {
        let embedded_url = self.relay.url();
        engine
            .with(move |client| {
                Ok(Me {
                    username: client.username()?.unwrap_or_default(),
                    account_id: sotto_client::account_hex(&client.account().0),
                    relay: client.relay_url().to_owned(),
                    embedded_relay: client.relay_url() == embedded_url,
                    key_storage: client.store().key_mode().into(),
                })
            })
            .await
    }

    async fn relay_url(&self, relay: RelayChoice) -> UiResult<String> {
        match relay {
            RelayChoice::Embedded => self
                .relay
                .ensure()
                .await
                .map_err(|e| UiError::new(ErrorCode::RelayUnreachable, e.to_string())),
            RelayChoice::Address { url } => {
                let url = url.trim().to_owned();
                sotto_client::relay::parse_relay_url(&url)?;
                Ok(url)
            }
        }
    }
}

async fn register(client: &mut Client, username: &str, pin: Option<&str>) -> UiResult<()> {
    client.connect(3).await?;
    client.register().await?;
    client.claim_username(username, pin).await?;
    Ok(())
}

/// Whether the OS keyring answers (Secret Service on Linux).
fn keyring_available() -> bool {
    sotto_store::keyring_available()
}

impl Session {
    /// Where events and notifications go.
    pub fn sink(&self) -> Sink {
        self.sink.clone()
    }
}
