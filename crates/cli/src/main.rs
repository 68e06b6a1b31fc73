//! `sotto`: the headless Sotto client, for scripting, servers and tests. Every command opens
//! the profile, does one thing and exits with a code scripts can rely on (see `exit.rs`).

mod commands;
mod exit;
mod output;
mod profile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::CliError;

const EXIT_CODES: &str = "Exit codes: 0 success, 1 failure, 2 usage, 3 relay unreachable or refused \
(a message stays queued), 4 no such profile/contact/username, 5 verification code does not match, \
6 profile locked (keyring unavailable, passphrase missing or wrong), 7 username taken or locked, \
8 safety number changed and sending is blocked.";

/// Sotto's command-line client: end-to-end encrypted messages from a terminal.
#[derive(Parser)]
#[command(name = "sotto", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Profile folder (default: SOTTO_PROFILE, else the platform data folder).
    #[arg(long, global = true, value_name = "DIR")]
    profile: Option<PathBuf>,
    /// Read the profile passphrase from the first line of FILE (passphrase mode; the
    /// environment variable SOTTO_PASSPHRASE works too). Without one, the key is in the OS
    /// keyring.
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Machine-readable JSON output (one object per line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Subcommand)]
pub enum Command {
    /// Create a profile, register with a relay and claim a username.
    Init {
        /// Relay address, ws://HOST:PORT or wss://HOST:PORT.
        #[arg(long)]
        relay: String,
        /// Trust this PEM CA certificate file for a wss:// relay, besides the system's trust
        /// store (for a self-hosted relay). Kept in the profile.
        #[arg(long, value_name = "FILE")]
        relay_ca: Option<std::path::PathBuf>,
        /// Username to claim.
        #[arg(long)]
        username: String,
        /// Set a registration-lock PIN, read from SOTTO_PIN or the first line of stdin.
        #[arg(long)]
        pin: bool,
    },
    /// Show this account: username, relay, account id.
    Whoami,
    /// Manage contacts.
    Contacts {
        #[command(subcommand)]
        /// What to do with contacts.
        action: ContactsCmd,
    },
    /// Send a text message (adds the contact by username first if needed).
    Send {
        /// Username (or account id) of the contact.
        name: String,
        /// The message.
        text: String,
    },
    /// Fetch and show new messages, then exit (or keep listening with --follow).
    Receive {
        /// Keep listening until interrupted.
        #[arg(long)]
        follow: bool,
        /// Give up waiting for the relay's queue after this many seconds.
        #[arg(long, default_value_t = 15)]
        timeout: u64,
        /// Do not mark shown messages read (no read receipts, timers not started).
        #[arg(long)]
        no_read: bool,
    },
    /// Show the newest messages of a conversation.
    Messages {
        /// Username (or account id) of the contact.
        name: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show the safety number with a contact; optionally save our verification QR code.
    SafetyNumber {
        /// Username (or account id) of the contact.
        name: String,
        /// Write our verification QR code as a PNG image.
        #[arg(long, value_name = "FILE")]
        qr_png: Option<PathBuf>,
    },
    /// Verify a contact: scan their QR code image, or mark verified after comparing digits.
    Verify {
        /// Username (or account id) of the contact.
        name: String,
        /// A PNG or JPEG image of the contact's verification QR code.
        #[arg(long, value_name = "IMAGE", conflicts_with_all = ["manual", "reset"])]
        scan: Option<PathBuf>,
        /// Mark verified: you compared the 60 digits with the contact.
        #[arg(long, conflicts_with = "reset")]
        manual: bool,
        /// Mark unverified (also accepts a changed key without verifying it).
        #[arg(long)]
        reset: bool,
    },
    /// Save our contact invite (relay, username, identity key) as a QR code image.
    Invite {
        /// PNG file to write.
        #[arg(long, value_name = "FILE")]
        qr_png: PathBuf,
    },
    /// Set the disappearing-message timer of a conversation (5s to 4w, or off).
    Disappearing {
        /// Username (or account id) of the contact.
        name: String,
        /// Duration such as 30s, 5m, 1h, 1d, 1w, or off.
        duration: String,
    },
    /// Privacy settings.
    Settings {
        #[command(subcommand)]
        /// What to do with settings.
        action: SettingsCmd,
    },
    /// Encrypted backups.
    Backup {
        #[command(subcommand)]
        /// Export or import.
        action: BackupCmd,
    },
    /// Delete this account from the relay (username, registration lock, prekeys, queued
    /// messages), then this profile folder and its keyring entry. Cannot be undone.
    DeleteAccount {
        /// Confirm: without it nothing is deleted.
        #[arg(long)]
        yes: bool,
        /// Keep the local profile (messages, contacts) after deleting the account.
        #[arg(long)]
        keep_profile: bool,
    },
    /// Search all conversations (every word must match).
    Search {
        /// Words to find.
        text: String,
        /// Most results.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Contact actions.
#[derive(Subcommand)]
pub enum ContactsCmd {
    /// Add by username, or from an invite QR code image.
    Add {
        /// Username.
        #[arg(required_unless_present = "invite")]
        name: Option<String>,
        /// A PNG or JPEG image of the contact's invite QR code.
        #[arg(long, value_name = "IMAGE")]
        invite: Option<PathBuf>,
    },
    /// List contacts and message requests.
    List,
    /// Block a contact (their messages are discarded).
    Block {
        /// Username or account id.
        name: String,
    },
    /// Unblock a contact.
    Unblock {
        /// Username or account id.
        name: String,
    },
    /// Accept a message request.
    Accept {
        /// Username or account id.
        name: String,
    },
    /// Delete a contact with its conversation.
    Delete {
        /// Username or account id.
        name: String,
    },
}

/// Settings actions.
#[derive(Subcommand)]
pub enum SettingsCmd {
    /// Show one setting, or all with what each protects against.
    Get {
        /// Setting key (e.g. read-receipts).
        key: Option<String>,
    },
    /// Change a setting.
    Set {
        /// Setting key.
        key: String,
        /// New value.
        value: String,
    },
    /// Turn on hardened mode: every setting at its safest; shows what changed.
    Hardened {
        /// `on`.
        #[arg(value_parser = ["on"])]
        state: String,
    },
    /// List what is still risky.
    Checkup,
}

/// Backup actions. The backup passphrase comes from SOTTO_BACKUP_PASSPHRASE or
/// --backup-passphrase-file.
#[derive(Subcommand)]
pub enum BackupCmd {
    /// Write an encrypted backup of this profile.
    Export {
        /// Backup file.
        file: PathBuf,
        /// First line = backup passphrase.
        #[arg(long, value_name = "FILE")]
        backup_passphrase_file: Option<PathBuf>,
    },
    /// Restore a backup into a new profile (the --profile folder must not hold one).
    Import {
        /// Backup file.
        file: PathBuf,
        /// First line = backup passphrase.
        #[arg(long, value_name = "FILE")]
        backup_passphrase_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sotto: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, json),
    }
}

fn report(e: &CliError, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            serde_json::json!({"type": "error", "code": e.code as u8, "message": e.message})
        );
    }
    eprintln!("sotto: {e}");
    ExitCode::from(e.code as u8)
}
