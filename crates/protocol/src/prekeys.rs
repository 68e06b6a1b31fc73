//! Prekeys: the signed X25519 prekey, one-time X25519 prekeys, and signed ML-KEM-768 prekeys
//! (last-resort and one-time), in public (uploadable) and secret (storable) forms.
//!
//! Every signed prekey is signed by the identity key over
//! `"Sotto_PreKey_v1" || kind || id (u32 BE) || public key`, so a signature can never be
//! replayed for a different kind of key or a different id.

use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::identity::{IdentityKeyPair, IdentityPublicKey};
use crate::kem::{self, KEM_PUBLIC_LEN, KEM_SEED_LEN, KemSecret};
use crate::wire::{DecodeError, Reader, Writer};

/// Identifier of a prekey, chosen by its owner; unique per kind and device.
pub type PreKeyId = u32;

const SIGNATURE_CONTEXT: &[u8] = b"Sotto_PreKey_v1";
const KIND_SIGNED_X25519: u8 = 0x01;
const KIND_KEM_LAST_RESORT: u8 = 0x02;
const KIND_KEM_ONE_TIME: u8 = 0x03;
const SECRET_VERSION: u8 = 0x01;

/// Whether an ML-KEM prekey is the reusable last-resort key or a one-time key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KemPreKeyKind {
    /// Used when the relay has run out of one-time KEM prekeys; never deleted on use.
    LastResort,
    /// Deleted by the owner after its first use.
    OneTime,
}

impl KemPreKeyKind {
    fn byte(self) -> u8 {
        match self {
            Self::LastResort => KIND_KEM_LAST_RESORT,
            Self::OneTime => KIND_KEM_ONE_TIME,
        }
    }

    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        match b {
            KIND_KEM_LAST_RESORT => Ok(Self::LastResort),
            KIND_KEM_ONE_TIME => Ok(Self::OneTime),
            _ => Err(DecodeError::Invalid("KEM prekey kind")),
        }
    }
}

fn signed_message(kind: u8, id: PreKeyId, key: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(SIGNATURE_CONTEXT.len() + 5 + key.len());
    w.bytes(SIGNATURE_CONTEXT).u8(kind).u32(id).bytes(key);
    w.into_vec()
}

/// Public half of a signed X25519 prekey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPreKeyPublic {
    /// Owner-chosen id.
    pub id: PreKeyId,
    /// X25519 public key.
    pub key: [u8; 32],
    /// Ed25519 signature by the identity key.
    pub signature: [u8; 64],
}

impl SignedPreKeyPublic {
    const LEN: usize = 4 + 32 + 64;

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.id).bytes(&self.key).bytes(&self.signature);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: r.u32()?,
            key: r.array()?,
            signature: r.array()?,
        })
    }

    pub(crate) fn verify(&self, identity: &IdentityPublicKey) -> bool {
        identity
            .verify(
                &signed_message(KIND_SIGNED_X25519, self.id, &self.key),
                &self.signature,
            )
            .is_ok()
    }
}

/// Public half of a one-time X25519 prekey (unsigned, as in X3DH/PQXDH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimePreKeyPublic {
    /// Owner-chosen id.
    pub id: PreKeyId,
    /// X25519 public key.
    pub key: [u8; 32],
}

impl OneTimePreKeyPublic {
    const LEN: usize = 4 + 32;

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.id).bytes(&self.key);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: r.u32()?,
            key: r.array()?,
        })
    }
}

/// Public half of a signed ML-KEM-768 prekey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KemPreKeyPublic {
    /// Owner-chosen id.
    pub id: PreKeyId,
    /// Last-resort or one-time.
    pub kind: KemPreKeyKind,
    /// ML-KEM-768 encapsulation key (1184 bytes).
    pub key: Vec<u8>,
    /// Ed25519 signature by the identity key.
    pub signature: [u8; 64],
}

