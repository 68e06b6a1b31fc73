//! Safety numbers: Signal's `NumericFingerprintGenerator` (fingerprint version 0, 5200
//! iterations), plus a scannable form and its constant-time comparison.
//!
//! Per party: `h = SHA-512(0x0000 || key || stable_id || key)`, then 5199 times
//! `h = SHA-512(h || key)` (5200 hashes in all, exactly as libsignal's `get_fingerprint`).
//! Displayable half: first 30 bytes of `h` as six 5-byte big-endian integers, each mod 100000,
//! zero-padded to 5 digits. The safety number is the two 30-digit halves, smaller first.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::identity::IdentityPublicKey;
use crate::wire::Reader;

/// Fingerprint format version hashed into every fingerprint (libsignal: 0).
pub const FINGERPRINT_VERSION: [u8; 2] = [0x00, 0x00];
/// Number of SHA-512 invocations per fingerprint.
pub const ITERATIONS: u32 = 5200;
/// Version byte of the scannable (QR) encoding.
pub const SCANNABLE_VERSION: u8 = 0x01;
/// Size of the scannable encoding: version + two 32-byte fingerprints.
pub const SCANNABLE_LEN: usize = 1 + 32 + 32;

fn fingerprint(stable_id: &[u8], key: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(FINGERPRINT_VERSION);
    h.update(key);
    h.update(stable_id);
    h.update(key);
    let mut out = h.finalize();
    for _ in 1..ITERATIONS {
        let mut h = Sha512::new();
        h.update(out);
        h.update(key);
        out = h.finalize();
    }
    out.into()
}

fn displayable_half(fp: &[u8; 64]) -> String {
    fp[..30]
        .chunks_exact(5)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:05}", v % 100_000)
        })
        .collect()
}

/// The 60-digit safety number (no spaces). Bytes are hashed exactly as given; Sotto feeds the
/// account id bytes as `*_id` and [`IdentityPublicKey::encode`] as `*_key` (see
/// docs/PROTOCOL.md). Both parties compute the same string.
pub fn safety_number(
    local_id: &[u8],
    local_key: &[u8],
    remote_id: &[u8],
    remote_key: &[u8],
) -> String {
    let local = displayable_half(&fingerprint(local_id, local_key));
    let remote = displayable_half(&fingerprint(remote_id, remote_key));
    if local < remote {
        local + &remote
    } else {
        remote + &local
    }
}

/// [`safety_number`] fed with Sotto's identity encoding.
pub fn safety_number_for(
    local_id: &[u8],
    local_key: &IdentityPublicKey,
    remote_id: &[u8],
    remote_key: &IdentityPublicKey,
) -> String {
    safety_number(
        local_id,
        &local_key.encode(),
        remote_id,
        &remote_key.encode(),
    )
}

/// Result of comparing a scanned payload with our own fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanResult {
    /// The peer sees the same two keys we do.
    Match,
    /// Well-formed but the fingerprints differ: possible key change or interception.
    Mismatch,
    /// The payload uses a scannable version we do not know.
    WrongVersion(u8),
    /// The payload is not a scannable fingerprint.
    Malformed,
}

/// Our side's scannable fingerprint: first 32 bytes of each party's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannableFingerprint {
    local: [u8; 32],
    remote: [u8; 32],
}

impl ScannableFingerprint {
    /// Computes it with the same inputs as [`safety_number`].
    pub fn new(local_id: &[u8], local_key: &[u8], remote_id: &[u8], remote_key: &[u8]) -> Self {
        let mut local = [0u8; 32];
        let mut remote = [0u8; 32];
        local.copy_from_slice(&fingerprint(local_id, local_key)[..32]);
        remote.copy_from_slice(&fingerprint(remote_id, remote_key)[..32]);
        Self { local, remote }
    }

    /// `0x01 || local(32) || remote(32)`: the verification QR payload.
    pub fn encode(&self) -> [u8; SCANNABLE_LEN] {
        let mut out = [0u8; SCANNABLE_LEN];
        out[0] = SCANNABLE_VERSION;
        out[1..33].copy_from_slice(&self.local);
        out[33..].copy_from_slice(&self.remote);
        out
    }

