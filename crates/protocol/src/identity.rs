//! Long-term Ed25519 identity keys and their X25519 form for Diffie-Hellman.
//!
//! The X25519 form is derived with the standard birational map (RFC 7748 §4.1): the public key
//! via `to_montgomery`, the secret via the clamped scalar `to_scalar_bytes`, so one key pair
//! both signs prekeys and takes part in PQXDH and sealed sender.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::address::AccountId;
use crate::wire::{DecodeError, Reader, Writer};

/// Version byte of the identity public key encoding (Ed25519, v1).
pub const IDENTITY_KEY_VERSION: u8 = 0x01;
/// Version byte of the identity key pair storage encoding.
pub const IDENTITY_KEY_PAIR_VERSION: u8 = 0x01;

/// A signature did not verify (or was not a canonical Ed25519 signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadSignature;

/// Whether `raw` is the canonical encoding of `key` (y < p, and no sign bit on x = 0).
fn is_canonical(raw: &[u8; 32], key: &VerifyingKey) -> bool {
    key.to_edwards().compress().to_bytes() == *raw
}

/// An account's public identity key. Its [`encode`](Self::encode)d form is `Encode(IK)` in
/// PQXDH's associated data and the key fed to safety numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityPublicKey(VerifyingKey);

impl IdentityPublicKey {
    /// Encoded size: version byte + 32-byte compressed Edwards point.
    pub const ENCODED_LEN: usize = 33;

    /// `0x01 || Ed25519 public key`.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0] = IDENTITY_KEY_VERSION;
        out[1..].copy_from_slice(self.0.as_bytes());
        out
    }

    /// The account id of this identity: the raw 32-byte Ed25519 public key (the relay's account).
    pub fn account_id(&self) -> AccountId {
        AccountId(*self.0.as_bytes())
    }

    /// Decodes and validates: the point must decompress, its encoding must be canonical (the
    /// point re-compresses to exactly the same 32 bytes), and it must lie in the prime-order
    /// subgroup (no small-order or torsion component, which would make DHs with it leak or be
    /// non-contributory). So every identity has exactly one encoding, account id and
    /// fingerprint.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let key = Self::read(&mut r)?;
        r.finish()?;
        Ok(key)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version(IDENTITY_KEY_VERSION)?;
        let raw = r.array::<32>()?;
        let key =
            VerifyingKey::from_bytes(&raw).map_err(|_| DecodeError::Invalid("identity key"))?;
        if key.is_weak() || !is_canonical(&raw, &key) || !key.to_edwards().is_torsion_free() {
            return Err(DecodeError::Invalid("identity key"));
        }
        Ok(Self(key))
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.encode());
    }

    /// Strict verification: rejects non-canonical and small-order signature components.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), BadSignature> {
        let sig = Signature::from_bytes(signature);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| BadSignature)
    }

    /// The X25519 (Montgomery) form of this key.
    pub(crate) fn to_x25519(self) -> X25519Public {
        X25519Public::from(self.0.to_montgomery().to_bytes())
    }
}

/// An account's identity key pair. Zeroized on drop; deliberately no `Debug`.
#[derive(Clone)]
pub struct IdentityKeyPair {
    signing: SigningKey,
}

impl IdentityKeyPair {
    /// Storage encoding size: version byte + 32-byte Ed25519 seed.
    pub const ENCODED_LEN: usize = 33;

    /// Generates a new identity from the given RNG.
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> Self {
        Self {
            signing: SigningKey::generate(rng),
        }
    }

    /// The public half.
    pub fn public(&self) -> IdentityPublicKey {
        IdentityPublicKey(self.signing.verifying_key())
    }

    /// Storage encoding `0x01 || seed`, in a zeroizing buffer.
    pub fn to_bytes(&self) -> Zeroizing<[u8; Self::ENCODED_LEN]> {
        let mut out = Zeroizing::new([0u8; Self::ENCODED_LEN]);
        out[0] = IDENTITY_KEY_PAIR_VERSION;
        out[1..].copy_from_slice(self.signing.as_bytes());
        out
    }

