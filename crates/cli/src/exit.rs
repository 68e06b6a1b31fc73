//! Exit codes scripts can rely on (also listed in `sotto --help` and docs/CLI.md).

use std::fmt;

/// Process exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Anything not covered below.
    Failure = 1,
    /// The command line is wrong or incomplete (also clap's code for usage errors).
    Usage = 2,
    /// The relay could not be reached or refused; a message stays queued in the outbox.
    Relay = 3,
    /// No such profile, contact or username.
    NotFound = 4,
    /// A scanned verification code does not match.
    Mismatch = 5,
    /// The profile could not be unlocked (keyring unavailable, passphrase missing or wrong).
    Locked = 6,
    /// The username is taken or protected by a registration lock.
    Username = 7,
    /// The contact's safety number changed and sending is blocked until it is reviewed.
    KeyChanged = 8,
}

/// An error with its exit code and a message for people (never message text or secrets).
#[derive(Debug)]
pub struct CliError {
    pub code: Code,
    pub message: String,
}

impl CliError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The error and its causes, one line (rusqlite and store errors carry no row values).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl From<sotto_client::StateError> for CliError {
    fn from(e: sotto_client::StateError) -> Self {
        Self::new(Code::Failure, chain(&e))
    }
}

impl From<sotto_store::QueryError> for CliError {
    fn from(e: sotto_store::QueryError) -> Self {
        Self::new(Code::Failure, chain(&e))
    }
}

impl From<sotto_client::ConnectError> for CliError {
    fn from(e: sotto_client::ConnectError) -> Self {
        Self::new(Code::Relay, format!("cannot reach the relay: {e}"))
    }
}

impl From<sotto_client::SendError> for CliError {
    fn from(e: sotto_client::SendError) -> Self {
        use sotto_client::SendError as E;
        let code = match &e {
            E::UnknownContact => Code::NotFound,
            E::KeyChanged => Code::KeyChanged,
            E::Connect(_) | E::Relay(_) => Code::Relay,
            E::SessionSetup(
                sotto_client::ContactError::Connect(_) | sotto_client::ContactError::Relay(_),
            ) => Code::Relay,
            _ => Code::Failure,
        };
        let msg = if e.is_queued() {
            format!(
                "{}; the message is queued and will be sent by the next `sotto send` or \
                 `sotto receive`",
                chain(&e)
            )
        } else {
            chain(&e)
        };
        Self::new(code, msg)
    }
}

impl From<sotto_client::ContactError> for CliError {
    fn from(e: sotto_client::ContactError) -> Self {
        use sotto_client::ContactError as E;
        let code = match &e {
            E::NotFound => Code::NotFound,
            E::InviteMismatch => Code::Mismatch,
            E::Connect(_) | E::Relay(_) => Code::Relay,
            _ => Code::Failure,
        };
        Self::new(code, e.to_string())
    }
}

impl From<sotto_client::VerifyError> for CliError {
    fn from(e: sotto_client::VerifyError) -> Self {
        use sotto_client::VerifyError as E;
        let code = match &e {
            E::UnknownContact => Code::NotFound,
            E::Mismatch | E::NotAVerificationCode => Code::Mismatch,
            E::State(_) => Code::Failure,
        };
        Self::new(code, e.to_string())
    }
}

impl From<sotto_client::ReceiveError> for CliError {
    fn from(e: sotto_client::ReceiveError) -> Self {
        use sotto_client::ReceiveError as E;
        match e {
            E::NotConnected => Self::new(Code::Relay, "the relay connection closed"),
            E::Reconnect(c) => c.into(),
            E::State(s) => s.into(),
        }
    }
}
