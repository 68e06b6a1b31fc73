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

    /// Variable-size field with a one-byte length prefix. Callers guarantee `v.len() <= 255`.
    pub(crate) fn var8(&mut self, v: &[u8]) -> &mut Self {
        let len = u8::try_from(v.len()).unwrap_or(u8::MAX);
        self.u8(len).bytes(&v[..usize::from(len)])
    }

    /// Variable-size field with a two-byte length prefix. Callers guarantee `v.len() <= 65535`.
    pub(crate) fn var16(&mut self, v: &[u8]) -> &mut Self {
        let len = u16::try_from(v.len()).unwrap_or(u16::MAX);
        self.u16(len).bytes(&v[..usize::from(len)])
    }

    /// Variable-size field with a four-byte length prefix.
    pub(crate) fn var32(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len).bytes(&v[..len as usize])
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.buf)
    }
}

/// Bounds-checked decoder over a borrowed byte string.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
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
    fn round_trip_and_strictness() {
        let mut w = Writer::with_capacity(16);
        w.u8(1)
            .u16(0x0203)
            .u32(0x0405_0607)
            .var8(b"ab")
            .var16(b"c")
            .var32(b"");
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
}
