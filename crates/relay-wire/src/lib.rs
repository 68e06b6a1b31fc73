//! The relay protocol's wire format: request, response and push frames exchanged over
//! WebSockets between Sotto clients and the relay. Pure encoding and decoding, no I/O, shared by
//! `sotto-relay` and `sotto-client`.
//!
//! Every WebSocket binary message carries exactly one [`Frame`]. All integers are big-endian.
//! The header is 12 bytes: `version (u8) | kind (u8) | id (u64) | op (u16)`, then a body whose
//! layout depends on `kind` and `op`; see section 13 of `docs/PROTOCOL.md` for the byte-level layout.
//! Decoders check every length against a fixed bound *and* the bytes left before allocating,
//! and reject unknown versions, kinds, ops and trailing bytes with a typed [`DecodeError`].
#![forbid(unsafe_code)]

mod codec;

use std::fmt;

use codec::{Reader, Writer};

/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Length of the fixed frame header.
pub const HEADER_LEN: usize = 12;
/// Largest sealed envelope a client may send (bytes).
pub const MAX_ENVELOPE_LEN: usize = 128 * 1024;
/// Largest frame either side may send: an envelope plus generous room for the other fields.
pub const MAX_FRAME_LEN: usize = MAX_ENVELOPE_LEN + 1024;
/// Length of the authentication challenge pushed on connect.
pub const CHALLENGE_LEN: usize = 32;
/// Domain separator prefixed to the signed authentication message.
pub const AUTH_DOMAIN: &[u8] = b"sotto-relay-auth-v1";
/// Longest relay host string accepted in [`Request::Authenticate`].
pub const MAX_HOST_LEN: usize = 255;
/// Longest username on the wire (the relay further restricts the alphabet and minimum length).
pub const MAX_USERNAME_LEN: usize = 32;
/// Largest opaque X25519 prekey record (public key plus signature and any metadata).
pub const MAX_PREKEY_LEN: usize = 256;
/// Largest opaque ML-KEM prekey record (ML-KEM-1024 key is 1568 bytes, plus signature).
pub const MAX_KEM_PREKEY_LEN: usize = 2048;
/// Most prekeys accepted in one upload request.
pub const MAX_PREKEYS_PER_UPLOAD: usize = 100;
/// Longest human-readable message in an error response.
pub const MAX_ERROR_MESSAGE_LEN: usize = 256;

/// The message a client signs with its identity key to authenticate:
/// `"sotto-relay-auth-v1" || challenge (32 bytes) || relay host (UTF-8, e.g. "relay.example:443")`.
#[must_use]
pub fn auth_message(challenge: &[u8; CHALLENGE_LEN], relay_host: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(AUTH_DOMAIN.len() + CHALLENGE_LEN + relay_host.len());
    msg.extend_from_slice(AUTH_DOMAIN);
    msg.extend_from_slice(challenge);
    msg.extend_from_slice(relay_host.as_bytes());
    msg
}

/// A frame could not be encoded: a field is longer than the protocol allows. Nothing is ever
/// truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {len} bytes; the protocol allows at most {max}")]
pub struct EncodeError {
    /// Which field.
    pub field: &'static str,
    /// Its length.
    pub len: usize,
    /// The most the decoder accepts.
    pub max: usize,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is larger than [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first byte is not [`PROTOCOL_VERSION`].
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The kind byte is not one of [`FrameKind`].
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The op code is not known for this frame kind.
    #[error("unknown op {0:#06x}")]
    UnknownOp(u16),
    /// The frame ended inside a field.
    #[error("frame truncated in field {field}")]
    Truncated {
        /// Field being read.
        field: &'static str,
    },
    /// A length prefix exceeds the field's bound.
    #[error("field {field} has length {len}, more than the maximum {max}")]
    TooLong {
        /// Field being read.
        field: &'static str,
        /// Announced length.
        len: usize,
        /// Bound for that field.
        max: usize,
    },
    /// A field has a value outside its domain.
    #[error("field {field} has invalid value {value}")]
    BadValue {
        /// Field being read.
        field: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A string field is not UTF-8.
    #[error("field {field} is not valid UTF-8")]
    BadUtf8 {
        /// Field being read.
        field: &'static str,
    },
    /// Bytes remain after the last field.
    #[error("{count} trailing bytes after the frame body")]
    TrailingBytes {
        /// How many bytes remain.
        count: usize,
    },
}

impl DecodeError {
    /// The error code the relay answers this decoding failure with.
    #[must_use]
    pub fn error_code(&self) -> ErrorCode {
        match self {
            DecodeError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            DecodeError::UnknownOp(_) => ErrorCode::UnknownOp,
            _ => ErrorCode::Malformed,
        }
    }
}

/// The second header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Client → relay request; answered by exactly one response with the same id.
    Request = 0,
    /// Relay → client answer to a request.
    Response = 1,
    /// Relay → client unsolicited message.
    Push = 2,
    /// Client → relay acknowledgement of an envelope push (deletes it from the mailbox).
    PushAck = 3,
}

impl FrameKind {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => FrameKind::Request,
            1 => FrameKind::Response,
            2 => FrameKind::Push,
            3 => FrameKind::PushAck,
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }
}