    /// Restores a key pair from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(IDENTITY_KEY_PAIR_VERSION)?;
        let seed = Zeroizing::new(r.array::<32>()?);
        r.finish()?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The X25519 form of the secret: the unclamped Ed25519 scalar bytes (first half of
    /// SHA-512(seed)). X25519 applies the same clamping Ed25519 does, so its X25519 public key
    /// equals `public().to_x25519()`.
    pub(crate) fn x25519_secret(&self) -> StaticSecret {
        let scalar = Zeroizing::new(self.signing.to_scalar_bytes());
        StaticSecret::from(*scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn x25519_forms_agree() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        for _ in 0..8 {
            let id = IdentityKeyPair::generate(&mut rng);
            let derived = X25519Public::from(&id.x25519_secret());
            assert_eq!(derived, id.public().to_x25519());
        }
    }

    #[test]
    fn encodings_round_trip_and_reject_garbage() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let id = IdentityKeyPair::generate(&mut rng);
        let enc = id.public().encode();
        assert_eq!(IdentityPublicKey::decode(&enc), Ok(id.public()));
        let restored = IdentityKeyPair::from_bytes(id.to_bytes().as_slice()).unwrap();
        assert_eq!(restored.public(), id.public());

        let mut wrong_version = enc;
        wrong_version[0] = 2;
        assert_eq!(
            IdentityPublicKey::decode(&wrong_version),
            Err(DecodeError::UnknownVersion(2))
        );
        // The identity point (small order) is rejected.
        let mut identity_point = [0u8; 33];
        identity_point[0] = 1;
        identity_point[1] = 1;
        assert_eq!(
            IdentityPublicKey::decode(&identity_point),
            Err(DecodeError::Invalid("identity key"))
        );
        assert_eq!(
            IdentityPublicKey::decode(&enc[..32]),
            Err(DecodeError::Truncated)
        );
    }

    fn with_version(raw: &str) -> Vec<u8> {
        let mut out = vec![IDENTITY_KEY_VERSION];
        out.extend(hex::decode(raw).unwrap());
        out
    }

    #[test]
    fn non_canonical_encodings_are_rejected() {
        // y = p + 3 (y >= p is never canonical); it decompresses, to the point with y = 3.
        let raw = "f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
        let bytes: [u8; 32] = hex::decode(raw).unwrap().try_into().unwrap();
        let key = VerifyingKey::from_bytes(&bytes).unwrap();
        assert!(!key.is_weak());
        assert!(!is_canonical(&bytes, &key));
        assert_eq!(
            IdentityPublicKey::decode(&with_version(raw)),
            Err(DecodeError::Invalid("identity key"))
        );
        // y = p + 1: a non-canonical encoding of the identity point.
        assert_eq!(
            IdentityPublicKey::decode(&with_version(
                "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
            )),
            Err(DecodeError::Invalid("identity key"))
        );
        // Canonical keys are unaffected.
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        for _ in 0..8 {
            let public = IdentityKeyPair::generate(&mut rng).public();
            assert_eq!(IdentityPublicKey::decode(&public.encode()), Ok(public));
        }
    }

    #[test]
    fn small_order_and_torsion_points_are_rejected() {
        // A point of order 8.
        let order8 = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";
        assert_eq!(
            IdentityPublicKey::decode(&with_version(order8)),
            Err(DecodeError::Invalid("identity key"))
        );
        // A generated identity key plus that order-8 point: canonical, not small order, but
        // with a torsion component.
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let public = IdentityKeyPair::generate(&mut rng).public();
        let torsion = VerifyingKey::from_bytes(&hex::decode(order8).unwrap().try_into().unwrap())
            .unwrap()
            .to_edwards();
        let mixed = (public.0.to_edwards() + torsion).compress().to_bytes();
        let key = VerifyingKey::from_bytes(&mixed).unwrap();
        assert!(!key.is_weak());
        assert!(is_canonical(&mixed, &key));
        let mut encoded = vec![IDENTITY_KEY_VERSION];
        encoded.extend_from_slice(&mixed);
        assert_eq!(
            IdentityPublicKey::decode(&encoded),
            Err(DecodeError::Invalid("identity key"))
        );
    }

    #[test]
    fn signatures_verify_strictly() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let id = IdentityKeyPair::generate(&mut rng);
        let mut sig = id.sign(b"msg");
        assert_eq!(id.public().verify(b"msg", &sig), Ok(()));
        assert_eq!(id.public().verify(b"msh", &sig), Err(BadSignature));
        sig[5] ^= 1;
        assert_eq!(id.public().verify(b"msg", &sig), Err(BadSignature));
    }
}
