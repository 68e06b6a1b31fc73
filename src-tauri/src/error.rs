//! The one error type the UI sees: a stable code to branch on and a plain-English message that
//! never contains key material, message text or passphrases.

use serde::Serialize;
use sotto_client::{
    ConnectError, ContactError, ReceiveError, RequestError, SavePrivacyError, SendError,
    SetupError, StateError, UsernameError, VerifyError,
};
use sotto_relay_wire::ErrorCode as RelayCode;
use specta::Type;

/// What kind of failure it was, for the UI to choose its reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Type)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// No profile is open: onboarding or unlock first.
    Locked,
    /// The passphrase does not open this profile.
    WrongPassphrase,
    /// The OS keyring could not be reached.
    KeyringUnavailable,
    /// Someone else holds that username.
    UsernameTaken,
    /// The username is not acceptable.
    UsernameInvalid,
    /// The username is protected by a registration lock.
    RegistrationLocked,
    /// The relay could not be reached.
    RelayUnreachable,
    /// Unknown contact, username or message.
    NotFound,
    /// The contact is blocked.
    Blocked,
    /// Sending is paused until the contact's new key is reviewed.
    KeyChanged,
    /// The relay refused the message for good; it was not sent.
    Undeliverable,
    /// A bad argument.
    InvalidInput,
    /// No readable QR code in the image.
    NoQrCode,
    /// The backup file is damaged or not a Sotto backup.
    BackupCorrupt,
    /// The backup passphrase is wrong.
    BackupWrongPassphrase,
    /// A file could not be read or written.
    Io,
    /// The chosen file already exists (nothing is overwritten).
    FileExists,
    /// Anything else.
    Internal,
}

/// A failed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type, thiserror::Error)]
#[error("{message}")]
pub struct UiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// A sentence for the user.
    pub message: String,
}

impl UiError {
    /// An error with its message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn locked() -> Self {
        Self::new(ErrorCode::Locked, "Sotto is locked. Unlock it first.")
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The profile's passphrase was asked for to confirm an action, and it is not this one.
    pub(crate) fn wrong_passphrase() -> Self {
        Self::new(
            ErrorCode::WrongPassphrase,
            "That passphrase is not correct.",
        )
    }
}

/// Result of a command.
pub type UiResult<T> = Result<T, UiError>;

impl From<StateError> for UiError {
    fn from(e: StateError) -> Self {
        tracing::warn!(error = %e, "local store error");
        Self::internal("The local message store could not be read or written.")
    }
}

impl From<sotto_store::QueryError> for UiError {
    fn from(e: sotto_store::QueryError) -> Self {
        StateError::from(e).into()
    }
}

impl From<ConnectError> for UiError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::InvalidUrl => {
                Self::invalid("The relay address must look like ws://host:port or wss://host.")
            }
            e => Self::new(
                ErrorCode::RelayUnreachable,
                format!("The relay could not be reached ({e})."),
            ),
        }
    }
}

impl From<RequestError> for UiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Relay {
                code: RelayCode::NotFound,
                ..
            } => Self::not_found("The relay does not know that name."),
            e => Self::new(
                ErrorCode::RelayUnreachable,
                format!("The relay did not answer as expected ({e})."),
            ),
        }
    }
}

impl From<SetupError> for UiError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::State(e) => e.into(),
            SetupError::NotConnected => {
                Self::new(ErrorCode::RelayUnreachable, "Not connected to the relay.")
            }
            SetupError::Relay(e) => e.into(),
        }
    }
}

impl From<UsernameError> for UiError {
    fn from(e: UsernameError) -> Self {
        match e {
            UsernameError::Pin(_) => Self::invalid("The PIN must have at least 4 characters."),
            UsernameError::NotConnected => {
                Self::new(ErrorCode::RelayUnreachable, "Not connected to the relay.")
            }
            UsernameError::State(e) => e.into(),
            UsernameError::Relay(RequestError::Relay { code, .. }) => match code {
                RelayCode::UsernameTaken => Self::new(
                    ErrorCode::UsernameTaken,
                    "That username is taken. Choose another one.",
                ),
                RelayCode::PinRequired | RelayCode::PinIncorrect | RelayCode::PinLocked => {
                    Self::new(
                        ErrorCode::RegistrationLocked,
                        "That username is protected by its owner's registration lock.",
                    )
                }
                RelayCode::UsernameInvalid => Self::new(
                    ErrorCode::UsernameInvalid,
                    "Usernames are 3 to 32 letters, digits, dots or underscores.",
                ),
                other => Self::new(
                    ErrorCode::RelayUnreachable,
                    format!("The relay refused the username ({other:?})."),
                ),
            },
            UsernameError::Relay(e) => e.into(),
        }
    }
}

impl From<ContactError> for UiError {
    fn from(e: ContactError) -> Self {
        match e {
            ContactError::NotFound => Self::not_found("Nobody on this relay has that username."),
            ContactError::InvalidInvite => Self::invalid("This is not a Sotto invite code."),
            ContactError::OtherRelay(relay) => {
                Self::invalid(format!("This invite is for another relay ({relay})."))
            }
            ContactError::InviteMismatch => Self::new(
                ErrorCode::KeyChanged,
                "The invite does not match the key the relay has for that username.",
            ),
            ContactError::InvalidBundle | ContactError::Initiate => Self::internal(
                "A secure session could not be started with this contact. Try again later.",
            ),
            ContactError::State(e) => e.into(),
            ContactError::Connect(e) => e.into(),
            ContactError::Relay(e) => e.into(),
        }
    }
}

impl From<VerifyError> for UiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::UnknownContact => Self::not_found("No such contact."),
            VerifyError::Mismatch => Self::invalid("The codes do not match."),
            VerifyError::NotAVerificationCode => {
                Self::invalid("This QR code is not a Sotto safety-number code.")
            }
            VerifyError::State(e) => e.into(),
        }
    }
}

impl From<SendError> for UiError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::UnknownContact => Self::not_found("No such contact."),
            SendError::Blocked => Self::new(
                ErrorCode::Blocked,
                "You blocked this contact. Unblock them to send.",
            ),
            SendError::KeyChanged => Self::new(
                ErrorCode::KeyChanged,
                "This contact's safety number changed. Review it before sending.",
            ),
            SendError::MessageTooLarge => Self::invalid("The message is too long."),
            SendError::Undeliverable => Self::new(
                ErrorCode::Undeliverable,
                "The relay refused this message, so it was not sent.",
            ),
            SendError::NoSession | SendError::Encrypt => {
                Self::internal("The message could not be encrypted.")
            }
            SendError::SessionSetup(e) => e.into(),
            SendError::State(e) => e.into(),
            SendError::Connect(e) => e.into(),
            SendError::Relay(e) => e.into(),
        }
    }
}

impl From<ReceiveError> for UiError {
    fn from(e: ReceiveError) -> Self {
        match e {
            ReceiveError::State(e) => e.into(),
            ReceiveError::NotConnected => {
                Self::new(ErrorCode::RelayUnreachable, "Not connected to the relay.")
            }
            ReceiveError::Reconnect(e) => e.into(),
        }
    }
}

impl From<SavePrivacyError> for UiError {
    fn from(e: SavePrivacyError) -> Self {
        match e {
            SavePrivacyError::Invalid(_) => Self::invalid("That setting value is not allowed."),
            SavePrivacyError::State(e) => e.into(),
        }
    }
}
