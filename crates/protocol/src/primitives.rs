//! Thin, typed wrappers over the audited primitives. Nothing here implements a primitive; it
//! only fixes how this crate calls them (output sizes, nonce handling, contributory checks).

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

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

/// HMAC-SHA256 with a 32-byte key (HMAC accepts any key length, so keying cannot fail).
pub(crate) fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length");
    };
    mac.update(data);
    Zeroizing::new(mac.finalize().into_bytes().into())
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
