//! Fuzz harness shared by the cargo-fuzz targets (fuzz/fuzz_targets/*.rs) and by the stable
//! corpus-replay test (crates/protocol/tests/fuzz_corpus.rs), so CI runs the committed corpus
//! through exactly the code the fuzzer exercises.
//!
//! Decoders must never panic, and anything that decodes must re-encode to the same bytes
//! (one encoding per value). The two-party target drives a whole conversation from the input.

use std::sync::OnceLock;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_protocol::qr::ContactInvite;
use sotto_protocol::safety::ScannableFingerprint;
use sotto_protocol::sealed_sender::{self, SealedEnvelope};
use sotto_protocol::{
    Address, CiphertextMessage, DoubleRatchet, IdentityKeyPair, KemPreKeyKind, KemPreKeySecret,
    OneTimePreKeySecret, PreKeyBundle, PreKeyUpload, RatchetMessage, ResponderPreKeys, Session,
    SignedPreKeySecret, padding,
};

/// Every target name, which is also its corpus directory name.
pub const TARGETS: &[&str] = &[
    "decode_bundle",
    "decode_upload",
    "decode_ciphertext_message",
    "decode_envelope",
    "decode_session",
    "decode_ratchet_state",
    "decode_invite",
    "decode_secrets",
    "scan_compare",
    "unpad",
    "open_envelope",
    "two_party",
];

/// Runs one input through the named target.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "decode_bundle" => {
            if let Ok(b) = PreKeyBundle::decode(data) {
                assert_eq!(b.encode(), data);
                // Verify against the bundle's own identity so the signature checks run.
                let _ = b.verify(&b.identity);
            }
        }
        "decode_upload" => {
            if let Ok(u) = PreKeyUpload::decode(data) {
                assert_eq!(u.encode().ok().as_deref(), Some(data));
                let _ = u.verify();
            }
        }
        "decode_ciphertext_message" => {
            if let Ok(m) = CiphertextMessage::decode(data) {
                assert_eq!(m.encode().ok().as_deref(), Some(data));
            }
            if let Ok(m) = RatchetMessage::decode(data) {
                assert_eq!(m.encode().ok().as_deref(), Some(data));
            }
        }
        "decode_envelope" => {
            if let Ok(e) = SealedEnvelope::decode(data) {
                assert_eq!(e.encode().ok().as_deref(), Some(data));
            }
        }
        "decode_session" => {
            if let Ok(s) = Session::from_bytes(data) {
                assert_eq!(s.to_bytes().as_slice(), data);
            }
        }
        "decode_ratchet_state" => {
            if let Ok(s) = DoubleRatchet::from_bytes(data) {
                assert_eq!(s.to_bytes().as_slice(), data);
            }
        }
        "decode_invite" => {
            if let Ok(i) = ContactInvite::decode(data) {
                assert_eq!(i.encode(), data);
            }
        }
        "decode_secrets" => {
            if let Ok(k) = IdentityKeyPair::from_bytes(data) {
                assert_eq!(k.to_bytes().as_slice(), data);
            }
            if let Ok(k) = SignedPreKeySecret::from_bytes(data) {
                assert_eq!(k.to_bytes().as_slice(), data);
            }
            if let Ok(k) = OneTimePreKeySecret::from_bytes(data) {
                assert_eq!(k.to_bytes().as_slice(), data);
            }
            if let Ok(k) = KemPreKeySecret::from_bytes(data) {
                assert_eq!(k.to_bytes().as_slice(), data);
            }
        }
        "scan_compare" => {
            let ours = ScannableFingerprint::new(b"a", b"ka", b"b", b"kb");
            let _ = ours.compare(data);
        }
        "unpad" => {
            if let Ok(p) = padding::unpad(data) {
                assert_eq!(
                    padding::pad(&p).ok().as_deref().map(|v| v.as_slice()),
                    Some(data)
                );
            }
        }
        "open_envelope" => {
            let f = fixture();
            let env = SealedEnvelope {
                recipient: f.bob_address,
                payload: data.to_vec(),
            };
            let _ = sealed_sender::open(&f.bob, f.bob_address, &env);
        }
        "two_party" => two_party(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

struct Fixture {
    bob: IdentityKeyPair,
    bob_address: Address,
    alice_session: Vec<u8>,
    bob_session: Vec<u8>,
}

/// An established session pair, built once (ML-KEM key generation is slow to repeat).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([0xF0; 32]);
        let alice = IdentityKeyPair::generate(&mut rng);
        let bob = IdentityKeyPair::generate(&mut rng);
        let (alice_address, bob_address) = (
            Address::new(alice.public().account_id().0, 1),
            Address::new(bob.public().account_id().0, 1),
        );
        let spk = SignedPreKeySecret::generate(&mut rng, &bob, 1);
        let otk = OneTimePreKeySecret::generate(&mut rng, 2);
        let kem = KemPreKeySecret::generate(&mut rng, &bob, 3, KemPreKeyKind::LastResort);
        let upload = PreKeyUpload {
            address: bob_address,
            identity: bob.public(),
            signed_prekey: spk.public(),
            last_resort_kem_prekey: kem.public(),
            one_time_prekeys: vec![otk.public()],
            one_time_kem_prekeys: vec![],
        };
        let bundle = upload
            .bundle(Some(otk.public()), None)
            .verify(&bob.public())
            .unwrap();
        let mut a = Session::initiate(&mut rng, &alice, alice_address, &bundle).unwrap();
        let CiphertextMessage::PreKey(first) = a.encrypt(b"hi").unwrap() else {
            panic!("first message must be a prekey message")
        };
        let keys = ResponderPreKeys {
            signed_prekey: &spk,
            one_time_prekey: Some(&otk),
            kem_prekey: &kem,
            replay_seen: &|_| false,
        };
        let b = Session::respond(
            &mut rng,
            &bob,
            bob_address,
            alice_address,
            &alice.public(),
            &first,
            keys,
        )
        .unwrap()
        .session;
        Fixture {
            bob,
            bob_address,
            alice_session: a.to_bytes().to_vec(),
            bob_session: b.to_bytes().to_vec(),
        }
    })
}

