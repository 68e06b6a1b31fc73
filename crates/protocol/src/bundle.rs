//! What a device uploads to the relay ([`PreKeyUpload`]) and what a peer fetches to start a
//! session ([`PreKeyBundle`]). A bundle must be turned into a [`VerifiedBundle`] — which checks
//! every signature and key — before a session can be started from it.

use thiserror::Error;
use x25519_dalek::PublicKey as X25519Public;

use crate::address::Address;
use crate::identity::IdentityPublicKey;
use crate::prekeys::{
    KEM_LEN, KemPreKeyKind, KemPreKeyPublic, ONE_TIME_LEN, OneTimePreKeyPublic, SIGNED_LEN,
    SignedPreKeyPublic,
};
use crate::wire::{DecodeError, Reader, Writer};

const BUNDLE_VERSION: u8 = 0x01;
const UPLOAD_VERSION: u8 = 0x01;
/// Maximum number of one-time prekeys of each kind in one upload.
pub const MAX_UPLOAD_PREKEYS: usize = 200;

/// Why a bundle was rejected.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum BundleError {
    /// The signed X25519 prekey's signature does not verify under the identity key.
    #[error("signed prekey signature is invalid")]
    BadSignedPreKeySignature,
    /// The ML-KEM prekey's signature does not verify, or the key itself is malformed.
    #[error("KEM prekey signature or key is invalid")]
    BadKemPreKey,
    /// An X25519 prekey has small order (would yield a non-contributory DH).
    #[error("X25519 prekey is a small-order point")]
    WeakPreKey,
    /// A one-time KEM prekey was listed where a last-resort one is required, or vice versa.
    #[error("KEM prekey has the wrong kind")]
    WrongKemKind,
    /// The bundle's identity key is not the one the caller pinned for this contact, or its
    /// address names another account.
    #[error("bundle identity does not match the expected identity")]
    IdentityMismatch,
}

/// Why a [`PreKeyUpload`] could not be encoded.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum UploadEncodeError {
    /// A one-time prekey list is longer than [`MAX_UPLOAD_PREKEYS`].
    #[error("more than {MAX_UPLOAD_PREKEYS} one-time prekeys in one upload")]
    TooManyPreKeys,
}

/// A fetched bundle for one device, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The device this bundle belongs to.
    pub address: Address,
    /// The account identity key.
    pub identity: IdentityPublicKey,
    /// The current signed X25519 prekey.
    pub signed_prekey: SignedPreKeyPublic,
    /// A one-time X25519 prekey, if the relay still had one.
    pub one_time_prekey: Option<OneTimePreKeyPublic>,
    /// A one-time ML-KEM prekey, or the last-resort one if none are left.
    pub kem_prekey: KemPreKeyPublic,
}

/// A bundle whose signatures and keys have all been checked. Only [`PreKeyBundle::verify`]
/// constructs it, so session start cannot skip verification.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    bundle: PreKeyBundle,
}

impl VerifiedBundle {
    /// The verified contents.
    pub fn bundle(&self) -> &PreKeyBundle {
        &self.bundle
    }
}

/// Small-order X25519 points are exactly those whose product with any clamped scalar is zero;
/// multiplying by a fixed scalar detects them without trusting a list.
fn is_small_order(key: &[u8; 32]) -> bool {
    let probe = x25519_dalek::StaticSecret::from([0x55u8; 32]);
    !probe
        .diffie_hellman(&X25519Public::from(*key))
        .was_contributory()
}

impl PreKeyBundle {
    /// Checks that the bundle carries the identity key the caller `expected` (the one pinned
    /// for this contact, e.g. from a contact invite or the account id), then both signatures,
    /// the ML-KEM key encoding and the X25519 keys. Signatures only prove that the prekeys
    /// belong to *some* identity; without the pin a relay could substitute its own.
    pub fn verify(&self, expected: &IdentityPublicKey) -> Result<VerifiedBundle, BundleError> {
        // The address is not signed; it must name the identity's own account.
        if self.identity != *expected || self.address.account != expected.account_id() {
            return Err(BundleError::IdentityMismatch);
        }
        if !self.signed_prekey.verify(&self.identity) {
            return Err(BundleError::BadSignedPreKeySignature);
        }
        if !self.kem_prekey.verify(&self.identity) {
            return Err(BundleError::BadKemPreKey);
        }
        if is_small_order(&self.signed_prekey.key)
            || self
                .one_time_prekey
                .as_ref()
                .is_some_and(|k| is_small_order(&k.key))
        {
            return Err(BundleError::WeakPreKey);
        }
        Ok(VerifiedBundle {
            bundle: self.clone(),
        })
    }

