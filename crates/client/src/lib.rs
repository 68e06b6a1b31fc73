//! Sotto's client engine, shared by the desktop app and the `sotto` command-line client: relay
//! connection, outbox, receive pipeline, contacts, verification, disappearing timers and backups.
//!
//! It knows nothing of Tauri or of any user interface.
#![forbid(unsafe_code)]

/// The product name shown to users.
pub const APP_NAME: &str = "Sotto";

/// This build's version, taken from the workspace manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
