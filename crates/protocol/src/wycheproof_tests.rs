//! Wycheproof vectors run through this crate's own wrappers, exactly as the protocol uses
//! them: X25519 with the non-contributory check, strict Ed25519 verification behind
//! `IdentityPublicKey`, ChaCha20-Poly1305 with 32-byte keys and 12-byte nonces, HKDF-SHA256.

use wycheproof::TestResult;

use crate::identity::IdentityPublicKey;
use crate::primitives::{aead_open, aead_seal, hkdf_sha256, x25519};

#[test]
fn x25519_matches_and_rejects_all_zero_outputs() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let mut zero_rejected = 0;
    let mut checked = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            let (Ok(sk), Ok(pk)) = (
                <[u8; 32]>::try_from(t.private_key.as_slice()),
                <[u8; 32]>::try_from(t.public_key.as_slice()),
            ) else {
                // Wrong-length keys cannot even be represented in our 32-byte wire fields.
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                continue;
            };
            let out = x25519(
                &x25519_dalek::StaticSecret::from(sk),
                &x25519_dalek::PublicKey::from(pk),
            );
            if t.shared_secret.iter().all(|&b| b == 0) {
                assert!(out.is_err(), "tc {}: all-zero output accepted", t.tc_id);
                zero_rejected += 1;
            } else if t.result.must_fail() {
                assert!(out.is_err(), "tc {}", t.tc_id);
            } else {
                assert_eq!(
                    out.unwrap().as_slice(),
                    t.shared_secret.as_slice(),
                    "tc {}",
                    t.tc_id
                );
                checked += 1;
            }
        }
    }
    assert!(zero_rejected > 0 && checked > 100);
}

#[test]
fn ed25519_strict_verification() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let mut valid = 0;
    for group in &set.test_groups {
        let mut encoded = vec![crate::identity::IDENTITY_KEY_VERSION];
        encoded.extend_from_slice(&group.key.pk);
        let key = IdentityPublicKey::decode(&encoded);
        for t in &group.tests {
            let accepted = match (&key, <[u8; 64]>::try_from(t.sig.as_slice())) {
                (Ok(k), Ok(sig)) => k.verify(&t.msg, &sig).is_ok(),
                _ => false,
            };
            match t.result {
                TestResult::Valid => {
                    assert!(accepted, "tc {} valid signature rejected", t.tc_id);
                    valid += 1;
                }
                TestResult::Invalid => assert!(!accepted, "tc {} invalid accepted", t.tc_id),
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(valid > 10);
}

#[test]
fn chacha20poly1305_as_used() {
    let set =
        wycheproof::aead::TestSet::load(wycheproof::aead::TestName::ChaCha20Poly1305).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        if group.nonce_size != 96 || group.key_size != 256 || group.tag_size != 128 {
            continue;
        }
        for t in &group.tests {
            let key: [u8; 32] = t.key.as_slice().try_into().unwrap();
            let nonce: [u8; 12] = t.nonce.as_slice().try_into().unwrap();
            let mut ct = t.ct.to_vec();
            ct.extend_from_slice(&t.tag);
            let opened = aead_open(&key, &nonce, &t.aad, &ct);
            if t.result.must_fail() {
                assert!(opened.is_err(), "tc {}", t.tc_id);
            } else {
                assert_eq!(
                    opened.unwrap().as_slice(),
                    t.pt.as_slice(),
                    "tc {}",
                    t.tc_id
                );
                assert_eq!(aead_seal(&key, &nonce, &t.aad, &t.pt), ct, "tc {}", t.tc_id);
                checked += 1;
            }
        }
    }
    assert!(checked > 50);
}

#[test]
fn hkdf_sha256_at_our_output_sizes() {
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let mut checked = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            if t.result.must_fail() {
                continue;
            }
            // Our wrapper is instantiated at the sizes the protocol uses; check the prefix
            // of each vector at every such size it covers (HKDF output prefixes are stable).
            let okm = t.okm.as_slice();
            if okm.len() >= 32 {
                assert_eq!(
                    &hkdf_sha256::<32>(&t.salt, &t.ikm, &t.info)[..],
                    &okm[..32],
                    "tc {}",
                    t.tc_id
                );
                checked += 1;
            }
            if okm.len() >= 44 {
                assert_eq!(
                    &hkdf_sha256::<44>(&t.salt, &t.ikm, &t.info)[..],
                    &okm[..44],
                    "tc {}",
                    t.tc_id
                );
            }
            if okm.len() >= 64 {
                assert_eq!(
                    &hkdf_sha256::<64>(&t.salt, &t.ikm, &t.info)[..],
                    &okm[..64],
                    "tc {}",
                    t.tc_id
                );
            }
            if okm.len() >= 76 {
                assert_eq!(
                    &hkdf_sha256::<76>(&t.salt, &t.ikm, &t.info)[..],
                    &okm[..76],
                    "tc {}",
                    t.tc_id
                );
            }
        }
    }
    assert!(checked > 20);
}