    /// Wire encoding (see docs/PROTOCOL.md, "PreKeyBundle").
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            1 + Address::ENCODED_LEN + 33 + SIGNED_LEN + 1 + ONE_TIME_LEN + KEM_LEN,
        );
        w.u8(BUNDLE_VERSION);
        self.address.write(&mut w);
        self.identity.write(&mut w);
        self.signed_prekey.write(&mut w);
        match &self.one_time_prekey {
            Some(k) => {
                w.u8(1);
                k.write(&mut w);
            }
            None => {
                w.u8(0);
            }
        }
        self.kem_prekey.write(&mut w);
        w.into_vec()
    }

    /// Decodes (but does not verify) a bundle.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(BUNDLE_VERSION)?;
        let address = Address::read(&mut r)?;
        let identity = IdentityPublicKey::read(&mut r)?;
        let signed_prekey = SignedPreKeyPublic::read(&mut r)?;
        let one_time_prekey = if r.flag()? {
            Some(OneTimePreKeyPublic::read(&mut r)?)
        } else {
            None
        };
        let kem_prekey = KemPreKeyPublic::read(&mut r)?;
        r.finish()?;
        Ok(Self {
            address,
            identity,
            signed_prekey,
            one_time_prekey,
            kem_prekey,
        })
    }
}

/// Everything a device publishes to the relay. The relay should call [`PreKeyUpload::verify`]
/// and then hand out one one-time key of each kind per bundle, falling back to the last-resort
/// KEM prekey (and to no one-time X25519 prekey) when they run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyUpload {
    /// The uploading device.
    pub address: Address,
    /// The account identity key.
    pub identity: IdentityPublicKey,
    /// The current signed X25519 prekey.
    pub signed_prekey: SignedPreKeyPublic,
    /// The last-resort ML-KEM prekey.
    pub last_resort_kem_prekey: KemPreKeyPublic,
    /// One-time X25519 prekeys (at most [`MAX_UPLOAD_PREKEYS`]).
    pub one_time_prekeys: Vec<OneTimePreKeyPublic>,
    /// One-time ML-KEM prekeys (at most [`MAX_UPLOAD_PREKEYS`]).
    pub one_time_kem_prekeys: Vec<KemPreKeyPublic>,
}

impl PreKeyUpload {
    /// Verifies every signature and key in the upload.
    pub fn verify(&self) -> Result<(), BundleError> {
        if !self.signed_prekey.verify(&self.identity) {
            return Err(BundleError::BadSignedPreKeySignature);
        }
        if self.last_resort_kem_prekey.kind != KemPreKeyKind::LastResort
            || self
                .one_time_kem_prekeys
                .iter()
                .any(|k| k.kind != KemPreKeyKind::OneTime)
        {
            return Err(BundleError::WrongKemKind);
        }
        let kems = std::iter::once(&self.last_resort_kem_prekey).chain(&self.one_time_kem_prekeys);
        for k in kems {
            if !k.verify(&self.identity) {
                return Err(BundleError::BadKemPreKey);
            }
        }
        if is_small_order(&self.signed_prekey.key)
            || self.one_time_prekeys.iter().any(|k| is_small_order(&k.key))
        {
            return Err(BundleError::WeakPreKey);
        }
        Ok(())
    }