/// Request op codes (the header's `op` field for requests and responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Op {
    /// Prove control of an identity key ([`Request::Authenticate`]).
    Authenticate = 0x0001,
    /// No-op round trip; also a barrier: the relay handles a connection's frames in order.
    Ping = 0x0002,
    /// Delete the authenticated account and everything the relay holds for it.
    DeleteAccount = 0x0003,
    /// Claim a username for the authenticated account.
    UsernameClaim = 0x0010,
    /// Resolve a username to an account id (allowed unauthenticated).
    UsernameLookup = 0x0011,
    /// Atomically replace the account's username.
    UsernameChange = 0x0012,
    /// Give up the account's username.
    UsernameRelease = 0x0013,
    /// Set (or replace) the account's registration lock.
    RegLockSet = 0x0018,
    /// Remove the account's registration lock.
    RegLockClear = 0x0019,
    /// Replace this device's signed X25519 prekey.
    UploadSignedPrekey = 0x0020,
    /// Add one-time X25519 prekeys for this device.
    UploadOneTimePrekeys = 0x0021,
    /// Replace this device's last-resort ML-KEM prekey.
    UploadLastResortKemPrekey = 0x0022,
    /// Add one-time ML-KEM prekeys for this device.
    UploadOneTimeKemPrekeys = 0x0023,
    /// Fetch a prekey bundle for a device (allowed unauthenticated).
    FetchBundle = 0x0024,
    /// How many one-time prekeys this device has left.
    PrekeyCount = 0x0025,
    /// Queue a sealed envelope for a device (allowed unauthenticated).
    SendEnvelope = 0x0030,
}

impl Op {
    /// Parses a request op code.
    pub fn from_u16(v: u16) -> Result<Self, DecodeError> {
        Ok(match v {
            0x0001 => Op::Authenticate,
            0x0002 => Op::Ping,
            0x0003 => Op::DeleteAccount,
            0x0010 => Op::UsernameClaim,
            0x0011 => Op::UsernameLookup,
            0x0012 => Op::UsernameChange,
            0x0013 => Op::UsernameRelease,
            0x0018 => Op::RegLockSet,
            0x0019 => Op::RegLockClear,
            0x0020 => Op::UploadSignedPrekey,
            0x0021 => Op::UploadOneTimePrekeys,
            0x0022 => Op::UploadLastResortKemPrekey,
            0x0023 => Op::UploadOneTimeKemPrekeys,
            0x0024 => Op::FetchBundle,
            0x0025 => Op::PrekeyCount,
            0x0030 => Op::SendEnvelope,
            other => return Err(DecodeError::UnknownOp(other)),
        })
    }

    /// Whether the connection must have authenticated before sending this request. Sending
    /// sealed envelopes, fetching bundles and looking up usernames are anonymous on purpose.
    #[must_use]
    pub fn requires_auth(self) -> bool {
        !matches!(
            self,
            Op::Authenticate | Op::Ping | Op::UsernameLookup | Op::FetchBundle | Op::SendEnvelope
        )
    }
}

/// Push op codes (the header's `op` field for pushes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum PushOp {
    /// Authentication challenge, sent once right after the WebSocket opens.
    Challenge = 0x0001,
    /// A queued envelope; acknowledge with a [`Frame::PushAck`] carrying its message id.
    Envelope = 0x0002,
    /// Everything queued at authentication time has been pushed.
    QueueDrained = 0x0003,
    /// This device's one-time prekey stock runs low.
    PrekeysLow = 0x0004,
}

