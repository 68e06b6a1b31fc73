//! Secret material: the database key and passphrases. Neither implements `Debug`, `Display`
//! or any serialisation, and both are wiped from memory when dropped.

use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Length of the SQLCipher database key in bytes.
pub const DB_KEY_LEN: usize = 32;

/// The 32-byte random key of a profile's SQLCipher database. It never changes for the life of
/// a profile; switching key modes only re-wraps it.
pub struct DbKey(Zeroizing<[u8; DB_KEY_LEN]>);

impl DbKey {
    /// Draws a fresh key from the operating system's random number generator.
    pub(crate) fn generate() -> Result<Self, rand_core::Error> {
        let mut key = Zeroizing::new([0u8; DB_KEY_LEN]);
        OsRng.try_fill_bytes(key.as_mut())?;
        Ok(Self(key))
    }

    /// Takes ownership of key bytes (wiping the source slice is the caller's job).
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; DB_KEY_LEN] = bytes.try_into().ok()?;
        let key = Self(Zeroizing::new(arr));
        let mut arr = arr;
        arr.zeroize();
        Some(key)
    }

    pub(crate) fn bytes(&self) -> &[u8; DB_KEY_LEN] {
        &self.0
    }

    /// `PRAGMA key = "x'<64 hex>'";` in a buffer that is wiped on drop. The capacity is
    /// reserved up front so the string never reallocates (which would leave a copy behind).
    pub(crate) fn key_pragma(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = Zeroizing::new(String::with_capacity(96));
        s.push_str("PRAGMA key = \"x'");
        for b in self.0.iter() {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        s.push_str("'\";");
        s
    }
}

/// A passphrase protecting a profile's database key (or a backup). Wiped from memory on drop.
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// Takes a passphrase typed by the user; the `String` is consumed and wiped on drop.
    pub fn new(passphrase: Zeroizing<String>) -> Self {
        Self(Zeroizing::new(passphrase.as_bytes().to_vec()))
    }

    /// Takes raw passphrase bytes.
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Passphrase {
    fn from(s: &str) -> Self {
        Self(Zeroizing::new(s.as_bytes().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pragma_is_hex_literal() {
        let key = DbKey::from_slice(&[0xab; 32]).unwrap();
        let p = key.key_pragma();
        assert_eq!(
            p.as_str(),
            format!("PRAGMA key = \"x'{}'\";", "ab".repeat(32))
        );
        // Still the first allocation: no growth ever left a copy of the key in freed memory.
        assert_eq!(p.capacity(), 96);
    }

    #[test]
    fn generated_keys_differ() {
        let a = DbKey::generate().unwrap();
        let b = DbKey::generate().unwrap();
        assert_ne!(a.bytes(), b.bytes());
    }
}
