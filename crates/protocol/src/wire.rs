//! Hand-written, length-prefixed binary encoding shared by every structure in this crate.
//!
//! All integers are big-endian. Every decoder goes through [`Reader`], which checks each length
//! against the bytes actually present (and against a per-field maximum) before allocating, and
//! [`Reader::finish`] rejects trailing bytes, so one byte string has exactly one meaning.

use thiserror::Error;
use zeroize::Zeroizing;

/// Why a byte string could not be decoded. Never contains any of the input bytes.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the structure was complete.
    #[error("input is truncated")]
    Truncated,
    /// Bytes remained after the structure was complete.
    #[error("input has trailing bytes")]
    TrailingBytes,
    /// The leading version (or type) byte is not one this build understands.
    #[error("unknown version or type byte {0:#04x}")]
    UnknownVersion(u8),
    /// A length or count field exceeds the documented maximum for that field.
    #[error("length field exceeds its maximum")]
    TooLong,
    /// A field is well-formed in length but its value is not acceptable.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Why a structure could not be encoded. Encoders never truncate: a field that does not fit
/// its documented maximum (which is also what the decoder accepts) or its length prefix is an
/// error. Names the field, never contains its bytes.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// A variable-length field is longer than its documented maximum or its length prefix.
    #[error("{0} is too long to encode")]
    TooLong(&'static str),
    /// A fixed-size field does not have its fixed size.
    #[error("{0} has the wrong length")]
    WrongLength(&'static str),
}

/// Checks a field length against the field maximum and the prefix type; returns the prefix.
fn prefix<T: TryFrom<usize>>(
    field: &'static str,
    len: usize,
    max: usize,
) -> Result<T, EncodeError> {
    if len > max {
        return Err(EncodeError::TooLong(field));
    }
    T::try_from(len).map_err(|_| EncodeError::TooLong(field))
}

/// A string that fits a `var8` field, checked once when built, so writing it cannot fail or
/// truncate. Invariant: `len == text.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShortStr {
    text: String,
    len: u8,
}

impl ShortStr {
    /// `None` if `text` is longer than `max` or 255 bytes.
    pub(crate) fn new(text: &str, max: usize) -> Option<Self> {
        let len = prefix::<u8>("string", text.len(), max).ok()?;
        Some(Self {
            text: text.to_owned(),
            len,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// Bytes that fit a `var16` field, checked once when built, so writing them cannot fail or
/// truncate. Invariant: `len == bytes.len()`.
#[derive(Clone)]
pub(crate) struct Bounded16 {
    bytes: Vec<u8>,
    len: u16,
}

impl Bounded16 {
    /// `None` if `bytes` is longer than `max` or 65 535 bytes.
    pub(crate) fn new(bytes: &[u8], max: usize) -> Option<Self> {
        let len = prefix::<u16>("bytes", bytes.len(), max).ok()?;
        Some(Self {
            bytes: bytes.to_vec(),
            len,
        })
    }

    /// From a fixed-size array; the length is checked at compile time.
    pub(crate) fn from_array<const N: usize>(bytes: [u8; N]) -> Self {
        const { assert!(N <= u16::MAX as usize) };
        Self {
            bytes: bytes.to_vec(),
            len: N as u16,
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// Append-only encoder. Secret-bearing encodings use [`Writer::into_zeroizing`].
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Pre-sizing avoids reallocations that would leave unzeroized copies of secrets behind.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Fixed-size field: no length prefix.
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Fixed-size field whose length the type does not guarantee (a public `Vec` field):
    /// anything but exactly `len` bytes is refused instead of producing an undecodable
    /// encoding.
    pub(crate) fn fixed(
        &mut self,
        field: &'static str,
        v: &[u8],
        len: usize,
    ) -> Result<&mut Self, EncodeError> {
        if v.len() != len {
            return Err(EncodeError::WrongLength(field));
        }
        Ok(self.bytes(v))
    }

    /// Variable-size field with a four-byte length prefix. Fails (writing nothing) if `v` is
    /// longer than `max` (the decoder's maximum for the field) or than the prefix can express.
    pub(crate) fn var32(
        &mut self,
        field: &'static str,
        v: &[u8],
        max: usize,
    ) -> Result<&mut Self, EncodeError> {
        let len = prefix::<u32>(field, v.len(), max)?;
        Ok(self.u32(len).bytes(v))
    }

    /// `var8` of a string whose length was checked when it was built: cannot fail.
    pub(crate) fn short_str(&mut self, v: &ShortStr) -> &mut Self {
        self.u8(v.len).bytes(v.text.as_bytes())
    }

    /// `var16` of bytes whose length was checked when they were built: cannot fail.
    pub(crate) fn bounded16(&mut self, v: &Bounded16) -> &mut Self {
        self.u16(v.len).bytes(&v.bytes)
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.buf)
    }
}

/// Bounds-checked decoder over a borrowed byte string.
/// Whether `u` is the canonical encoding of an X25519 u-coordinate: below 2^255 - 19 (only
/// 2^255 - 19 ..= 2^255 - 1 and encodings with the top bit set are not).
pub(crate) fn is_canonical_x25519(u: &[u8; 32]) -> bool {
    u[31] & 0x80 == 0 && !(u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed)
}

pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// An X25519 public key, in its canonical encoding only (RFC 7748: a u-coordinate below
    /// p = 2^255 - 19, so the top bit is clear). X25519 ignores the top bit and reduces mod p,
    /// so one key has several encodings with the same shared secrets; accepting only one
    /// keeps anything derived from the bytes (replay tags, remembered keys) tied to the key.
    pub(crate) fn x25519_public(&mut self, what: &'static str) -> Result<[u8; 32], DecodeError> {
        let u: [u8; 32] = self.array()?;
        if is_canonical_x25519(&u) {
            Ok(u)
        } else {
            Err(DecodeError::Invalid(what))
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads the version byte and rejects anything but `expected`.
    pub(crate) fn version(&mut self, expected: u8) -> Result<(), DecodeError> {
        match self.u8()? {
            v if v == expected => Ok(()),
            other => Err(DecodeError::UnknownVersion(other)),
        }
    }

    /// Reads a presence flag that must be exactly 0 or 1.
    pub(crate) fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("presence flag")),
        }
    }

    fn bounded(&mut self, len: usize, max: usize) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong);
        }
        self.take(len)
    }