impl PushOp {
    fn from_u16(v: u16) -> Result<Self, DecodeError> {
        Ok(match v {
            0x0001 => PushOp::Challenge,
            0x0002 => PushOp::Envelope,
            0x0003 => PushOp::QueueDrained,
            0x0004 => PushOp::PrekeysLow,
            other => return Err(DecodeError::UnknownOp(other)),
        })
    }
}

/// A relay address: an account (its 32-byte Ed25519 identity public key) and a device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The account id: the identity public key.
    pub account: [u8; 32],
    /// The device id within that account.
    pub device: u32,
}

/// An opaque prekey record with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prekey {
    /// Key id chosen by the owner.
    pub id: u32,
    /// Opaque bytes (public key, signature...), never interpreted by the relay.
    pub bytes: Vec<u8>,
}

/// A client request. Its `Debug` names only the op: usernames, PIN verifiers, keys and
/// envelopes never reach a log line or a panic message through it.
#[derive(Clone, PartialEq, Eq)]
pub enum Request {
    /// Answer to the connection's challenge.
    Authenticate {
        /// The account id (Ed25519 identity public key).
        identity_key: [u8; 32],
        /// The device id being authenticated.
        device_id: u32,
        /// The relay host string the client connected to, as signed.
        relay_host: String,
        /// Ed25519 signature over [`auth_message`].
        signature: [u8; 64],
    },
    /// Round trip with no effect.
    Ping,
    /// Delete the authenticated account: its devices, prekeys, queued envelopes, username
    /// and registration lock. The relay answers, then closes the account's connections.
    DeleteAccount,
    /// Claim a username; `pin_verifier` is needed to take over one protected by a registration
    /// lock held by another account.
    UsernameClaim {
        /// Requested username.
        username: String,
        /// The 32-byte Argon2id-stretched PIN, if the client has one.
        pin_verifier: Option<[u8; 32]>,
    },
    /// Resolve a username.
    UsernameLookup {
        /// The username.
        username: String,
    },
    /// Replace the account's username.
    UsernameChange {
        /// The new username.
        username: String,
    },
    /// Release the account's username.
    UsernameRelease,
    /// Set the registration lock.
    RegLockSet {
        /// The 32-byte Argon2id-stretched PIN.
        pin_verifier: [u8; 32],
    },
    /// Clear the registration lock.
    RegLockClear,
    /// Replace the signed X25519 prekey.
    UploadSignedPrekey(Prekey),
    /// Add one-time X25519 prekeys.
    UploadOneTimePrekeys(Vec<Prekey>),
    /// Replace the last-resort ML-KEM prekey.
    UploadLastResortKemPrekey(Prekey),
    /// Add one-time ML-KEM prekeys.
    UploadOneTimeKemPrekeys(Vec<Prekey>),
    /// Fetch a bundle for a device.
    FetchBundle {
        /// Whose bundle.
        address: Address,
    },
    /// Count this device's remaining one-time prekeys.
    PrekeyCount,
    /// Queue a sealed envelope.
    SendEnvelope {
        /// Recipient device.
        recipient: Address,
        /// Opaque sealed-sender envelope.
        envelope: Vec<u8>,
    },
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request::{:?}", self.op())
    }
}

impl Request {
    /// This request's op code.
    #[must_use]
    pub fn op(&self) -> Op {
        match self {
            Request::Authenticate { .. } => Op::Authenticate,
            Request::Ping => Op::Ping,
            Request::DeleteAccount => Op::DeleteAccount,
            Request::UsernameClaim { .. } => Op::UsernameClaim,
            Request::UsernameLookup { .. } => Op::UsernameLookup,
            Request::UsernameChange { .. } => Op::UsernameChange,
            Request::UsernameRelease => Op::UsernameRelease,
            Request::RegLockSet { .. } => Op::RegLockSet,
            Request::RegLockClear => Op::RegLockClear,
            Request::UploadSignedPrekey(_) => Op::UploadSignedPrekey,
            Request::UploadOneTimePrekeys(_) => Op::UploadOneTimePrekeys,
            Request::UploadLastResortKemPrekey(_) => Op::UploadLastResortKemPrekey,
            Request::UploadOneTimeKemPrekeys(_) => Op::UploadOneTimeKemPrekeys,
            Request::FetchBundle { .. } => Op::FetchBundle,
            Request::PrekeyCount => Op::PrekeyCount,
            Request::SendEnvelope { .. } => Op::SendEnvelope,
        }
    }