/// Each input byte is an operation on two parties; invariants are checked as it goes.
fn two_party(data: &[u8]) {
    let f = fixture();
    let mut rng = ChaCha20Rng::from_seed([0xF1; 32]);
    let mut a = Session::from_bytes(&f.alice_session).unwrap();
    let mut b = Session::from_bytes(&f.bob_session).unwrap();
    let mut to_a: Vec<(CiphertextMessage, Vec<u8>)> = Vec::new();
    let mut to_b: Vec<(CiphertextMessage, Vec<u8>)> = Vec::new();
    let mut counter = 0u32;
    for &byte in data.iter().take(256) {
        let arg = usize::from(byte >> 3);
        match byte & 0x07 {
            0 | 1 => {
                counter += 1;
                let pt = counter.to_be_bytes().repeat(arg);
                let (s, q) = if byte & 1 == 0 {
                    (&mut a, &mut to_b)
                } else {
                    (&mut b, &mut to_a)
                };
                q.push((s.encrypt(&pt).unwrap(), pt));
            }
            2 | 3 => {
                let (r, q) = if byte & 1 == 0 {
                    (&mut b, &mut to_b)
                } else {
                    (&mut a, &mut to_a)
                };
                if !q.is_empty() {
                    let (m, pt) = q.remove(arg % q.len());
                    assert_eq!(r.decrypt(&mut rng, &m).unwrap().as_slice(), pt.as_slice());
                    // Immediate replay must fail and change nothing.
                    let before = r.to_bytes();
                    assert!(r.decrypt(&mut rng, &m).is_err());
                    assert_eq!(r.to_bytes(), before);
                }
            }
            4 | 5 => {
                let (r, q) = if byte & 1 == 0 {
                    (&mut b, &mut to_b)
                } else {
                    (&mut a, &mut to_a)
                };
                if q.is_empty() {
                    continue;
                }
                let pick = arg % q.len();
                let mut bytes = q[pick].0.encode().unwrap();
                let i = (arg * 31 + 7) % bytes.len();
                bytes[i] ^= 1 << (arg % 8);
                let before = r.to_bytes();
                if let Ok(t) = CiphertextMessage::decode(&bytes) {
                    // Only the prekey wrapper's ids and KEM ciphertext are unauthenticated
                    // once a session exists; the authenticated content must be intact.
                    if let Ok(pt) = r.decrypt(&mut rng, &t) {
                        assert!(matches!(t, CiphertextMessage::PreKey(_)));
                        assert_eq!(pt.as_slice(), q.remove(pick).1.as_slice());
                        continue;
                    }
                }
                assert_eq!(r.to_bytes(), before);
            }
            6 => {
                let q = if arg % 2 == 0 { &mut to_b } else { &mut to_a };
                if !q.is_empty() {
                    q.remove(arg % q.len());
                }
            }
            _ => {
                a = Session::from_bytes(&a.to_bytes()).unwrap();
                b = Session::from_bytes(&b.to_bytes()).unwrap();
            }
        }
    }
}

