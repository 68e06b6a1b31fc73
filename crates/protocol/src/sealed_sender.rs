//! Sealed sender, following the two-layer structure of Signal's sealed sender v1.
//!
//! * Ephemeral layer: `e` is a fresh X25519 key; `DH(e, IK_R)` keys an AEAD that hides the
//!   sender's identity key and yields a chain key.
//! * Static layer: `DH(IK_S, IK_R)`, salted with that chain key and the encrypted identity,
//!   keys an AEAD over the content: sender identity, sender address and the inner message.
//!
//! Only someone holding the sender's identity secret can produce the static layer, so a
//! successful open authenticates the sender's identity key to the recipient. The relay sees
//! only the recipient address and an opaque payload. Unlike Signal there is no server-issued
//! sender certificate: the recipient must check that `sender_identity` is the identity it has
//! pinned for `sender_address`'s account.

use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::address::Address;
use crate::identity::{IdentityKeyPair, IdentityPublicKey};
use crate::primitives::{self, aead_open, aead_seal, hkdf_sha256, split_key_nonce};
use crate::ratchet::MAX_CIPHERTEXT_LEN;
use crate::session::CiphertextMessage;
use crate::wire::{DecodeError, EncodeError, Reader, Writer};

const ENVELOPE_VERSION: u8 = 0x01;
const PAYLOAD_VERSION: u8 = 0x01;
const CONTENT_VERSION: u8 = 0x01;
const EPHEMERAL_SALT_PREFIX: &[u8] = b"Sotto_SealedSender_v1";
const EPHEMERAL_INFO: &[u8] = b"Sotto_SealedSender_v1_Ephemeral";
const STATIC_INFO: &[u8] = b"Sotto_SealedSender_v1_Static";
const ENCRYPTED_IDENTITY_LEN: usize = IdentityPublicKey::ENCODED_LEN + 16;
/// Largest payload accepted: the largest inner message plus fixed overheads.
pub const MAX_PAYLOAD_LEN: usize = MAX_CIPHERTEXT_LEN + 4096;
/// Largest encoded [`SealedEnvelope`] that [`seal`] produces. Equal to the relay's envelope
/// limit (128 KiB), so anything `seal` returns is routable.
pub const MAX_ENVELOPE_LEN: usize = 128 * 1024;

/// Why sealing failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// A DH with the recipient identity was all zeros.
    #[error("a Diffie-Hellman output was non-contributory")]
    NonContributory,
    /// The sealed envelope would exceed [`MAX_ENVELOPE_LEN`].
    #[error("message too large")]
    MessageTooLarge,
    /// The inner message does not encode (a field outside its documented size).
    #[error("inner message: {0}")]
    Encode(#[from] EncodeError),
}

/// Why opening failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// The envelope is addressed to a different device.
    #[error("envelope is addressed to another device")]
    WrongRecipient,
    /// The payload or its decrypted content is malformed.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] DecodeError),
    /// A DH output was all zeros.
    #[error("a Diffie-Hellman output was non-contributory")]
    NonContributory,
    /// The ephemeral layer failed to authenticate.
    #[error("ephemeral layer authentication failed")]
    EphemeralLayer,
    /// The static layer failed to authenticate (sender did not hold the claimed identity).
    #[error("static layer authentication failed")]
    StaticLayer,
    /// The identity inside the content differs from the one in the ephemeral layer, or the
    /// sender address names an account other than that identity's.
    #[error("sender identity mismatch")]
    SenderMismatch,
}

/// What the relay routes: recipient address in the clear, everything else opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEnvelope {
    /// The recipient device.
    pub recipient: Address,
    /// Opaque sealed payload.
    pub payload: Vec<u8>,
}