    /// Builds the bundle the relay would hand out, given the chosen one-time keys.
    pub fn bundle(
        &self,
        one_time_prekey: Option<OneTimePreKeyPublic>,
        one_time_kem_prekey: Option<KemPreKeyPublic>,
    ) -> PreKeyBundle {
        PreKeyBundle {
            address: self.address,
            identity: self.identity,
            signed_prekey: self.signed_prekey.clone(),
            one_time_prekey,
            kem_prekey: one_time_kem_prekey.unwrap_or_else(|| self.last_resort_kem_prekey.clone()),
        }
    }

    /// Wire encoding (see docs/PROTOCOL.md, "PreKeyUpload"). Fails, rather than truncating,
    /// if either one-time list is longer than [`MAX_UPLOAD_PREKEYS`] (split it into several
    /// uploads).
    pub fn encode(&self) -> Result<Vec<u8>, UploadEncodeError> {
        let otks = &self.one_time_prekeys;
        let kems = &self.one_time_kem_prekeys;
        if otks.len() > MAX_UPLOAD_PREKEYS || kems.len() > MAX_UPLOAD_PREKEYS {
            return Err(UploadEncodeError::TooManyPreKeys);
        }
        let otk_count = u16::try_from(otks.len()).map_err(|_| UploadEncodeError::TooManyPreKeys)?;
        let kem_count = u16::try_from(kems.len()).map_err(|_| UploadEncodeError::TooManyPreKeys)?;
        let mut w = Writer::with_capacity(
            1 + Address::ENCODED_LEN
                + 33
                + SIGNED_LEN
                + KEM_LEN
                + 4
                + otks.len() * ONE_TIME_LEN
                + kems.len() * KEM_LEN,
        );
        w.u8(UPLOAD_VERSION);
        self.address.write(&mut w);
        self.identity.write(&mut w);
        self.signed_prekey.write(&mut w);
        self.last_resort_kem_prekey.write(&mut w);
        w.u16(otk_count);
        otks.iter().for_each(|k| k.write(&mut w));
        w.u16(kem_count);
        kems.iter().for_each(|k| k.write(&mut w));
        Ok(w.into_vec())
    }

