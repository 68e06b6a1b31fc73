//! Sotto's client engine, shared by the desktop app and the `sotto` command-line client: relay
//! connection, account setup, outbox, receive pipeline, contacts and verification, all kept in
//! the encrypted profile database of `sotto-store`.
//!
//! It knows nothing of Tauri or of any user interface. The inner content format, PIN
//! stretching and the receive pipeline are specified in docs/CLIENT.md.
#![forbid(unsafe_code)]

pub mod contacts;
pub mod content;
pub mod engine;
pub mod pin;
mod prekey_codec;
pub mod privacy;
pub mod qr_image;
mod receipts;
pub mod receive;
pub mod relay;
pub mod restore;
pub mod rotation;
pub mod send;
pub mod state;

pub use contacts::{Added, ContactError, VerifyError, account_hex, parse_account_hex};
pub use content::{ClientMessageId, Content};
pub use engine::{
    Client, DeleteAccountError, SavePrivacyError, SetRelayCaError, SetupError, UsernameError,
};
pub use privacy::PrivacySettings;
pub use receive::{Event, Incoming, ReceiveError, SEARCH_INDEX_BATCH};
pub use relay::{
    Backoff, ConnectError, ConnectOptions, RelayCaError, RelayConnection, RelayTls, RequestError,
};
pub use send::SendError;
pub use state::StateError;

/// The product name shown to users.
pub const APP_NAME: &str = "Sotto";

/// This build's version, taken from the workspace manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