    /// Compares a payload scanned from the peer's screen. Their "local" must equal our
    /// "remote" and vice versa; both halves are compared in constant time.
    pub fn compare(&self, scanned: &[u8]) -> ScanResult {
        let mut r = Reader::new(scanned);
        let Ok(version) = r.u8() else {
            return ScanResult::Malformed;
        };
        if version != SCANNABLE_VERSION {
            return ScanResult::WrongVersion(version);
        }
        let (Ok(theirs_local), Ok(theirs_remote)) = (r.array::<32>(), r.array::<32>()) else {
            return ScanResult::Malformed;
        };
        if r.finish().is_err() {
            return ScanResult::Malformed;
        }
        let same = theirs_local.ct_eq(&self.remote) & theirs_remote.ct_eq(&self.local);
        if bool::from(same) {
            ScanResult::Match
        } else {
            ScanResult::Mismatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // libsignal rust/protocol/src/fingerprint.rs known-answer inputs (33-byte 0x05-prefixed
    // Curve25519 keys, hashed as given).
    const ALICE_IDENTITY: &str =
        "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868";
    const BOB_IDENTITY: &str = "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b";
    const ALICE_STABLE_ID: &[u8] = b"+14152222222";
    const BOB_STABLE_ID: &[u8] = b"+14153333333";
    const DISPLAYABLE: &str = "300354477692869396892869876765458257569162576843440918079131";
    const ALICE_FP32: &str = "1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df";
    const BOB_FP32: &str = "d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d";

    fn keys() -> (Vec<u8>, Vec<u8>) {
        (
            hex::decode(ALICE_IDENTITY).unwrap(),
            hex::decode(BOB_IDENTITY).unwrap(),
        )
    }

    #[test]
    fn libsignal_known_answer() {
        let (a, b) = keys();
        assert_eq!(
            safety_number(ALICE_STABLE_ID, &a, BOB_STABLE_ID, &b),
            DISPLAYABLE
        );
        assert_eq!(
            safety_number(BOB_STABLE_ID, &b, ALICE_STABLE_ID, &a),
            DISPLAYABLE
        );
        let scan = ScannableFingerprint::new(ALICE_STABLE_ID, &a, BOB_STABLE_ID, &b);
        assert_eq!(hex::encode(scan.local), ALICE_FP32);
        assert_eq!(hex::encode(scan.remote), BOB_FP32);
    }

    #[test]
    fn scannable_compare_outcomes() {
        let (a, b) = keys();
        let alice = ScannableFingerprint::new(ALICE_STABLE_ID, &a, BOB_STABLE_ID, &b);
        let bob = ScannableFingerprint::new(BOB_STABLE_ID, &b, ALICE_STABLE_ID, &a);
        assert_eq!(alice.compare(&bob.encode()), ScanResult::Match);
        assert_eq!(bob.compare(&alice.encode()), ScanResult::Match);
        assert_eq!(alice.compare(&alice.encode()), ScanResult::Mismatch);
        let mitm = ScannableFingerprint::new(BOB_STABLE_ID, &a, ALICE_STABLE_ID, &a);
        assert_eq!(alice.compare(&mitm.encode()), ScanResult::Mismatch);
        let mut v2 = bob.encode();
        v2[0] = 2;
        assert_eq!(alice.compare(&v2), ScanResult::WrongVersion(2));
        assert_eq!(alice.compare(&bob.encode()[..64]), ScanResult::Malformed);
        assert_eq!(alice.compare(&[]), ScanResult::Malformed);
        let mut long = bob.encode().to_vec();
        long.push(0);
        assert_eq!(alice.compare(&long), ScanResult::Malformed);
    }

    #[test]
    fn different_ids_give_different_numbers() {
        let (a, b) = keys();
        let n1 = safety_number(b"alice", &a, b"bob", &b);
        let n2 = safety_number(b"alice2", &a, b"bob", &b);
        assert_eq!(n1.len(), 60);
        assert!(n1.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(n1, n2);
    }
}