impl SealedEnvelope {
    /// `0x01 || recipient(36) || len (u32 BE) || payload`. Fails with
    /// [`EncodeError::TooLong`] (never truncates) if the payload exceeds [`MAX_PAYLOAD_LEN`],
    /// which the decoder would reject. Envelopes from [`seal`] always encode.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::with_capacity(1 + Address::ENCODED_LEN + 4 + self.payload.len());
        w.u8(ENVELOPE_VERSION);
        self.recipient.write(&mut w);
        w.var32("sealed payload", &self.payload, MAX_PAYLOAD_LEN)?;
        Ok(w.into_vec())
    }

    /// Decodes, bounding the payload by [`MAX_PAYLOAD_LEN`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(ENVELOPE_VERSION)?;
        let recipient = Address::read(&mut r)?;
        let payload = r.var32(MAX_PAYLOAD_LEN)?.to_vec();
        r.finish()?;
        Ok(Self { recipient, payload })
    }
}

/// The authenticated contents of an opened envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedEnvelope {
    /// The sender's identity key, authenticated by the static layer.
    pub sender_identity: IdentityPublicKey,
    /// The sender's device address, as claimed inside the authenticated content.
    pub sender_address: Address,
    /// The inner session message.
    pub message: CiphertextMessage,
}

/// Ephemeral layer: 76 bytes = chain key (32) || AEAD key (32) || nonce (12).
fn ephemeral_keys(
    dh: &[u8; 32],
    recipient_identity: &IdentityPublicKey,
    ephemeral_public: &[u8; 32],
    recipient: &Address,
) -> Zeroizing<[u8; 76]> {
    let mut salt = Vec::with_capacity(EPHEMERAL_SALT_PREFIX.len() + 33 + 32 + Address::ENCODED_LEN);
    salt.extend_from_slice(EPHEMERAL_SALT_PREFIX);
    salt.extend_from_slice(&recipient_identity.encode());
    salt.extend_from_slice(ephemeral_public);
    salt.extend_from_slice(&recipient.encode());
    hkdf_sha256::<76>(&salt, dh, EPHEMERAL_INFO)
}

/// Static layer: 44 bytes = AEAD key (32) || nonce (12), salted with the ephemeral chain key
/// and the encrypted identity so the two layers are bound together.
fn static_keys(dh: &[u8; 32], chain_key: &[u8], encrypted_identity: &[u8]) -> Zeroizing<[u8; 44]> {
    let mut salt = Vec::with_capacity(32 + ENCRYPTED_IDENTITY_LEN);
    salt.extend_from_slice(chain_key);
    salt.extend_from_slice(encrypted_identity);
    hkdf_sha256::<44>(&salt, dh, STATIC_INFO)
}

/// Seals `message` from `sender` to the recipient device.
pub fn seal<R: CryptoRng + RngCore>(
    rng: &mut R,
    sender: &IdentityKeyPair,
    sender_address: Address,
    recipient_identity: &IdentityPublicKey,
    recipient: Address,
    message: &CiphertextMessage,
) -> Result<SealedEnvelope, SealError> {
    let ephemeral = StaticSecret::random_from_rng(&mut *rng);
    let ephemeral_public = X25519Public::from(&ephemeral).to_bytes();
    let recipient_x = recipient_identity.to_x25519();

    let eph_dh =
        primitives::x25519(&ephemeral, &recipient_x).map_err(|_| SealError::NonContributory)?;
    let eph = ephemeral_keys(&eph_dh, recipient_identity, &ephemeral_public, &recipient);
    let (k1, n1) = split_key_nonce(&eph[32..]);
    let encrypted_identity = aead_seal(&k1, &n1, &ephemeral_public, &sender.public().encode());

    let static_dh = primitives::x25519(&sender.x25519_secret(), &recipient_x)
        .map_err(|_| SealError::NonContributory)?;
    let (k2, n2) = split_key_nonce(&static_keys(&static_dh, &eph[..32], &encrypted_identity)[..]);
    let inner = message.encode()?;
    // envelope = version(1) || recipient || len(4) || payload; payload = version(1) || E(32) ||
    // enc_identity || AEAD(content) with a 16-byte tag; content = version(1) || IK_S || addr_S || M.
    let envelope_len = 1
        + Address::ENCODED_LEN
        + 4
        + 1
        + 32
        + ENCRYPTED_IDENTITY_LEN
        + 1
        + IdentityPublicKey::ENCODED_LEN
        + Address::ENCODED_LEN
        + inner.len()
        + 16;
    if envelope_len > MAX_ENVELOPE_LEN
        || envelope_len - 1 - Address::ENCODED_LEN - 4 > MAX_PAYLOAD_LEN
    {
        return Err(SealError::MessageTooLarge);
    }
    let mut content = Writer::with_capacity(1 + 33 + Address::ENCODED_LEN + inner.len());
    content.u8(CONTENT_VERSION);
    sender.public().write(&mut content);
    sender_address.write(&mut content);
    content.bytes(&inner);
    let encrypted_content = aead_seal(&k2, &n2, &encrypted_identity, &content.into_vec());

    let mut payload =
        Writer::with_capacity(1 + 32 + ENCRYPTED_IDENTITY_LEN + encrypted_content.len());
    payload
        .u8(PAYLOAD_VERSION)
        .bytes(&ephemeral_public)
        .bytes(&encrypted_identity)
        .bytes(&encrypted_content);
    Ok(SealedEnvelope {
        recipient,
        payload: payload.into_vec(),
    })
}

