//! Profiling driver for the per-message ratchet cost, Sotto next to vodozemac (Olm), in the
//! shapes of the criterion benchmark (`benches/protocol.rs`). Meant for
//! `valgrind --tool=callgrind`, whose instruction counts are deterministic: run it with 0 and
//! with N iterations and divide the difference by N to get the cost of one iteration.
//!
//! `cargo build --release -p sotto-protocol --example ratchet_profile`, then
//! `ratchet_profile <sotto|olm> <same|flip> <iterations> [plaintext bytes, default 1024]`.
//! (valgrind hides SHA-NI, so SHA-256 weighs more in the counts than on the CPU.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_protocol::{
    Address, CiphertextMessage, IdentityKeyPair, KemPreKeyKind, KemPreKeySecret,
    OneTimePreKeySecret, PreKeyUpload, ResponderPreKeys, Session, SignedPreKeySecret,
};

fn sotto(flip: bool, n: usize, plaintext: &[u8]) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKeySecret::generate(&mut rng, &bob, 1);
    let otk = OneTimePreKeySecret::generate(&mut rng, 2);
    let kem = KemPreKeySecret::generate(&mut rng, &bob, 3, KemPreKeyKind::OneTime);
    let upload = PreKeyUpload {
        address: Address::new([2; 32], 1),
        identity: bob.public(),
        signed_prekey: spk.public(),
        last_resort_kem_prekey: KemPreKeySecret::generate(
            &mut rng,
            &bob,
            4,
            KemPreKeyKind::LastResort,
        )
        .public(),
        one_time_prekeys: vec![otk.public()],
        one_time_kem_prekeys: vec![kem.public()],
    };
    let bundle = upload
        .bundle(Some(otk.public()), Some(kem.public()))
        .verify(&bob.public())
        .unwrap();
    let mut a = Session::initiate(&mut rng, &alice, Address::new([1; 32], 1), &bundle).unwrap();
    let CiphertextMessage::PreKey(m) = a.encrypt(b"hi").unwrap() else {
        panic!()
    };
    let keys = ResponderPreKeys {
        signed_prekey: &spk,
        one_time_prekey: Some(&otk),
        kem_prekey: &kem,
        replay_seen: &|_| false,
    };
    let mut s = Session::respond(
        &mut rng,
        &bob,
        Address::new([2; 32], 1),
        Address::new([1; 32], 1),
        &alice.public(),
        &m,
        keys,
    )
    .unwrap()
    .session;
    let reply = s.encrypt(b"r").unwrap();
    a.decrypt(&mut rng, &reply).unwrap();
    for _ in 0..n {
        let m = a.encrypt(black_box(plaintext)).unwrap();
        black_box(s.decrypt(&mut rng, &m).unwrap());
        if flip {
            let r = s.encrypt(black_box(plaintext)).unwrap();
            black_box(a.decrypt(&mut rng, &r).unwrap());
        }
    }
}

fn olm(flip: bool, n: usize, plaintext: &[u8]) {
    use vodozemac::olm::{Account, OlmMessage, SessionConfig};
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(m) = a.encrypt(b"hi").unwrap() else {
        panic!()
    };
    let mut s = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &m)
        .unwrap()
        .session;
    let r = s.encrypt(b"r").unwrap();
    a.decrypt(&r).unwrap();
    for _ in 0..n {
        let m = a.encrypt(black_box(plaintext)).unwrap();
        black_box(s.decrypt(&m).unwrap());
        if flip {
            let r = s.encrypt(black_box(plaintext)).unwrap();
            black_box(a.decrypt(&r).unwrap());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flip = args[2] == "flip";
    let n: usize = args[3].parse().unwrap();
    let len: usize = args.get(4).map_or(1024, |l| l.parse().unwrap());
    let plaintext = vec![0x42u8; len];
    match args[1].as_str() {
        "sotto" => sotto(flip, n, &plaintext),
        "olm" => olm(flip, n, &plaintext),
        other => panic!("unknown side {other}"),
    }
}
