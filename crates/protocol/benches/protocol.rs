//! Criterion benchmarks: Sotto operations, the same shapes with vodozemac (Olm), and the bare
//! primitive floor those operations are built from.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-protocol cargo bench -p sotto-protocol`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{KemCore, MlKem768};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_protocol::safety::safety_number;
use sotto_protocol::{
    Address, CiphertextMessage, IdentityKeyPair, ResponderPreKeys, Session, sealed_sender,
};

#[path = "support/sessions.rs"]
mod sessions;

use sessions::{bob, established, olm_established};

const KIB: [u8; 1024] = [0x42; 1024];
/// Equal-bytes shape: Sotto pads a 1 KiB plaintext to its 2 KiB bucket (the 0x80 marker needs
/// one more byte), so it encrypts twice as many bytes as Olm in the `1KiB` rows. A 1023-byte
/// plaintext fills Sotto's 1 KiB bucket exactly and is 1024 bytes for Olm after PKCS#7, so
/// both AEADs process the same number of bytes.
const BUCKET_FILL: [u8; 1023] = [0x42; 1023];

fn sotto(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let alice = IdentityKeyPair::generate(&mut rng);
    let b = bob(&mut rng);
    let alice_addr = Address::new(alice.public().account_id().0, 1);

    c.bench_function("sotto/pqxdh_initiate", |bench| {
        bench
            .iter(|| Session::initiate(&mut rng, &alice, alice_addr, black_box(&b.bundle)).unwrap())
    });
    let mut setup_rng = ChaCha20Rng::from_seed([2; 32]);
    c.bench_function("sotto/pqxdh_respond_with_first_message", |bench| {
        bench.iter_batched(
            || {
                let mut a =
                    Session::initiate(&mut setup_rng, &alice, alice_addr, &b.bundle).unwrap();
                let CiphertextMessage::PreKey(m) = a.encrypt(&KIB).unwrap() else {
                    panic!()
                };
                m
            },
            |m| {
                let keys = ResponderPreKeys {
                    signed_prekey: &b.spk,
                    one_time_prekey: Some(&b.otk),
                    kem_prekey: &b.kem,
                    replay_seen: &|_| false,
                };
                Session::respond(
                    &mut rng,
                    &b.identity,
                    b.address,
                    alice_addr,
                    &alice.public(),
                    &m,
                    keys,
                )
                .unwrap()
            },
            BatchSize::SmallInput,
        )
    });

    let (mut a, mut s, alice_id, bob_keys) = established(&mut rng);
    c.bench_function("sotto/encrypt_decrypt_1KiB_same_chain", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(&KIB)).unwrap();
            s.decrypt(&mut rng, &m).unwrap()
        })
    });
    c.bench_function("sotto/encrypt_decrypt_1KiB_direction_flip", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(&KIB)).unwrap();
            s.decrypt(&mut rng, &m).unwrap();
            let r = s.encrypt(black_box(&KIB)).unwrap();
            a.decrypt(&mut rng, &r).unwrap()
        })
    });
    c.bench_function("sotto/encrypt_decrypt_1023B_same_chain", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(&BUCKET_FILL)).unwrap();
            s.decrypt(&mut rng, &m).unwrap()
        })
    });
    c.bench_function("sotto/encrypt_decrypt_1023B_direction_flip", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(&BUCKET_FILL)).unwrap();
            s.decrypt(&mut rng, &m).unwrap();
            let r = s.encrypt(black_box(&BUCKET_FILL)).unwrap();
            a.decrypt(&mut rng, &r).unwrap()
        })
    });
    let inner = a.encrypt(&KIB).unwrap();
    let sender_addr = Address::new(alice_id.public().account_id().0, 1);
    c.bench_function("sotto/sealed_sender_seal_open_1KiB", |bench| {
        bench.iter(|| {
            let env = sealed_sender::seal(
                &mut rng,
                &alice_id,
                sender_addr,
                &bob_keys.identity.public(),
                bob_keys.address,
                black_box(&inner),
            )
            .unwrap();
            sealed_sender::open(&bob_keys.identity, bob_keys.address, &env).unwrap()
        })
    });
    let (ak, bk) = (alice.public().encode(), b.identity.public().encode());
    c.bench_function("sotto/safety_number", |bench| {
        bench.iter(|| safety_number(black_box(&[1; 32]), &ak, &[2; 32], &bk))
    });
}