    /// Decodes (but does not verify) an upload.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(UPLOAD_VERSION)?;
        let address = Address::read(&mut r)?;
        let identity = IdentityPublicKey::read(&mut r)?;
        let signed_prekey = SignedPreKeyPublic::read(&mut r)?;
        let last_resort_kem_prekey = KemPreKeyPublic::read(&mut r)?;
        let n = usize::from(r.u16()?);
        if n > MAX_UPLOAD_PREKEYS {
            return Err(DecodeError::TooLong);
        }
        let one_time_prekeys = (0..n)
            .map(|_| OneTimePreKeyPublic::read(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let n = usize::from(r.u16()?);
        if n > MAX_UPLOAD_PREKEYS {
            return Err(DecodeError::TooLong);
        }
        let one_time_kem_prekeys = (0..n)
            .map(|_| KemPreKeyPublic::read(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self {
            address,
            identity,
            signed_prekey,
            last_resort_kem_prekey,
            one_time_prekeys,
            one_time_kem_prekeys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKeyPair;
    use crate::prekeys::{KemPreKeySecret, OneTimePreKeySecret, SignedPreKeySecret};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn upload(rng: &mut ChaCha20Rng) -> PreKeyUpload {
        let id = IdentityKeyPair::generate(rng);
        PreKeyUpload {
            address: Address::new(id.public().account_id().0, 1),
            identity: id.public(),
            signed_prekey: SignedPreKeySecret::generate(rng, &id, 1).public(),
            last_resort_kem_prekey: KemPreKeySecret::generate(
                rng,
                &id,
                1,
                KemPreKeyKind::LastResort,
            )
            .public(),
            one_time_prekeys: OneTimePreKeySecret::generate_batch(rng, 10, 3)
                .iter()
                .map(OneTimePreKeySecret::public)
                .collect(),
            one_time_kem_prekeys: vec![
                KemPreKeySecret::generate(rng, &id, 2, KemPreKeyKind::OneTime).public(),
            ],
        }
    }

    #[test]
    fn upload_and_bundle_round_trip_and_verify() {
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let up = upload(&mut rng);
        assert_eq!(up.verify(), Ok(()));
        assert_eq!(PreKeyUpload::decode(&up.encode().unwrap()), Ok(up.clone()));
        let bundle = up.bundle(up.one_time_prekeys.first().cloned(), None);
        assert_eq!(bundle.kem_prekey.kind, KemPreKeyKind::LastResort);
        let enc = bundle.encode();
        assert_eq!(PreKeyBundle::decode(&enc), Ok(bundle.clone()));
        assert!(bundle.verify(&up.identity).is_ok());
        let mut trailing = enc.clone();
        trailing.push(0);
        assert_eq!(
            PreKeyBundle::decode(&trailing),
            Err(DecodeError::TrailingBytes)
        );
    }

    #[test]
    fn tampered_bundles_are_rejected() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let up = upload(&mut rng);
        let good = up.bundle(None, up.one_time_kem_prekeys.first().cloned());

        let mut b = good.clone();
        b.signed_prekey.key[0] ^= 1;
        assert_eq!(
            b.verify(&up.identity).err(),
            Some(BundleError::BadSignedPreKeySignature)
        );

        let mut b = good.clone();
        b.kem_prekey.key[100] ^= 1;
        assert_eq!(
            b.verify(&up.identity).err(),
            Some(BundleError::BadKemPreKey)
        );

        let mut b = good.clone();
        b.kem_prekey.signature[0] ^= 1;
        assert_eq!(
            b.verify(&up.identity).err(),
            Some(BundleError::BadKemPreKey)
        );

        let mut b = good.clone();
        b.one_time_prekey = Some(OneTimePreKeyPublic {
            id: 1,
            key: [0; 32],
        });
        assert_eq!(b.verify(&up.identity).err(), Some(BundleError::WeakPreKey));

        let mut up2 = up.clone();
        up2.last_resort_kem_prekey = up.one_time_kem_prekeys[0].clone();
        assert_eq!(up2.verify(), Err(BundleError::WrongKemKind));
    }

    #[test]
    fn oversize_upload_is_an_error_not_truncated() {
        let mut rng = ChaCha20Rng::from_seed([12; 32]);
        let mut up = upload(&mut rng);
        up.one_time_prekeys = OneTimePreKeySecret::generate_batch(
            &mut rng,
            1,
            u32::try_from(MAX_UPLOAD_PREKEYS).unwrap(),
        )
        .iter()
        .map(OneTimePreKeySecret::public)
        .collect();
        let enc = up.encode().unwrap();
        assert_eq!(PreKeyUpload::decode(&enc), Ok(up.clone()));
        let extra = up.one_time_prekeys[0].clone();
        up.one_time_prekeys.push(extra);
        assert_eq!(up.encode(), Err(UploadEncodeError::TooManyPreKeys));
        let mut up = upload(&mut rng);
        let kem = up.one_time_kem_prekeys[0].clone();
        up.one_time_kem_prekeys = vec![kem; MAX_UPLOAD_PREKEYS + 1];
        assert_eq!(up.encode(), Err(UploadEncodeError::TooManyPreKeys));
    }

    #[test]
    fn bundle_for_another_identity_is_rejected() {
        let mut rng = ChaCha20Rng::from_seed([10; 32]);
        let up = upload(&mut rng);
        let bundle = up.bundle(None, None);
        assert!(bundle.verify(&up.identity).is_ok());
        // A correctly self-signed bundle under a different identity (e.g. substituted by a
        // malicious relay) must not verify against the pinned identity.
        let other = upload(&mut ChaCha20Rng::from_seed([11; 32]));
        let substituted = other.bundle(None, None);
        assert!(substituted.verify(&other.identity).is_ok());
        assert_eq!(
            substituted.verify(&up.identity).err(),
            Some(BundleError::IdentityMismatch)
        );
        // The address is unsigned: one naming another account does not verify either.
        let mut readdressed = bundle.clone();
        readdressed.address = other.address;
        assert_eq!(
            readdressed.verify(&up.identity).err(),
            Some(BundleError::IdentityMismatch)
        );
    }
}
