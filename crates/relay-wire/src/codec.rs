//! Bounded big-endian primitives used by the frame codec.

use crate::{DecodeError, EncodeError};

/// Appends big-endian primitives and length-prefixed fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A `u8` length then the bytes, refused (never truncated) above `max` or 255.
    pub(crate) fn bytes8(
        &mut self,
        v: &[u8],
        max: usize,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let len = fits(v, max.min(usize::from(u8::MAX)), field)?;
        self.u8(len as u8);
        self.raw(v);
        Ok(())
    }
    /// A `u16` length then the bytes, refused (never truncated) above `max` or 65 535.
    pub(crate) fn bytes16(
        &mut self,
        v: &[u8],
        max: usize,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let len = fits(v, max.min(usize::from(u16::MAX)), field)?;
        self.u16(len as u16);
        self.raw(v);
        Ok(())
    }
    /// A `u32` length then the bytes, refused (never truncated) above `max`.
    pub(crate) fn bytes32(
        &mut self,
        v: &[u8],
        max: usize,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let len = fits(v, max.min(u32::MAX as usize), field)?;
        self.u32(len as u32);
        self.raw(v);
        Ok(())
    }
}

/// `v.len()` if it is at most `max` (which the callers keep within the length prefix's range).
fn fits(v: &[u8], max: usize, field: &'static str) -> Result<usize, EncodeError> {
    if v.len() > max {
        return Err(EncodeError {
            field,
            len: v.len(),
            max,
        });
    }
    Ok(v.len())
}

/// Reads big-endian primitives, checking every length against both its bound and what is left
/// before allocating anything.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, field)?[0])
    }
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array::<2>(field)?))
    }
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>(field)?))
    }
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array::<8>(field)?))
    }
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }
    fn bounded(
        &mut self,
        len: usize,
        max: usize,
        field: &'static str,
    ) -> Result<Vec<u8>, DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        Ok(self.take(len, field)?.to_vec())
    }
    pub(crate) fn bytes8(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<Vec<u8>, DecodeError> {
        let len = usize::from(self.u8(field)?);
        self.bounded(len, max, field)
    }
    pub(crate) fn bytes16(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<Vec<u8>, DecodeError> {
        let len = usize::from(self.u16(field)?);
        self.bounded(len, max, field)
    }
    pub(crate) fn bytes32(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<Vec<u8>, DecodeError> {
        let len = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        self.bounded(len, max, field)
    }
    pub(crate) fn string8(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes8(max, field)?).map_err(|_| DecodeError::BadUtf8 { field })
    }
    pub(crate) fn string16(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes16(max, field)?).map_err(|_| DecodeError::BadUtf8 { field })
    }
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::BadValue {
                field,
                value: u64::from(value),
            }),
        }
    }
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                count: self.data.len(),
            })
        }
    }
}