/// Opens an envelope addressed to `local_address` with our identity key pair.
pub fn open(
    recipient: &IdentityKeyPair,
    local_address: Address,
    envelope: &SealedEnvelope,
) -> Result<OpenedEnvelope, OpenError> {
    if envelope.recipient != local_address {
        return Err(OpenError::WrongRecipient);
    }
    if envelope.payload.len() > MAX_PAYLOAD_LEN {
        return Err(OpenError::Malformed(DecodeError::TooLong));
    }
    let mut r = Reader::new(&envelope.payload);
    r.version(PAYLOAD_VERSION)?;
    let ephemeral_public: [u8; 32] = r.array()?;
    let encrypted_identity = r.take(ENCRYPTED_IDENTITY_LEN)?;
    let encrypted_content = r.take(envelope.payload.len() - 1 - 32 - ENCRYPTED_IDENTITY_LEN)?;
    r.finish()?;

    let our_secret = recipient.x25519_secret();
    let eph_dh = primitives::x25519(&our_secret, &X25519Public::from(ephemeral_public))
        .map_err(|_| OpenError::NonContributory)?;
    let eph = ephemeral_keys(
        &eph_dh,
        &recipient.public(),
        &ephemeral_public,
        &local_address,
    );
    let (k1, n1) = split_key_nonce(&eph[32..]);
    let identity_bytes = aead_open(&k1, &n1, &ephemeral_public, encrypted_identity)
        .map_err(|_| OpenError::EphemeralLayer)?;
    let sender_identity = IdentityPublicKey::decode(&identity_bytes)?;

    let static_dh = primitives::x25519(&our_secret, &sender_identity.to_x25519())
        .map_err(|_| OpenError::NonContributory)?;
    let (k2, n2) = split_key_nonce(&static_keys(&static_dh, &eph[..32], encrypted_identity)[..]);
    let content = aead_open(&k2, &n2, encrypted_identity, encrypted_content)
        .map_err(|_| OpenError::StaticLayer)?;

    let mut r = Reader::new(&content);
    r.version(CONTENT_VERSION)?;
    let claimed_identity = IdentityPublicKey::read(&mut r)?;
    let sender_address = Address::read(&mut r)?;
    let rest = r.take(content.len() - 1 - IdentityPublicKey::ENCODED_LEN - Address::ENCODED_LEN)?;
    r.finish()?;
    // An account id is its identity key: an address naming another account is a lie.
    if claimed_identity != sender_identity || sender_address.account != sender_identity.account_id()
    {
        return Err(OpenError::SenderMismatch);
    }
    let message = CiphertextMessage::decode(rest)?;
    Ok(OpenedEnvelope {
        sender_identity,
        sender_address,
        message,
    })
}