impl KemPreKeyPublic {
    const LEN: usize = 4 + 1 + KEM_PUBLIC_LEN + 64;

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.id)
            .u8(self.kind.byte())
            .bytes(&self.key)
            .bytes(&self.signature);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = r.u32()?;
        let kind = KemPreKeyKind::from_byte(r.u8()?)?;
        let key = r.take(KEM_PUBLIC_LEN)?.to_vec();
        let signature = r.array()?;
        Ok(Self {
            id,
            kind,
            key,
            signature,
        })
    }

    pub(crate) fn verify(&self, identity: &IdentityPublicKey) -> bool {
        let sig_ok = identity
            .verify(
                &signed_message(self.kind.byte(), self.id, &self.key),
                &self.signature,
            )
            .is_ok();
        sig_ok && kem::validate_public(&self.key).is_ok()
    }
}

/// Secret half of a signed X25519 prekey, for the owner's store. No `Debug`.
#[derive(Clone)]
pub struct SignedPreKeySecret {
    id: PreKeyId,
    secret: StaticSecret,
    signature: [u8; 64],
}

impl SignedPreKeySecret {
    /// Generates and signs a new signed prekey. Rotate it periodically (e.g. weekly), keeping
    /// the previous one briefly for in-flight session starts.
    pub fn generate<R: CryptoRng + RngCore>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        id: PreKeyId,
    ) -> Self {
        let secret = StaticSecret::random_from_rng(&mut *rng);
        let key = X25519Public::from(&secret).to_bytes();
        let signature = identity.sign(&signed_message(KIND_SIGNED_X25519, id, &key));
        Self {
            id,
            secret,
            signature,
        }
    }

    /// The id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// The uploadable public half.
    pub fn public(&self) -> SignedPreKeyPublic {
        SignedPreKeyPublic {
            id: self.id,
            key: X25519Public::from(&self.secret).to_bytes(),
            signature: self.signature,
        }
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// Storage encoding: `0x01 || id || secret(32) || signature(64)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(1 + 4 + 32 + 64);
        w.u8(SECRET_VERSION)
            .u32(self.id)
            .bytes(self.secret.as_bytes())
            .bytes(&self.signature);
        w.into_zeroizing()
    }

    /// Restores from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(SECRET_VERSION)?;
        let id = r.u32()?;
        let secret = StaticSecret::from(*Zeroizing::new(r.array::<32>()?));
        let signature = r.array()?;
        r.finish()?;
        Ok(Self {
            id,
            secret,
            signature,
        })
    }
}

/// Secret half of a one-time X25519 prekey. No `Debug`.
#[derive(Clone)]
pub struct OneTimePreKeySecret {
    id: PreKeyId,
    secret: StaticSecret,
}

impl OneTimePreKeySecret {
    /// Generates one one-time prekey.
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R, id: PreKeyId) -> Self {
        Self {
            id,
            secret: StaticSecret::random_from_rng(&mut *rng),
        }
    }

    /// Generates `count` prekeys with consecutive ids starting at `first_id` (wrapping).
    pub fn generate_batch<R: CryptoRng + RngCore>(
        rng: &mut R,
        first_id: PreKeyId,
        count: u32,
    ) -> Vec<Self> {
        (0..count)
            .map(|i| Self::generate(rng, first_id.wrapping_add(i)))
            .collect()
    }

    /// The id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// The uploadable public half.
    pub fn public(&self) -> OneTimePreKeyPublic {
        OneTimePreKeyPublic {
            id: self.id,
            key: X25519Public::from(&self.secret).to_bytes(),
        }
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// Storage encoding: `0x01 || id || secret(32)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(1 + 4 + 32);
        w.u8(SECRET_VERSION)
            .u32(self.id)
            .bytes(self.secret.as_bytes());
        w.into_zeroizing()
    }

    /// Restores from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(SECRET_VERSION)?;
        let id = r.u32()?;
        let secret = StaticSecret::from(*Zeroizing::new(r.array::<32>()?));
        r.finish()?;
        Ok(Self { id, secret })
    }
}

/// Secret half of a signed ML-KEM-768 prekey. No `Debug`.
#[derive(Clone)]
pub struct KemPreKeySecret {
    id: PreKeyId,
    kind: KemPreKeyKind,
    secret: KemSecret,
    signature: [u8; 64],
}

