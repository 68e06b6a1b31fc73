//! Sotto's client engine, shared by the desktop app and the `sotto` command-line client: relay
//! connection, account setup, outbox, receive pipeline and contacts.
//!
//! It knows nothing of Tauri or of any user interface. Persistence is behind
//! [`state::ClientState`]; the inner content format, PIN stretching and the receive pipeline
//! are specified in docs/CLIENT.md.
#![forbid(unsafe_code)]

pub mod content;
pub mod engine;
pub mod pin;
pub mod relay;
pub mod state;

pub use content::{ClientMessageId, Content};
pub use engine::{Client, ContactError, Event, ReceiveError, SendError, SetupError, UsernameError};
pub use relay::{Backoff, ConnectError, RelayConnection, RequestError};
pub use state::{ClientState, Contact, MemoryState, StateError, StoredMessage};

/// The product name shown to users.
pub const APP_NAME: &str = "Sotto";

/// This build's version, taken from the workspace manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
