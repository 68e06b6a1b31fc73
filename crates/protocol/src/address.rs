//! Device addresses. Sotto is multi-device from the start: every envelope, session and prekey
//! bundle names an (account, device) pair, never just an account.

use crate::identity::IdentityPublicKey;
use crate::wire::{DecodeError, Reader, Writer};

/// Account identifier: the raw 32-byte Ed25519 identity public key of the account (the same
/// bytes the relay uses as the account, i.e. [`crate::IdentityPublicKey::encode`] without its
/// leading type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub [u8; 32]);

impl AccountId {
    /// The identity public key this account id names (`0x01 || account id`, validated like
    /// [`IdentityPublicKey::decode`]).
    pub fn identity_key(&self) -> Result<IdentityPublicKey, DecodeError> {
        let mut encoded = [0u8; IdentityPublicKey::ENCODED_LEN];
        encoded[0] = crate::identity::IDENTITY_KEY_VERSION;
        encoded[1..].copy_from_slice(&self.0);
        IdentityPublicKey::decode(&encoded)
    }
}

/// Device number within an account. Device 1 is the first (primary) device by convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u32);

/// One device of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The account.
    pub account: AccountId,
    /// The device within that account.
    pub device: DeviceId,
}

impl Address {
    /// Encoded size: 32-byte account id followed by a big-endian u32 device id.
    pub const ENCODED_LEN: usize = 36;

    /// Builds an address.
    pub fn new(account: [u8; 32], device: u32) -> Self {
        Self {
            account: AccountId(account),
            device: DeviceId(device),
        }
    }

    /// The fixed 36-byte encoding (no version byte: it is always embedded in a versioned
    /// structure).
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..32].copy_from_slice(&self.account.0);
        out[32..].copy_from_slice(&self.device.0.to_be_bytes());
        out
    }

    /// Decodes exactly [`Address::ENCODED_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let a = Self::read(&mut r)?;
        r.finish()?;
        Ok(a)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(&self.encode());
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let account = r.array::<32>()?;
        let device = r.u32()?;
        Ok(Self::new(account, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn round_trip() {
        let a = Address::new([9; 32], 0x0102_0304);
        let bytes = a.encode();
        assert_eq!(&bytes[32..], &[1, 2, 3, 4]);
        assert_eq!(Address::decode(&bytes), Ok(a));
        assert_eq!(Address::decode(&bytes[..35]), Err(DecodeError::Truncated));
    }

    #[test]
    fn account_id_is_the_identity_key() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([3; 32]);
        let id = crate::identity::IdentityKeyPair::generate(&mut rng).public();
        let account = id.account_id();
        assert_eq!(&account.0[..], &id.encode()[1..]);
        assert_eq!(account.identity_key(), Ok(id));
        assert!(AccountId([0; 32]).identity_key().is_err());
    }
}