    fn encode_body(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            Request::Authenticate {
                identity_key,
                device_id,
                relay_host,
                signature,
            } => {
                w.raw(identity_key);
                w.u32(*device_id);
                w.bytes8(relay_host.as_bytes(), MAX_HOST_LEN, "relay_host")?;
                w.raw(signature);
            }
            Request::Ping
            | Request::DeleteAccount
            | Request::UsernameRelease
            | Request::RegLockClear => {}
            Request::PrekeyCount => {}
            Request::UsernameClaim {
                username,
                pin_verifier,
            } => {
                w.bytes8(username.as_bytes(), MAX_USERNAME_LEN, "username")?;
                match pin_verifier {
                    Some(pin) => {
                        w.u8(1);
                        w.raw(pin);
                    }
                    None => w.u8(0),
                }
            }
            Request::UsernameLookup { username } | Request::UsernameChange { username } => {
                w.bytes8(username.as_bytes(), MAX_USERNAME_LEN, "username")?;
            }
            Request::RegLockSet { pin_verifier } => w.raw(pin_verifier),
            Request::UploadSignedPrekey(k) => encode_prekey(w, k, MAX_PREKEY_LEN)?,
            Request::UploadLastResortKemPrekey(k) => encode_prekey(w, k, MAX_KEM_PREKEY_LEN)?,
            Request::UploadOneTimePrekeys(keys) => encode_prekeys(w, keys, MAX_PREKEY_LEN)?,
            Request::UploadOneTimeKemPrekeys(keys) => {
                encode_prekeys(w, keys, MAX_KEM_PREKEY_LEN)?;
            }
            Request::FetchBundle { address } => encode_address(w, address),
            Request::SendEnvelope {
                recipient,
                envelope,
            } => {
                encode_address(w, recipient);
                w.bytes32(envelope, MAX_ENVELOPE_LEN, "envelope")?;
            }
        }
        Ok(())
    }

    fn decode_body(op: Op, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match op {
            Op::Authenticate => Request::Authenticate {
                identity_key: r.array("identity_key")?,
                device_id: r.u32("device_id")?,
                relay_host: r.string8(MAX_HOST_LEN, "relay_host")?,
                signature: r.array("signature")?,
            },
            Op::Ping => Request::Ping,
            Op::DeleteAccount => Request::DeleteAccount,
            Op::UsernameClaim => {
                let username = r.string8(MAX_USERNAME_LEN, "username")?;
                let pin_verifier = if r.bool("has_pin")? {
                    Some(r.array("pin_verifier")?)
                } else {
                    None
                };
                Request::UsernameClaim {
                    username,
                    pin_verifier,
                }
            }
            Op::UsernameLookup => Request::UsernameLookup {
                username: r.string8(MAX_USERNAME_LEN, "username")?,
            },
            Op::UsernameChange => Request::UsernameChange {
                username: r.string8(MAX_USERNAME_LEN, "username")?,
            },
            Op::UsernameRelease => Request::UsernameRelease,
            Op::RegLockSet => Request::RegLockSet {
                pin_verifier: r.array("pin_verifier")?,
            },
            Op::RegLockClear => Request::RegLockClear,
            Op::UploadSignedPrekey => {
                Request::UploadSignedPrekey(decode_prekey(r, MAX_PREKEY_LEN)?)
            }
            Op::UploadOneTimePrekeys => {
                Request::UploadOneTimePrekeys(decode_prekeys(r, MAX_PREKEY_LEN)?)
            }
            Op::UploadLastResortKemPrekey => {
                Request::UploadLastResortKemPrekey(decode_prekey(r, MAX_KEM_PREKEY_LEN)?)
            }
            Op::UploadOneTimeKemPrekeys => {
                Request::UploadOneTimeKemPrekeys(decode_prekeys(r, MAX_KEM_PREKEY_LEN)?)
            }
            Op::FetchBundle => Request::FetchBundle {
                address: decode_address(r)?,
            },
            Op::PrekeyCount => Request::PrekeyCount,
            Op::SendEnvelope => Request::SendEnvelope {
                recipient: decode_address(r)?,
                envelope: r.bytes32(MAX_ENVELOPE_LEN, "envelope")?,
            },
        })
    }
}