/// Seed inputs for every target: valid encodings produced by the protocol itself, so the
/// fuzzer starts from deep inside each format. Written to fuzz/corpus/<target>/ by the replay
/// test when `SOTTO_REGENERATE_CORPUS=1`.
pub fn seed_inputs() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = fixture();
    let mut rng = ChaCha20Rng::from_seed([0xF2; 32]);
    let mut out = Vec::new();
    let mut push =
        |t: &'static str, name: &str, bytes: Vec<u8>| out.push((t, name.to_owned(), bytes));

    let carol = IdentityKeyPair::generate(&mut rng);
    let carol_address = Address::new(carol.public().account_id().0, 4);
    let spk = SignedPreKeySecret::generate(&mut rng, &carol, 10);
    let otk = OneTimePreKeySecret::generate(&mut rng, 11);
    let kem = KemPreKeySecret::generate(&mut rng, &carol, 12, KemPreKeyKind::LastResort);
    let kem1 = KemPreKeySecret::generate(&mut rng, &carol, 13, KemPreKeyKind::OneTime);
    let upload = PreKeyUpload {
        address: carol_address,
        identity: carol.public(),
        signed_prekey: spk.public(),
        last_resort_kem_prekey: kem.public(),
        one_time_prekeys: vec![otk.public()],
        one_time_kem_prekeys: vec![kem1.public()],
    };
    push("decode_upload", "upload", upload.encode().unwrap());
    push(
        "decode_bundle",
        "with_one_time",
        upload
            .bundle(Some(otk.public()), Some(kem1.public()))
            .encode(),
    );
    push(
        "decode_bundle",
        "last_resort",
        upload.bundle(None, None).encode(),
    );
    push("decode_secrets", "identity", carol.to_bytes().to_vec());
    push("decode_secrets", "signed_prekey", spk.to_bytes().to_vec());
    push("decode_secrets", "one_time_prekey", otk.to_bytes().to_vec());
    push("decode_secrets", "kem_prekey", kem.to_bytes().to_vec());

    let mut a = Session::from_bytes(&f.alice_session).unwrap();
    let mut b = Session::from_bytes(&f.bob_session).unwrap();
    let prekey_msg = a.encrypt(b"seed").unwrap();
    let reply = b.encrypt(b"reply").unwrap();
    push(
        "decode_ciphertext_message",
        "prekey",
        prekey_msg.encode().unwrap(),
    );
    push(
        "decode_ciphertext_message",
        "ratchet",
        reply.encode().unwrap(),
    );
    a.decrypt(&mut rng, &reply).unwrap();
    push("decode_session", "initiator", a.to_bytes().to_vec());
    push("decode_session", "responder", b.to_bytes().to_vec());

    let mut dr = DoubleRatchet::init_alice(&mut rng, &[9; 32], &spk.public().key, b"ad").unwrap();
    dr.encrypt(b"x").unwrap();
    push("decode_ratchet_state", "alice", dr.to_bytes().to_vec());

    let env = sealed_sender::seal(
        &mut rng,
        &carol,
        carol_address,
        &f.bob.public(),
        f.bob_address,
        &reply,
    )
    .unwrap();
    push("decode_envelope", "envelope", env.encode().unwrap());
    push("open_envelope", "payload", env.payload.clone());

    let invite = ContactInvite::new("relay.example:443", "carol", carol.public()).unwrap();
    push("decode_invite", "invite", invite.encode());
    let theirs = ScannableFingerprint::new(b"b", b"kb", b"a", b"ka");
    push("scan_compare", "match", theirs.encode().to_vec());
    push("unpad", "hello", padding::pad(b"hello").unwrap().to_vec());
    push(
        "two_party",
        "ping_pong",
        vec![0x08, 0x02, 0x09, 0x03, 0x07, 0x10, 0x18, 0x0a, 0x02],
    );
    push(
        "two_party",
        "reorder_tamper",
        vec![0x00, 0x08, 0x10, 0x04, 0x12, 0x02, 0x06, 0x01, 0x05, 0x0b],
    );
    out
}
