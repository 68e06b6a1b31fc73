//! Length hiding: every plaintext is padded to a fixed bucket before encryption.
//!
//! Scheme (ISO/IEC 7816-4 style): `plaintext || 0x80 || 0x00*`, total length = the smallest
//! bucket that fits `plaintext.len() + 1`. Buckets are powers of two from 256 bytes to 64 KiB, so
//! a ciphertext reveals only which of 9 size classes the message falls into. The largest bucket
//! is chosen so that a sealed envelope carrying it stays within the relay's 128 KiB envelope
//! limit; the largest plaintext is therefore 65,535 bytes.

use thiserror::Error;
use zeroize::Zeroizing;

/// Smallest bucket, in bytes.
pub const MIN_BUCKET: usize = 256;
/// Largest bucket, in bytes. Larger content (attachments) must be sent by reference.
pub const MAX_BUCKET: usize = 1 << 16;
/// Largest plaintext that can be padded (one byte is always taken by the 0x80 marker).
pub const MAX_PLAINTEXT: usize = MAX_BUCKET - 1;

const MARKER: u8 = 0x80;

/// The plaintext does not fit in the largest bucket.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("plaintext exceeds the maximum of {MAX_PLAINTEXT} bytes")]
pub struct PlaintextTooLarge;

/// The decrypted buffer is not validly padded.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum UnpadError {
    /// The padded length is not one of the bucket sizes.
    #[error("padded length is not a bucket size")]
    NotABucket,
    /// No 0x80 marker after the trailing zeros (or a non-zero byte in the padding).
    #[error("padding marker missing")]
    MissingMarker,
    /// The plaintext would fit a smaller bucket: padding is canonical, so this is malformed.
    #[error("padding is longer than the minimal bucket")]
    NonMinimalBucket,
}

/// The bucket a plaintext of `len` bytes is padded to.
pub fn bucket_for(len: usize) -> Result<usize, PlaintextTooLarge> {
    if len > MAX_PLAINTEXT {
        return Err(PlaintextTooLarge);
    }
    Ok((len + 1).next_power_of_two().max(MIN_BUCKET))
}

/// Pads `plaintext` into a fresh zeroizing buffer.
pub fn pad(plaintext: &[u8]) -> Result<Zeroizing<Vec<u8>>, PlaintextTooLarge> {
    pad_with_spare(plaintext, 0)
}

/// [`pad`] into a buffer with `spare` bytes of extra capacity (room for an AEAD tag, so the
/// buffer can be encrypted in place without reallocating).
pub(crate) fn pad_with_spare(
    plaintext: &[u8],
    spare: usize,
) -> Result<Zeroizing<Vec<u8>>, PlaintextTooLarge> {
    let bucket = bucket_for(plaintext.len())?;
    let mut out = Zeroizing::new(Vec::with_capacity(bucket + spare));
    out.extend_from_slice(plaintext);
    out.push(MARKER);
    out.resize(bucket, 0);
    Ok(out)
}

/// Strips padding, rejecting lengths that are not buckets, missing markers and padding to a
/// larger bucket than needed (so every plaintext has exactly one padded form).
pub fn unpad(padded: &[u8]) -> Result<Zeroizing<Vec<u8>>, UnpadError> {
    let end = unpadded_len(padded)?;
    Ok(Zeroizing::new(padded[..end].to_vec()))
}

/// [`unpad`] without a copy: truncates `padded` (its capacity is still zeroized on drop).
pub(crate) fn unpad_in_place(
    mut padded: Zeroizing<Vec<u8>>,
) -> Result<Zeroizing<Vec<u8>>, UnpadError> {
    let end = unpadded_len(&padded)?;
    padded.truncate(end);
    Ok(padded)
}

/// Length of the plaintext inside a validly padded buffer.
fn unpadded_len(padded: &[u8]) -> Result<usize, UnpadError> {
    let len = padded.len();
    if !(MIN_BUCKET..=MAX_BUCKET).contains(&len) || !len.is_power_of_two() {
        return Err(UnpadError::NotABucket);
    }
    // Skip the zero tail 16 bytes at a time (every bucket is a multiple of 16), then find the
    // last non-zero byte before it.
    let zero_tail = 16
        * padded
            .rchunks_exact(16)
            .take_while(|chunk| *chunk == [0u8; 16])
            .count();
    let end = padded[..len - zero_tail]
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(UnpadError::MissingMarker)?;
    if padded[end] != MARKER {
        return Err(UnpadError::MissingMarker);
    }
    if bucket_for(end) != Ok(len) {
        return Err(UnpadError::NonMinimalBucket);
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bucket_boundaries() {
        assert_eq!(bucket_for(0), Ok(256));
        assert_eq!(bucket_for(255), Ok(256));
        assert_eq!(bucket_for(256), Ok(512));
        assert_eq!(bucket_for(MAX_PLAINTEXT), Ok(MAX_BUCKET));
        assert_eq!(bucket_for(MAX_PLAINTEXT + 1), Err(PlaintextTooLarge));
        assert_eq!(MAX_PLAINTEXT, 65_535);
        assert_eq!(bucket_for(65_535), Ok(65_536));
        assert_eq!(bucket_for(65_536), Err(PlaintextTooLarge));
        assert_eq!(pad(&vec![0u8; 65_536]), Err(PlaintextTooLarge));
    }

    #[test]
    fn malformed_padding_is_rejected() {
        assert_eq!(unpad(&[0u8; 256]), Err(UnpadError::MissingMarker));
        assert_eq!(unpad(&[0x80u8; 255]), Err(UnpadError::NotABucket));
        let mut p = pad(b"hi").unwrap();
        p[3] = 1;
        assert_eq!(unpad(&p), Err(UnpadError::MissingMarker));
        assert_eq!(unpad(&[]), Err(UnpadError::NotABucket));
        let mut long = vec![0u8; 512];
        long[0] = MARKER;
        assert_eq!(unpad(&long), Err(UnpadError::NonMinimalBucket));
        // The marker at every offset of a 16-byte chunk, and a non-zero padding byte.
        for len in 255..=271 {
            let p = pad(&vec![0x11; len]).unwrap();
            assert_eq!(unpad(&p).unwrap().len(), len);
        }
        let mut p = pad(&[0u8; 300]).unwrap();
        p[511] = 1;
        assert_eq!(unpad(&p), Err(UnpadError::MissingMarker));
    }

    proptest! {
        #[test]
        fn pad_unpad_round_trip(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let padded = pad(&data).unwrap();
            prop_assert!(padded.len().is_power_of_two() && padded.len() >= MIN_BUCKET);
            let unpadded = unpad(&padded).unwrap();
            prop_assert_eq!(unpadded.as_slice(), data.as_slice());
            let spare = pad_with_spare(&data, 16).unwrap();
            prop_assert_eq!(&spare[..], &padded[..]);
            prop_assert!(spare.capacity() >= padded.len() + 16);
            let in_place = unpad_in_place(spare).unwrap();
            prop_assert_eq!(in_place.as_slice(), data.as_slice());
        }
    }
}
