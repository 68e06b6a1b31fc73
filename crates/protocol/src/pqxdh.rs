//! PQXDH key agreement (Signal's PQXDH spec, revision 3) with X25519 and ML-KEM-768, and the
//! initial message that carries its public values.
//!
//! `SK = HKDF-SHA256(salt = 0x00*32, ikm = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4] || SS,
//! info = PQXDH_INFO, 32 bytes)` and `AD = Encode(IK_A) || Encode(IK_B)`.

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::identity::IdentityPublicKey;
use crate::kem::KEM_CIPHERTEXT_LEN;
use crate::prekeys::PreKeyId;
use crate::primitives::{self, NonContributory, hkdf_sha256};
use crate::ratchet::RatchetMessage;
use crate::wire::{Bounded16, DecodeError, EncodeError, Reader, Writer};

/// HKDF info string for PQXDH (Sotto-specific, names the curve, hash and KEM).
pub const PQXDH_INFO: &[u8] = b"Sotto_PQXDH_X25519_SHA-256_ML-KEM-768_v1";
const PREKEY_MESSAGE_VERSION: u8 = 0x01;
/// Length of the session associated data, `Encode(IK_A) || Encode(IK_B)`.
pub(crate) const SESSION_AD_LEN: usize = 2 * IdentityPublicKey::ENCODED_LEN;

/// The first message(s) of a session, sent until the initiator receives a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyMessage {
    /// Id of the responder's signed prekey that was used.
    pub signed_prekey_id: PreKeyId,
    /// Id of the responder's one-time X25519 prekey, if one was used.
    pub one_time_prekey_id: Option<PreKeyId>,
    /// Id of the responder's ML-KEM prekey (one-time or last-resort) that was used.
    pub kem_prekey_id: PreKeyId,
    /// The initiator's identity key.
    pub identity: IdentityPublicKey,
    /// The initiator's ephemeral X25519 key `EK_A` (also called the base key).
    pub base_key: [u8; 32],
    /// ML-KEM-768 ciphertext (1088 bytes).
    pub kem_ciphertext: Vec<u8>,
    /// The first Double Ratchet message.
    pub message: RatchetMessage,
}

impl PreKeyMessage {
    /// Wire encoding (see docs/PROTOCOL.md, "PreKeyMessage"). Fails, rather than producing
    /// bytes no decoder accepts, if `kem_ciphertext` is not 1088 bytes or the inner message
    /// does not encode.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let inner = self.message.encode()?;
        let mut w = Writer::with_capacity(1 + 13 + 33 + 32 + KEM_CIPHERTEXT_LEN + inner.len());
        w.u8(PREKEY_MESSAGE_VERSION).u32(self.signed_prekey_id);
        match self.one_time_prekey_id {
            Some(id) => w.u8(1).u32(id),
            None => w.u8(0),
        };
        w.u32(self.kem_prekey_id);
        self.identity.write(&mut w);
        w.bytes(&self.base_key)
            .fixed("KEM ciphertext", &self.kem_ciphertext, KEM_CIPHERTEXT_LEN)?
            .bytes(&inner);
        Ok(w.into_vec())
    }

    /// Decodes a prekey message.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish()?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version(PREKEY_MESSAGE_VERSION)?;
        let signed_prekey_id = r.u32()?;
        let one_time_prekey_id = if r.flag()? { Some(r.u32()?) } else { None };
        let kem_prekey_id = r.u32()?;
        let identity = IdentityPublicKey::read(r)?;
        let base_key = r.x25519_public("base key")?;
        let kem_ciphertext = r.take(KEM_CIPHERTEXT_LEN)?.to_vec();
        let message = RatchetMessage::read(r)?;
        Ok(Self {
            signed_prekey_id,
            one_time_prekey_id,
            kem_prekey_id,
            identity,
            base_key,
            kem_ciphertext,
            message,
        })
    }
}

/// Domain separator of [`PreKeyReplayTag::digest`].
pub const REPLAY_TAG_CONTEXT: &[u8] = b"Sotto_PreKeyReplay_v1";

/// What a responder must remember about a session it accepted from a [`PreKeyMessage`] that
/// named no one-time X25519 prekey, so that a replay of that message cannot start the session
/// again. Only the signed prekey (and possibly the reusable last-resort ML-KEM key) went into
/// such a session, so nothing is deleted by accepting it; keep the tag for as long as the
/// signed prekey `signed_prekey_id` is kept, and delete it with that prekey.
///
/// `digest = SHA-256("Sotto_PreKeyReplay_v1" || Encode(IK_A) || EK_A)`. Both inputs are
/// public values of the message; the tag is not secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PreKeyReplayTag {
    /// The signed prekey the session was started with; the tag's lifetime is that prekey's.
    pub signed_prekey_id: PreKeyId,
    /// Hash of the initiator identity and base key.
    pub digest: [u8; 32],
}

impl PreKeyReplayTag {
    /// Encoded size: `signed_prekey_id (u32) || digest (32)`.
    pub const ENCODED_LEN: usize = 36;

    /// `signed_prekey_id (u32 BE) || digest (32)`, for the caller's store.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..4].copy_from_slice(&self.signed_prekey_id.to_be_bytes());
        out[4..].copy_from_slice(&self.digest);
        out
    }

    /// Decodes [`encode`](Self::encode)'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let tag = Self {
            signed_prekey_id: r.u32()?,
            digest: r.array()?,
        };
        r.finish()?;
        Ok(tag)
    }
}