impl KemPreKeySecret {
    /// Generates and signs a KEM prekey.
    pub fn generate<R: CryptoRng + RngCore>(
        rng: &mut R,
        identity: &IdentityKeyPair,
        id: PreKeyId,
        kind: KemPreKeyKind,
    ) -> Self {
        let secret = KemSecret::generate(rng);
        let signature = identity.sign(&signed_message(kind.byte(), id, &secret.public_bytes()));
        Self {
            id,
            kind,
            secret,
            signature,
        }
    }

    /// The id.
    pub fn id(&self) -> PreKeyId {
        self.id
    }

    /// Last-resort or one-time.
    pub fn kind(&self) -> KemPreKeyKind {
        self.kind
    }

    /// The uploadable public half.
    pub fn public(&self) -> KemPreKeyPublic {
        KemPreKeyPublic {
            id: self.id,
            kind: self.kind,
            key: self.secret.public_bytes(),
            signature: self.signature,
        }
    }

    pub(crate) fn secret(&self) -> &KemSecret {
        &self.secret
    }

    /// Storage encoding: `0x01 || id || kind || seed(64) || signature(64)`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(1 + 4 + 1 + KEM_SEED_LEN + 64);
        w.u8(SECRET_VERSION)
            .u32(self.id)
            .u8(self.kind.byte())
            .bytes(self.secret.seed())
            .bytes(&self.signature);
        w.into_zeroizing()
    }

    /// Restores from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(SECRET_VERSION)?;
        let id = r.u32()?;
        let kind = KemPreKeyKind::from_byte(r.u8()?)?;
        let secret = KemSecret::from_seed(*Zeroizing::new(r.array::<KEM_SEED_LEN>()?));
        let signature = r.array()?;
        r.finish()?;
        Ok(Self {
            id,
            kind,
            secret,
            signature,
        })
    }
}

pub(crate) const ONE_TIME_LEN: usize = OneTimePreKeyPublic::LEN;
pub(crate) const SIGNED_LEN: usize = SignedPreKeyPublic::LEN;
pub(crate) const KEM_LEN: usize = KemPreKeyPublic::LEN;

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn secrets_round_trip() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let id = IdentityKeyPair::generate(&mut rng);
        let spk = SignedPreKeySecret::generate(&mut rng, &id, 7);
        let back = SignedPreKeySecret::from_bytes(&spk.to_bytes()).unwrap();
        assert_eq!(back.public(), spk.public());
        assert!(back.public().verify(&id.public()));

        let otk = OneTimePreKeySecret::generate(&mut rng, 9);
        assert_eq!(
            OneTimePreKeySecret::from_bytes(&otk.to_bytes())
                .unwrap()
                .public(),
            otk.public()
        );

        let kem = KemPreKeySecret::generate(&mut rng, &id, 3, KemPreKeyKind::OneTime);
        let back = KemPreKeySecret::from_bytes(&kem.to_bytes()).unwrap();
        assert_eq!(back.public(), kem.public());
        assert!(back.public().verify(&id.public()));
        assert_eq!(
            KemPreKeySecret::from_bytes(&kem.to_bytes()[..50]).err(),
            Some(DecodeError::Truncated)
        );
    }

    #[test]
    fn signatures_bind_kind_and_id() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let id = IdentityKeyPair::generate(&mut rng);
        let mut spk = SignedPreKeySecret::generate(&mut rng, &id, 1).public();
        spk.id = 2;
        assert!(!spk.verify(&id.public()));
        let mut kem = KemPreKeySecret::generate(&mut rng, &id, 1, KemPreKeyKind::OneTime).public();
        kem.kind = KemPreKeyKind::LastResort;
        assert!(!kem.verify(&id.public()));
        let other = IdentityKeyPair::generate(&mut rng);
        let kem2 = KemPreKeySecret::generate(&mut rng, &id, 1, KemPreKeyKind::OneTime).public();
        assert!(!kem2.verify(&other.public()));
    }
}