fn encode_prekey(w: &mut Writer, k: &Prekey, max: usize) -> Result<(), EncodeError> {
    w.u32(k.id);
    w.bytes16(&k.bytes, max, "prekey")
}

fn encode_prekeys(w: &mut Writer, keys: &[Prekey], max: usize) -> Result<(), EncodeError> {
    if keys.len() > MAX_PREKEYS_PER_UPLOAD {
        return Err(EncodeError {
            field: "prekey_count",
            len: keys.len(),
            max: MAX_PREKEYS_PER_UPLOAD,
        });
    }
    // Cannot fail: at most MAX_PREKEYS_PER_UPLOAD (100).
    w.u16(keys.len() as u16);
    for k in keys {
        encode_prekey(w, k, max)?;
    }
    Ok(())
}

fn decode_prekey(r: &mut Reader<'_>, max: usize) -> Result<Prekey, DecodeError> {
    Ok(Prekey {
        id: r.u32("prekey_id")?,
        bytes: r.bytes16(max, "prekey")?,
    })
}

fn decode_prekeys(r: &mut Reader<'_>, max: usize) -> Result<Vec<Prekey>, DecodeError> {
    let count = usize::from(r.u16("prekey_count")?);
    if count > MAX_PREKEYS_PER_UPLOAD {
        return Err(DecodeError::TooLong {
            field: "prekey_count",
            len: count,
            max: MAX_PREKEYS_PER_UPLOAD,
        });
    }
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(decode_prekey(r, max)?);
    }
    Ok(keys)
}

fn encode_address(w: &mut Writer, a: &Address) {
    w.raw(&a.account);
    w.u32(a.device);
}

fn decode_address(r: &mut Reader<'_>) -> Result<Address, DecodeError> {
    Ok(Address {
        account: r.array("account")?,
        device: r.u32("device")?,
    })
}

/// A prekey bundle for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The device's signed X25519 prekey.
    pub signed_prekey: Prekey,
    /// A one-time X25519 prekey, handed out once, if any are left.
    pub one_time_prekey: Option<Prekey>,
    /// A one-time ML-KEM prekey if any are left, otherwise the last-resort one (if uploaded).
    pub kem_prekey: Option<KemPrekey>,
}

/// An ML-KEM prekey in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KemPrekey {
    /// The key.
    pub prekey: Prekey,
    /// True for the reusable last-resort key, false for a one-time key.
    pub last_resort: bool,
}

/// Successful response payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The request succeeded and has no payload.
    Ok,
    /// Answer to [`Request::UsernameLookup`].
    Account {
        /// The account id owning the username.
        account: [u8; 32],
    },
    /// Answer to [`Request::FetchBundle`].
    Bundle(Bundle),
    /// Answer to [`Request::PrekeyCount`].
    PrekeyCount {
        /// One-time X25519 prekeys left.
        one_time: u32,
        /// One-time ML-KEM prekeys left.
        one_time_kem: u32,
    },
}

impl Response {
    fn encode_body(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            Response::Ok => {}
            Response::Account { account } => w.raw(account),
            Response::Bundle(b) => {
                encode_prekey(w, &b.signed_prekey, MAX_PREKEY_LEN)?;
                match &b.one_time_prekey {
                    Some(k) => {
                        w.u8(1);
                        encode_prekey(w, k, MAX_PREKEY_LEN)?;
                    }
                    None => w.u8(0),
                }
                match &b.kem_prekey {
                    Some(k) => {
                        w.u8(if k.last_resort { 2 } else { 1 });
                        encode_prekey(w, &k.prekey, MAX_KEM_PREKEY_LEN)?;
                    }
                    None => w.u8(0),
                }
            }
            Response::PrekeyCount {
                one_time,
                one_time_kem,
            } => {
                w.u32(*one_time);
                w.u32(*one_time_kem);
            }
        }
        Ok(())
    }

    fn decode_body(op: Op, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match op {
            Op::UsernameLookup => Response::Account {
                account: r.array("account")?,
            },
            Op::FetchBundle => {
                let signed_prekey = decode_prekey(r, MAX_PREKEY_LEN)?;
                let one_time_prekey = if r.bool("has_one_time")? {
                    Some(decode_prekey(r, MAX_PREKEY_LEN)?)
                } else {
                    None
                };
                let kem_prekey = match r.u8("kem_kind")? {
                    0 => None,
                    kind @ (1 | 2) => Some(KemPrekey {
                        prekey: decode_prekey(r, MAX_KEM_PREKEY_LEN)?,
                        last_resort: kind == 2,
                    }),
                    value => {
                        return Err(DecodeError::BadValue {
                            field: "kem_kind",
                            value: u64::from(value),
                        });
                    }
                };
                Response::Bundle(Bundle {
                    signed_prekey,
                    one_time_prekey,
                    kem_prekey,
                })
            }
            Op::PrekeyCount => Response::PrekeyCount {
                one_time: r.u32("one_time")?,
                one_time_kem: r.u32("one_time_kem")?,
            },
            _ => Response::Ok,
        })
    }
}