impl PreKeyMessage {
    /// The replay tag of this session start, or `None` if it names a one-time X25519 prekey
    /// (deleting that prekey after the first success is then what stops a replay).
    pub fn replay_tag(&self) -> Option<PreKeyReplayTag> {
        if self.one_time_prekey_id.is_some() {
            return None;
        }
        let mut h = Sha256::new();
        h.update(REPLAY_TAG_CONTEXT);
        h.update(self.identity.encode());
        h.update(self.base_key);
        Some(PreKeyReplayTag {
            signed_prekey_id: self.signed_prekey_id,
            digest: h.finalize().into(),
        })
    }
}

/// `AD = Encode(IK_A) || Encode(IK_B)` with A the initiator.
pub(crate) fn session_ad(
    initiator: &IdentityPublicKey,
    responder: &IdentityPublicKey,
) -> Bounded16 {
    let mut ad = [0u8; SESSION_AD_LEN];
    let (a, b) = ad.split_at_mut(IdentityPublicKey::ENCODED_LEN);
    a.copy_from_slice(&initiator.encode());
    b.copy_from_slice(&responder.encode());
    Bounded16::from_array(ad)
}

/// Combines the DH outputs and KEM secret into SK.
fn kdf(dhs: &[&[u8; 32]], kem_secret: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * (dhs.len() + 2)));
    ikm.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        ikm.extend_from_slice(dh.as_slice());
    }
    ikm.extend_from_slice(kem_secret);
    hkdf_sha256::<32>(&[0u8; 32], &ikm, PQXDH_INFO)
}

fn dh(secret: &StaticSecret, public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
    primitives::x25519(secret, &X25519Public::from(*public))
}

/// Initiator side: returns SK.
pub(crate) fn initiator_secret(
    identity_secret: &StaticSecret,
    ephemeral: &StaticSecret,
    responder_identity: &IdentityPublicKey,
    signed_prekey: &[u8; 32],
    one_time_prekey: Option<&[u8; 32]>,
    kem_secret: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
    let dh1 = dh(identity_secret, signed_prekey)?;
    let dh2 = dh(ephemeral, responder_identity.to_x25519().as_bytes())?;
    let dh3 = dh(ephemeral, signed_prekey)?;
    let dh4 = one_time_prekey.map(|k| dh(ephemeral, k)).transpose()?;
    let mut parts = vec![&*dh1, &*dh2, &*dh3];
    if let Some(d) = dh4.as_deref() {
        parts.push(d);
    }
    Ok(kdf(&parts, kem_secret))
}

/// Responder side: returns SK.
pub(crate) fn responder_secret(
    identity_secret: &StaticSecret,
    signed_prekey: &StaticSecret,
    one_time_prekey: Option<&StaticSecret>,
    initiator_identity: &IdentityPublicKey,
    base_key: &[u8; 32],
    kem_secret: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
    let dh1 = dh(signed_prekey, initiator_identity.to_x25519().as_bytes())?;
    let dh2 = dh(identity_secret, base_key)?;
    let dh3 = dh(signed_prekey, base_key)?;
    let dh4 = one_time_prekey.map(|k| dh(k, base_key)).transpose()?;
    let mut parts = vec![&*dh1, &*dh2, &*dh3];
    if let Some(d) = dh4.as_deref() {
        parts.push(d);
    }
    Ok(kdf(&parts, kem_secret))
}

/// Generates the initiator's ephemeral key.
pub(crate) fn ephemeral<R: CryptoRng + RngCore>(rng: &mut R) -> StaticSecret {
    StaticSecret::random_from_rng(&mut *rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKeyPair;
    use crate::ratchet::Header;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn replay_tag_is_the_documented_hash() {
        let mut rng = ChaCha20Rng::from_seed([41; 32]);
        let identity = IdentityKeyPair::generate(&mut rng).public();
        let mut m = PreKeyMessage {
            signed_prekey_id: 0x0102_0304,
            one_time_prekey_id: None,
            kem_prekey_id: 9,
            identity,
            base_key: [0xAB; 32],
            kem_ciphertext: vec![0; KEM_CIPHERTEXT_LEN],
            message: RatchetMessage {
                header: Header {
                    ratchet_key: [1; 32],
                    previous_chain_length: 0,
                    message_number: 0,
                },
                ciphertext: vec![2; 32],
            },
        };
        let mut input = b"Sotto_PreKeyReplay_v1".to_vec();
        input.extend_from_slice(&identity.encode());
        input.extend_from_slice(&[0xAB; 32]);
        let expected: [u8; 32] = Sha256::digest(&input).into();
        let tag = m.replay_tag().unwrap();
        assert_eq!(tag.signed_prekey_id, 0x0102_0304);
        assert_eq!(tag.digest, expected);
        assert_eq!(tag.encode()[..4], [1, 2, 3, 4]);

        // Only identity and base key enter the digest: the inner message, KEM ciphertext and
        // KEM prekey id (all bound by the key agreement anyway) do not.
        m.kem_prekey_id = 10;
        m.message.ciphertext[0] ^= 1;
        assert_eq!(m.replay_tag(), Some(tag));
        m.base_key[0] ^= 1;
        assert_ne!(m.replay_tag().unwrap().digest, expected);
        m.one_time_prekey_id = Some(5);
        assert_eq!(m.replay_tag(), None);
    }
}
