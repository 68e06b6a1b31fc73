//! Sotto's cryptographic protocol: identities, prekeys, PQXDH session start, the Double
//! Ratchet, sealed-sender envelopes, safety numbers and QR payloads, plus their wire formats.
//!
//! The crate is pure: no I/O, no async runtime, no database. Everything else in Sotto stores,
//! sends or shows what this crate produces. All randomness is injected (`&mut impl CryptoRng +
//! RngCore`) so known-answer vectors can be generated from a seeded RNG. The byte-level format
//! of every structure is specified in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]

pub mod address;
pub mod bundle;
pub mod identity;
pub mod kem;
pub mod padding;
pub mod pqxdh;
pub mod prekeys;
mod primitives;
pub mod qr;
pub mod ratchet;
pub mod safety;
pub mod sealed_sender;
pub mod session;
pub mod wire;
#[cfg(test)]
mod wycheproof_tests;

pub use address::{AccountId, Address, DeviceId};
pub use bundle::{BundleError, PreKeyBundle, PreKeyUpload, UploadEncodeError, VerifiedBundle};
pub use identity::{IdentityKeyPair, IdentityPublicKey};
pub use pqxdh::{PreKeyMessage, PreKeyReplayTag};
pub use prekeys::{
    KemPreKeyKind, KemPreKeyPublic, KemPreKeySecret, OneTimePreKeyPublic, OneTimePreKeySecret,
    PreKeyId, SignedPreKeyPublic, SignedPreKeySecret,
};
pub use ratchet::{DoubleRatchet, Header, RatchetMessage};
pub use sealed_sender::{OpenError, OpenedEnvelope, SealedEnvelope};
pub use session::{
    CiphertextMessage, DecryptError, EncryptError, InitiateError, RespondError, Responded,
    ResponderPreKeys, Session,
};
pub use wire::{DecodeError, EncodeError};