fn olm(c: &mut Criterion) {
    use vodozemac::olm::{Account, OlmMessage, SessionConfig};
    let alice = Account::new();
    let mut bob = Account::new();
    c.bench_function("vodozemac/olm_session_start_both_sides", |bench| {
        bench.iter(|| {
            bob.generate_one_time_keys(1);
            let otk = *bob.one_time_keys().values().next().unwrap();
            bob.mark_keys_as_published();
            let mut out = alice
                .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
                .unwrap();
            let OlmMessage::PreKey(m) = out.encrypt(KIB).unwrap() else {
                panic!()
            };
            bob.create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &m)
                .unwrap()
        })
    });
    let (mut a, mut s) = olm_established();
    c.bench_function("vodozemac/encrypt_decrypt_1KiB_same_chain", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(KIB)).unwrap();
            s.decrypt(&m).unwrap()
        })
    });
    c.bench_function("vodozemac/encrypt_decrypt_1KiB_direction_flip", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(KIB)).unwrap();
            s.decrypt(&m).unwrap();
            let r = s.encrypt(black_box(KIB)).unwrap();
            a.decrypt(&r).unwrap()
        })
    });
    c.bench_function("vodozemac/encrypt_decrypt_1023B_same_chain", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(BUCKET_FILL)).unwrap();
            s.decrypt(&m).unwrap()
        })
    });
    c.bench_function("vodozemac/encrypt_decrypt_1023B_direction_flip", |bench| {
        bench.iter(|| {
            let m = a.encrypt(black_box(BUCKET_FILL)).unwrap();
            s.decrypt(&m).unwrap();
            let r = s.encrypt(black_box(BUCKET_FILL)).unwrap();
            a.decrypt(&r).unwrap()
        })
    });
}

fn floor(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let x = x25519_dalek::StaticSecret::random_from_rng(&mut rng);
    let y = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(&mut rng));
    c.bench_function("floor/x25519", |bench| {
        bench.iter(|| x.diffie_hellman(black_box(&y)))
    });
    let x3 = x25519_dalek_3::StaticSecret::from([9u8; 32]);
    let y3 = x25519_dalek_3::PublicKey::from(y.to_bytes());
    c.bench_function("floor/x25519_dalek3", |bench| {
        bench.iter(|| x3.diffie_hellman(black_box(&y3)))
    });
    c.bench_function("floor/x25519_base", |bench| {
        bench.iter(|| x25519_dalek::PublicKey::from(black_box(&x)))
    });
    c.bench_function("floor/x25519_base_dalek3", |bench| {
        bench.iter(|| x25519_dalek_3::PublicKey::from(black_box(&x3)))
    });
    let (dk, ek) = MlKem768::generate(&mut rng);
    c.bench_function("floor/ml_kem_768_encaps_decaps", |bench| {
        bench.iter(|| {
            let (ct, _) = ek.encapsulate(&mut rng).unwrap();
            dk.decapsulate(&ct).unwrap()
        })
    });
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    // 1 KiB is the AEAD input of Olm's 1 KiB rows (plus PKCS#7), 2 KiB that of Sotto's (its
    // padding bucket); the AD length is Sotto's (session AD 66 + header 40).
    for (name, len) in [("1KiB", 1024), ("2KiB", 2048)] {
        let pt = vec![0x42u8; len];
        c.bench_function(
            &format!("floor/chacha20poly1305_seal_open_{name}"),
            |bench| {
                bench.iter(|| {
                    let ct = cipher
                        .encrypt(
                            &[0u8; 12].into(),
                            Payload {
                                msg: black_box(&pt),
                                aad: &[0; 106],
                            },
                        )
                        .unwrap();
                    cipher
                        .decrypt(
                            &[0u8; 12].into(),
                            Payload {
                                msg: &ct,
                                aad: &[0; 106],
                            },
                        )
                        .unwrap()
                })
            },
        );
    }
    let sk = ed25519_dalek::SigningKey::generate(&mut rng);
    c.bench_function("floor/ed25519_sign", |bench| {
        bench.iter(|| ed25519_dalek::Signer::sign(&sk, black_box(b"prekey")))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = sotto, olm, floor
}
criterion_main!(benches);