    pub(crate) fn var8(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8()?);
        self.bounded(len, max)
    }

    pub(crate) fn var16(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        self.bounded(len, max)
    }

    pub(crate) fn var32(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32()?).map_err(|_| DecodeError::TooLong)?;
        self.bounded(len, max)
    }

    /// Succeeds only if every byte has been consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_x25519_encodings_are_read() {
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let mut p = p_minus_1;
        p[0] = 0xed;
        let mut top_bit = [9u8; 32];
        top_bit[31] |= 0x80;
        for good in [[0u8; 32], [9; 32], p_minus_1] {
            assert_eq!(Reader::new(&good).x25519_public("k"), Ok(good));
        }
        for bad in [p, [0xff; 32], top_bit] {
            assert_eq!(
                Reader::new(&bad).x25519_public("k"),
                Err(DecodeError::Invalid("k"))
            );
        }
    }

    #[test]
    fn round_trip_and_strictness() {
        let mut w = Writer::with_capacity(16);
        w.u8(1)
            .u16(0x0203)
            .u32(0x0405_0607)
            .short_str(&ShortStr::new("ab", 2).unwrap())
            .bounded16(&Bounded16::new(b"c", 1).unwrap());
        w.var32("x", b"", 0).unwrap();
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        r.version(1).unwrap();
        assert_eq!(r.u16().unwrap(), 0x0203);
        assert_eq!(r.u32().unwrap(), 0x0405_0607);
        assert_eq!(r.var8(2).unwrap(), b"ab");
        assert_eq!(r.var16(1).unwrap(), b"c");
        assert_eq!(r.var32(0).unwrap(), b"");
        r.finish().unwrap();

        let mut r = Reader::new(&bytes);
        assert_eq!(r.version(2), Err(DecodeError::UnknownVersion(1)));
        let mut r = Reader::new(&[0, 5, 1]);
        assert_eq!(r.var16(4), Err(DecodeError::TooLong));
        let mut r = Reader::new(&[0, 3, 1]);
        assert_eq!(r.var16(4), Err(DecodeError::Truncated));
        let r = Reader::new(&[0]);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes));
        let mut r = Reader::new(&[2]);
        assert_eq!(r.flag(), Err(DecodeError::Invalid("presence flag")));
    }

    #[test]
    fn prefix_boundaries() {
        assert_eq!(prefix::<u8>("f", 255, usize::MAX), Ok(255u8));
        assert_eq!(
            prefix::<u8>("f", 256, usize::MAX),
            Err(EncodeError::TooLong("f"))
        );
        assert_eq!(prefix::<u16>("f", 65_535, usize::MAX), Ok(65_535u16));
        assert_eq!(
            prefix::<u16>("f", 65_536, usize::MAX),
            Err(EncodeError::TooLong("f"))
        );
        assert_eq!(prefix::<u32>("f", 0xFFFF_FFFF, usize::MAX), Ok(u32::MAX));
        if let Ok(over) = usize::try_from(1u64 << 32) {
            assert_eq!(
                prefix::<u32>("f", over, usize::MAX),
                Err(EncodeError::TooLong("f"))
            );
        }
        // The field maximum binds before the prefix does.
        assert_eq!(prefix::<u32>("f", 10, 10), Ok(10u32));
        assert_eq!(prefix::<u32>("f", 11, 10), Err(EncodeError::TooLong("f")));
    }

    #[test]
    fn short_str_at_255_and_256() {
        let ok = "a".repeat(255);
        let s = ShortStr::new(&ok, 255).unwrap();
        let mut w = Writer::with_capacity(256);
        w.short_str(&s);
        let bytes = w.into_vec();
        assert_eq!(bytes.len(), 256);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.var8(255).unwrap(), ok.as_bytes());
        r.finish().unwrap();
        assert_eq!(ShortStr::new(&"a".repeat(256), usize::MAX), None);
        assert_eq!(ShortStr::new("abc", 2), None);
    }

    #[test]
    fn bounded16_at_65535_and_65536() {
        let ok = vec![7u8; 65_535];
        let b = Bounded16::new(&ok, usize::MAX).unwrap();
        let mut w = Writer::with_capacity(65_537);
        w.bounded16(&b);
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.var16(65_535).unwrap(), &ok[..]);
        r.finish().unwrap();
        assert!(Bounded16::new(&vec![7u8; 65_536], usize::MAX).is_none());
        assert!(Bounded16::new(&[1, 2, 3], 2).is_none());
    }

    #[test]
    fn var32_and_fixed_refuse_instead_of_truncating() {
        let mut w = Writer::with_capacity(8);
        assert_eq!(
            w.var32("payload", &[1, 2, 3], 2).err(),
            Some(EncodeError::TooLong("payload"))
        );
        assert_eq!(
            w.fixed("key", &[1, 2, 3], 4).err(),
            Some(EncodeError::WrongLength("key"))
        );
        // Nothing was written by the failed calls.
        assert!(w.into_vec().is_empty());
    }
}
