//! Thin, typed wrappers over the audited primitives. Nothing here implements a primitive; it
//! only fixes how this crate calls them (output sizes, nonce handling, contributory checks).

use std::sync::LazyLock;

use chacha20poly1305::aead::{Aead, AeadInPlace, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Length of the ChaCha20-Poly1305 tag appended to every ciphertext.
pub(crate) const AEAD_TAG_LEN: usize = 16;

/// A Diffie-Hellman output was all zeros: the peer's public key has small order, so the
/// "shared" secret carries no contribution from our private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonContributory;

/// AEAD authentication failed (or the ciphertext is shorter than a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AeadFailure;

/// X25519 that rejects non-contributory (all-zero) results, everywhere in the protocol.
pub(crate) fn x25519(
    secret: &StaticSecret,
    public: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>, NonContributory> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(NonContributory);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// HKDF-SHA256 with a compile-time output size, so the only failure mode of `expand`
/// (asking for more than 255 blocks) is ruled out before the program runs.
pub(crate) fn hkdf_sha256<const N: usize>(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
) -> Zeroizing<[u8; N]> {
    const { assert!(N <= 255 * 32, "HKDF-SHA256 output limit") };
    let mut out = Zeroizing::new([0u8; N]);
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    if hk.expand(info, out.as_mut()).is_err() {
        // Unreachable by the const assertion above.
        unreachable!("HKDF output length is bounded at compile time");
    }
    out
}

/// HKDF-SHA256 with a salt of 32 zero bytes: [`hkdf_sha256`]`(&[0; 32], ikm, info)`, with the
/// extract step's HMAC key schedule for that fixed salt computed once per process.
pub(crate) fn hkdf_sha256_zero_salt<const N: usize>(ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; N]> {
    const { assert!(N <= 255 * 32, "HKDF-SHA256 output limit") };
    static ZERO_SALT: LazyLock<Hmac<Sha256>> = LazyLock::new(|| keyed_hmac(&[0u8; 32]));
    // RFC 5869 extract: PRK = HMAC(salt, IKM).
    let mut extract = ZERO_SALT.clone();
    extract.update(ikm);
    let prk = Zeroizing::new(<[u8; 32]>::from(extract.finalize().into_bytes()));
    let Ok(hk) = Hkdf::<Sha256>::from_prk(&prk[..]) else {
        unreachable!("a SHA-256 output is a valid PRK");
    };
    let mut out = Zeroizing::new([0u8; N]);
    if hk.expand(info, out.as_mut()).is_err() {
        // Unreachable by the const assertion above.
        unreachable!("HKDF output length is bounded at compile time");
    }
    out
}

fn keyed_hmac(key: &[u8]) -> Hmac<Sha256> {
    let Ok(mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length");
    };
    mac
}

/// HMAC-SHA256 with a 32-byte key (HMAC accepts any key length, so keying cannot fail).
/// The protocol computes its HMACs in pairs ([`hmac_sha256_pair`]); this is the reference.
#[cfg(test)]
fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = keyed_hmac(key);
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// HMAC-SHA256 of two messages under the same 32-byte key, keying once (the keyed state is
/// cloned) instead of twice.
pub(crate) fn hmac_sha256_pair(
    key: &[u8; 32],
    first: &[u8],
    second: &[u8],
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let keyed = keyed_hmac(key);
    let mut a = keyed.clone();
    a.update(first);
    let mut b = keyed;
    b.update(second);
    (
        Zeroizing::new(a.finalize().into_bytes().into()),
        Zeroizing::new(b.finalize().into_bytes().into()),
    )
}

/// ChaCha20-Poly1305 encryption. Keys are single-use in every caller, which is why a
/// derived (never random) nonce is safe.
pub(crate) fn aead_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    match cipher.encrypt(
        nonce.into(),
        Payload {
            msg: plaintext,
            aad,
        },
    ) {
        Ok(ct) => ct,
        // Only fails for plaintexts over 256 GiB; every caller bounds plaintexts far below.
        Err(_) => unreachable!("plaintext length is bounded by the caller"),
    }
}

/// ChaCha20-Poly1305 encryption in place: `buffer` holds the plaintext and is replaced by
/// ciphertext || tag. Give it 16 bytes of spare capacity so that appending the tag does not
/// reallocate (which would leave a plaintext copy behind). Same single-use key rule as
/// [`aead_seal`].
pub(crate) fn aead_seal_in_place(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    buffer: &mut Vec<u8>,
) {
    let cipher = ChaCha20Poly1305::new(key.into());
    if cipher.encrypt_in_place(nonce.into(), aad, buffer).is_err() {
        // Only fails for plaintexts over 256 GiB; every caller bounds plaintexts far below.
        unreachable!("plaintext length is bounded by the caller");
    }
}

/// ChaCha20-Poly1305 decryption into a zeroizing buffer.
pub(crate) fn aead_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, AeadFailure> {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| AeadFailure)
}

/// Splits a derived 44-byte key block into (key, nonce) for a single AEAD use. Callers pass
/// fixed-size HKDF outputs, so the length is a compile-time fact at every call site.
pub(crate) fn split_key_nonce(block: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&block[..32]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&block[32..44]);
    (key, nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x25519_rejects_small_order_points() {
        let secret = StaticSecret::from([7u8; 32]);
        assert_eq!(
            x25519(&secret, &PublicKey::from([0u8; 32])),
            Err(NonContributory)
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(x25519(&secret, &PublicKey::from(one)), Err(NonContributory));
        let base = PublicKey::from(x25519_dalek::X25519_BASEPOINT_BYTES);
        assert!(x25519(&secret, &base).is_ok());
    }

    #[test]
    fn shortcuts_match_the_plain_constructions() {
        let key = [9u8; 32];
        let (a, b) = hmac_sha256_pair(&key, &[1], &[2]);
        assert_eq!(a, hmac_sha256(&key, &[1]));
        assert_eq!(b, hmac_sha256(&key, &[2]));
        for ikm in [&[][..], &[5u8; 32][..], &[6u8; 100][..]] {
            assert_eq!(
                hkdf_sha256_zero_salt::<44>(ikm, b"info"),
                hkdf_sha256::<44>(&[0u8; 32], ikm, b"info")
            );
        }
        let mut buffer = Vec::with_capacity(5 + 16);
        buffer.extend_from_slice(b"hello");
        aead_seal_in_place(&key, &[3; 12], b"ad", &mut buffer);
        assert_eq!(buffer, aead_seal(&key, &[3; 12], b"ad", b"hello"));
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = [1u8; 32];
        let nonce = [2u8; 12];
        let mut ct = aead_seal(&key, &nonce, b"ad", b"hello");
        assert_eq!(
            aead_open(&key, &nonce, b"ad", &ct).unwrap().as_slice(),
            b"hello"
        );
        assert_eq!(aead_open(&key, &nonce, b"AD", &ct), Err(AeadFailure));
        ct[0] ^= 1;
        assert_eq!(aead_open(&key, &nonce, b"ad", &ct), Err(AeadFailure));
    }
}