/// Typed error codes carried by error responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The frame could not be decoded.
    Malformed,
    /// The frame's version byte is not supported.
    UnsupportedVersion,
    /// The op code is unknown.
    UnknownOp,
    /// The frame exceeds [`MAX_FRAME_LEN`].
    FrameTooLarge,
    /// The request needs an authenticated connection.
    AuthRequired,
    /// The connection already authenticated.
    AlreadyAuthenticated,
    /// The challenge is older than the relay's challenge lifetime; reconnect.
    ChallengeExpired,
    /// The challenge was already used (replay); reconnect for a new one.
    ChallengeUsed,
    /// The signature does not verify.
    BadSignature,
    /// The signed relay host is not one this relay answers to.
    WrongRelayHost,
    /// A rate limit was hit; `detail` is the suggested wait in milliseconds.
    RateLimited,
    /// The thing asked for does not exist.
    NotFound,
    /// The username is held by another account.
    UsernameTaken,
    /// The username is not 3–32 characters of `a-z 0-9 _ .`, starting with a letter.
    UsernameInvalid,
    /// The account already has a username (use change).
    AlreadyHasUsername,
    /// The account has no username.
    NoUsername,
    /// The username is registration-locked; a PIN verifier is required.
    PinRequired,
    /// Wrong PIN; `detail` is the number of attempts left today.
    PinIncorrect,
    /// Too many wrong PINs; `detail` is the wait in milliseconds.
    PinLocked,
    /// The recipient's mailbox is full; `detail` is the cap.
    MailboxFull,
    /// The envelope is empty or larger than allowed; `detail` is the maximum.
    EnvelopeTooLarge,
    /// The recipient device has never registered with this relay.
    UnknownRecipient,
    /// The device already holds the maximum number of prekeys; `detail` is the cap.
    TooManyPrekeys,
    /// The relay failed internally; retry later.
    Internal,
    /// A code this version does not know.
    Other(u16),
}

impl ErrorCode {
    /// The code's wire value.
    #[must_use]
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::UnsupportedVersion => 2,
            ErrorCode::UnknownOp => 3,
            ErrorCode::FrameTooLarge => 4,
            ErrorCode::AuthRequired => 10,
            ErrorCode::AlreadyAuthenticated => 11,
            ErrorCode::ChallengeExpired => 12,
            ErrorCode::ChallengeUsed => 13,
            ErrorCode::BadSignature => 14,
            ErrorCode::WrongRelayHost => 15,
            ErrorCode::RateLimited => 20,
            ErrorCode::NotFound => 21,
            ErrorCode::UsernameTaken => 30,
            ErrorCode::UsernameInvalid => 31,
            ErrorCode::AlreadyHasUsername => 32,
            ErrorCode::NoUsername => 33,
            ErrorCode::PinRequired => 34,
            ErrorCode::PinIncorrect => 35,
            ErrorCode::PinLocked => 36,
            ErrorCode::MailboxFull => 40,
            ErrorCode::EnvelopeTooLarge => 41,
            ErrorCode::UnknownRecipient => 42,
            ErrorCode::TooManyPrekeys => 50,
            ErrorCode::Internal => 99,
            ErrorCode::Other(v) => v,
        }
    }

    /// Parses a wire value; unknown values become [`ErrorCode::Other`].
    #[must_use]
    pub fn from_u16(v: u16) -> Self {
        const KNOWN: [ErrorCode; 24] = [
            ErrorCode::Malformed,
            ErrorCode::UnsupportedVersion,
            ErrorCode::UnknownOp,
            ErrorCode::FrameTooLarge,
            ErrorCode::AuthRequired,
            ErrorCode::AlreadyAuthenticated,
            ErrorCode::ChallengeExpired,
            ErrorCode::ChallengeUsed,
            ErrorCode::BadSignature,
            ErrorCode::WrongRelayHost,
            ErrorCode::RateLimited,
            ErrorCode::NotFound,
            ErrorCode::UsernameTaken,
            ErrorCode::UsernameInvalid,
            ErrorCode::AlreadyHasUsername,
            ErrorCode::NoUsername,
            ErrorCode::PinRequired,
            ErrorCode::PinIncorrect,
            ErrorCode::PinLocked,
            ErrorCode::MailboxFull,
            ErrorCode::EnvelopeTooLarge,
            ErrorCode::UnknownRecipient,
            ErrorCode::TooManyPrekeys,
            ErrorCode::Internal,
        ];
        KNOWN
            .into_iter()
            .find(|c| c.to_u16() == v)
            .unwrap_or(ErrorCode::Other(v))
    }
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// What went wrong.
    pub code: ErrorCode,
    /// Code-specific number (wait in ms, attempts left, a limit), 0 when unused.
    pub detail: u64,
    /// Short English explanation for logs; never shown as-is to users.
    pub message: String,
}

