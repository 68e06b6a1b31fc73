//! Device addresses. Sotto is multi-device from the start: every envelope, session and prekey
//! bundle names an (account, device) pair, never just an account.

use crate::wire::{DecodeError, Reader, Writer};

/// Opaque 16-byte account identifier assigned by the relay (a UUID in practice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub [u8; 16]);

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
    /// Encoded size: 16-byte account id followed by a big-endian u32 device id.
    pub const ENCODED_LEN: usize = 20;

    /// Builds an address.
    pub fn new(account: [u8; 16], device: u32) -> Self {
        Self {
            account: AccountId(account),
            device: DeviceId(device),
        }
    }

    /// The fixed 20-byte encoding (no version byte: it is always embedded in a versioned
    /// structure).
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..16].copy_from_slice(&self.account.0);
        out[16..].copy_from_slice(&self.device.0.to_be_bytes());
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
        let account = r.array::<16>()?;
        let device = r.u32()?;
        Ok(Self::new(account, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Address::new([9; 16], 0x0102_0304);
        let bytes = a.encode();
        assert_eq!(&bytes[16..], &[1, 2, 3, 4]);
        assert_eq!(Address::decode(&bytes), Ok(a));
        assert_eq!(Address::decode(&bytes[..19]), Err(DecodeError::Truncated));
    }
}