impl ErrorResponse {
    /// Builds an error response.
    #[must_use]
    pub fn new(code: ErrorCode, detail: u64, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.len() > MAX_ERROR_MESSAGE_LEN {
            let mut cut = MAX_ERROR_MESSAGE_LEN;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Self {
            code,
            detail,
            message,
        }
    }
}

impl std::fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({}): {}", self.code, self.detail, self.message)
    }
}

/// An envelope pushed to its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Relay-assigned id, unique and never reused on a relay; acknowledge it, dedupe by it.
    pub message_id: u64,
    /// When the relay accepted the envelope (Unix milliseconds).
    pub received_at_ms: u64,
    /// The opaque sealed envelope as sent.
    pub envelope: Vec<u8>,
}

/// Relay → client pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// Sent once when the WebSocket opens.
    Challenge {
        /// Fresh random challenge to sign.
        challenge: [u8; CHALLENGE_LEN],
    },
    /// A queued envelope for this device.
    Envelope(Delivery),
    /// The backlog present at authentication has been pushed.
    QueueDrained,
    /// One-time prekey stock runs low.
    PrekeysLow {
        /// One-time X25519 prekeys left.
        one_time: u32,
        /// One-time ML-KEM prekeys left.
        one_time_kem: u32,
    },
}

impl Push {
    /// The push op code.
    #[must_use]
    pub fn op(&self) -> PushOp {
        match self {
            Push::Challenge { .. } => PushOp::Challenge,
            Push::Envelope(_) => PushOp::Envelope,
            Push::QueueDrained => PushOp::QueueDrained,
            Push::PrekeysLow { .. } => PushOp::PrekeysLow,
        }
    }
}

/// One WebSocket binary message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client request; `id` is chosen by the client and echoed in the response.
    Request {
        /// Request id.
        id: u64,
        /// The request.
        request: Request,
    },
    /// Relay response. `op` is the raw op code of the request (it may be unknown to the relay,
    /// in which case `result` is an [`ErrorCode::UnknownOp`] error).
    Response {
        /// Echoed request id.
        id: u64,
        /// Echoed op code.
        op: u16,
        /// Success payload or typed error.
        result: Result<Response, ErrorResponse>,
    },
    /// Relay push. The header id is the message id for envelopes, 0 otherwise.
    Push(Push),
    /// Client acknowledgement of an envelope push: the header id is the message id.
    PushAck {
        /// The acknowledged message id.
        message_id: u64,
    },
}

/// The fixed header, readable even when the body is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Version byte.
    pub version: u8,
    /// Raw kind byte.
    pub kind: u8,
    /// Request / message id.
    pub id: u64,
    /// Raw op code.
    pub op: u16,
}

/// Reads the header without validating anything else, so a relay can answer a malformed
/// request with an error carrying the right id.
#[must_use]
pub fn peek_header(bytes: &[u8]) -> Option<Header> {
    let mut r = Reader::new(bytes.get(..HEADER_LEN)?);
    Some(Header {
        version: r.u8("version").ok()?,
        kind: r.u8("kind").ok()?,
        id: r.u64("id").ok()?,
        op: r.u16("op").ok()?,
    })
}

impl Frame {
    /// Encodes the frame. A field longer than the decoder accepts (docs/PROTOCOL.md, section
    /// 13, limits) is an [`EncodeError`]: nothing is ever truncated, and every frame this
    /// returns decodes again.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::default();
        w.u8(PROTOCOL_VERSION);
        match self {
            Frame::Request { id, request } => {
                w.u8(FrameKind::Request as u8);
                w.u64(*id);
                w.u16(request.op() as u16);
                request.encode_body(&mut w)?;
            }
            Frame::Response { id, op, result } => {
                w.u8(FrameKind::Response as u8);
                w.u64(*id);
                w.u16(*op);
                match result {
                    Ok(resp) => {
                        w.u8(0);
                        resp.encode_body(&mut w)?;
                    }
                    Err(e) => {
                        w.u8(1);
                        w.u16(e.code.to_u16());
                        w.u64(e.detail);
                        w.bytes16(e.message.as_bytes(), MAX_ERROR_MESSAGE_LEN, "message")?;
                    }
                }
            }
            Frame::Push(push) => {
                w.u8(FrameKind::Push as u8);
                let id = match push {
                    Push::Envelope(d) => d.message_id,
                    _ => 0,
                };
                w.u64(id);
                w.u16(push.op() as u16);
                match push {
                    Push::Challenge { challenge } => w.raw(challenge),
                    Push::Envelope(d) => {
                        w.u64(d.received_at_ms);
                        w.bytes32(&d.envelope, MAX_ENVELOPE_LEN, "envelope")?;
                    }
                    Push::QueueDrained => {}
                    Push::PrekeysLow {
                        one_time,
                        one_time_kem,
                    } => {
                        w.u32(*one_time);
                        w.u32(*one_time_kem);
                    }
                }
            }
            Frame::PushAck { message_id } => {
                w.u8(FrameKind::PushAck as u8);
                w.u64(*message_id);
                w.u16(PushOp::Envelope as u16);
            }
        }
        Ok(w.buf)
    }

    /// Decodes one frame, rejecting oversized input, unknown versions/kinds/ops and trailing
    /// bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(DecodeError::FrameTooLarge {
                len: bytes.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let kind = FrameKind::from_u8(r.u8("kind")?)?;
        let id = r.u64("id")?;
        let raw_op = r.u16("op")?;
        let frame = match kind {
            FrameKind::Request => {
                let op = Op::from_u16(raw_op)?;
                Frame::Request {
                    id,
                    request: Request::decode_body(op, &mut r)?,
                }
            }
            FrameKind::Response => {
                let result = if r.bool("status")? {
                    Err(ErrorResponse {
                        code: ErrorCode::from_u16(r.u16("error_code")?),
                        detail: r.u64("error_detail")?,
                        message: r.string16(MAX_ERROR_MESSAGE_LEN, "error_message")?,
                    })
                } else {
                    Ok(Response::decode_body(Op::from_u16(raw_op)?, &mut r)?)
                };
                Frame::Response {
                    id,
                    op: raw_op,
                    result,
                }
            }
            FrameKind::Push => {
                let push = match PushOp::from_u16(raw_op)? {
                    PushOp::Challenge => Push::Challenge {
                        challenge: r.array("challenge")?,
                    },
                    PushOp::Envelope => Push::Envelope(Delivery {
                        message_id: id,
                        received_at_ms: r.u64("received_at_ms")?,
                        envelope: r.bytes32(MAX_ENVELOPE_LEN, "envelope")?,
                    }),
                    PushOp::QueueDrained => Push::QueueDrained,
                    PushOp::PrekeysLow => Push::PrekeysLow {
                        one_time: r.u32("one_time")?,
                        one_time_kem: r.u32("one_time_kem")?,
                    },
                };
                if !matches!(push, Push::Envelope(_)) && id != 0 {
                    return Err(DecodeError::BadValue {
                        field: "push_id",
                        value: id,
                    });
                }
                Frame::Push(push)
            }
            FrameKind::PushAck => {
                if raw_op != PushOp::Envelope as u16 {
                    return Err(DecodeError::UnknownOp(raw_op));
                }
                Frame::PushAck { message_id: id }
            }
        };
        r.finish()?;
        Ok(frame)
    }
}

#[cfg(test)]
mod tests;
