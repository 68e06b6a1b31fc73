//! End-to-end tests: session start through sealed sender, whole conversations under
//! reordering, loss and duplication, tampering, and persistence mid-conversation.

// Integration-test helpers outside #[test] fns are test code too; clippy.toml only covers the latter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Device, establish, rng};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_protocol::ratchet::RatchetDecryptError;
use sotto_protocol::sealed_sender::{self, OpenError};
use sotto_protocol::{
    Address, CiphertextMessage, DecodeError, DecryptError, DoubleRatchet, EncodeError,
    PreKeyBundle, RespondError, Session,
};

#[test]
fn full_flow_with_and_without_one_time_keys() {
    for use_one_time in [true, false] {
        let mut rng = rng(1);
        let alice = Device::new(&mut rng, 1);
        let bob = Device::new(&mut rng, 2);
        let (mut a, mut b) = establish(&mut rng, &alice, &bob, use_one_time, b"hello bob");
        assert!(a.is_awaiting_reply());
        let reply = b.encrypt(b"hello alice").unwrap();
        assert!(matches!(reply, CiphertextMessage::Ratchet(_)));
        assert_eq!(
            a.decrypt(&mut rng, &reply).unwrap().as_slice(),
            b"hello alice"
        );
        assert!(!a.is_awaiting_reply());
        let m = a.encrypt(b"after reply").unwrap();
        assert!(matches!(m, CiphertextMessage::Ratchet(_)));
        assert_eq!(b.decrypt(&mut rng, &m).unwrap().as_slice(), b"after reply");
        assert_eq!(a.remote_address(), bob.address);
        assert_eq!(b.remote_address(), alice.address);
        assert_eq!(b.remote_identity(), alice.identity.public());
    }
}

#[test]
fn second_prekey_message_decrypts_on_existing_session() {
    let mut rng = rng(2);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 1);
    let (mut a, mut b) = establish(&mut rng, &alice, &bob, true, b"one");
    let second = a.encrypt(b"two").unwrap();
    assert!(matches!(second, CiphertextMessage::PreKey(_)));
    assert_eq!(b.decrypt(&mut rng, &second).unwrap().as_slice(), b"two");

    // A prekey message from a different session start is refused by this session.
    let (mut a2, _) = establish(&mut rng, &alice, &bob, false, b"other");
    let other = a2.encrypt(b"x").unwrap();
    assert_eq!(
        b.decrypt(&mut rng, &other).err(),
        Some(DecryptError::WrongSession)
    );
}

#[test]
fn respond_rejects_wrong_or_missing_prekeys_and_tampering() {
    let mut rng = rng(3);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 1);
    let upload = bob.upload();
    let bundle = upload
        .bundle(
            upload.one_time_prekeys.first().cloned(),
            upload.one_time_kem_prekeys.first().cloned(),
        )
        .verify(&bob.identity.public())
        .unwrap();
    let mut a = Session::initiate(&mut rng, &alice.identity, alice.address, &bundle).unwrap();
    let CiphertextMessage::PreKey(pkm) = a.encrypt(b"hi").unwrap() else {
        panic!()
    };

    let mut keys = bob.responder_keys(&pkm);
    keys.one_time_prekey = None;
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &pkm,
        keys,
    );
    assert_eq!(
        r.err().map(|e| e.to_string()),
        Some(RespondError::OneTimePreKeyMismatch.to_string())
    );

    let mut keys = bob.responder_keys(&pkm);
    keys.kem_prekey = &bob.last_resort;
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &pkm,
        keys,
    );
    assert!(matches!(r, Err(RespondError::PreKeyMismatch)));

    // Tampered KEM ciphertext: implicit rejection gives a different SK, so the first message
    // fails to authenticate.
    let mut bad = (*pkm).clone();
    bad.kem_ciphertext[10] ^= 1;
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &bad,
        bob.responder_keys(&bad),
    );
    assert!(matches!(
        r,
        Err(RespondError::Decrypt(DecryptError::Ratchet(
            RatchetDecryptError::AuthenticationFailed
        )))
    ));

    // Tampered base key or claimed identity changes the DHs: same outcome.
    let mut bad = (*pkm).clone();
    bad.base_key[0] ^= 2;
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &bad,
        bob.responder_keys(&bad),
    );
    assert!(matches!(
        r,
        Err(RespondError::Decrypt(_)) | Err(RespondError::NonContributory)
    ));
    // A claimed identity that differs from the one sealed sender authenticated is rejected
    // before any key agreement.
    let mut bad = (*pkm).clone();
    bad.identity = bob.identity.public();
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &bad,
        bob.responder_keys(&bad),
    );
    assert!(matches!(r, Err(RespondError::IdentityMismatch)));
    // Likewise an untampered message whose sealed-sender identity is someone else's.
    let mallory = Device::new(&mut rng, 1);
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &mallory.identity.public(),
        &pkm,
        bob.responder_keys(&pkm),
    );
    assert!(matches!(r, Err(RespondError::IdentityMismatch)));
    // Tampered claimed identity that matches the (equally wrong) authenticated identity still
    // fails the key agreement.
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &bob.identity.public(),
        &bad,
        bob.responder_keys(&bad),
    );
    assert!(matches!(r, Err(RespondError::Decrypt(_))));

    let mut bad = (*pkm).clone();
    bad.kem_ciphertext.truncate(10);
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &bad,
        bob.responder_keys(&bad),
    );
    assert!(matches!(r, Err(RespondError::MalformedKemCiphertext)));

    // All-zero base key is non-contributory.
    let mut bad = (*pkm).clone();
    bad.base_key = [0; 32];
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &bad,
        bob.responder_keys(&bad),
    );
    assert!(matches!(r, Err(RespondError::NonContributory)));

    // The untampered message still works.
    let r = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        alice.address,
        &alice.identity.public(),
        &pkm,
        bob.responder_keys(&pkm),
    );
    assert_eq!(r.unwrap().plaintext.as_slice(), b"hi");
}

#[test]
fn tampered_bundle_bytes_never_verify() {
    let mut rng = rng(4);
    let bob = Device::new(&mut rng, 1);
    let upload = bob.upload();
    let bundle = upload.bundle(upload.one_time_prekeys.first().cloned(), None);
    let bytes = bundle.encode();
    // Flip one bit in every byte of the signed parts: decode or verify must fail.
    // (Address bytes and one-time prekey are unsigned by design; skip those.)
    let signed_range = (1 + 36)..(1 + 36 + 33 + 100);
    for i in signed_range {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let ok = PreKeyBundle::decode(&t)
            .ok()
            .and_then(|b| b.verify(&bob.identity.public()).ok())
            .is_some();
        assert!(!ok, "bit flip at {i} went unnoticed");
    }
    let kem_start = bytes.len() - (4 + 1 + 1184 + 64);
    for i in (kem_start..bytes.len()).step_by(37) {
        let mut t = bytes.clone();
        t[i] ^= 0x80;
        let ok = PreKeyBundle::decode(&t)
            .ok()
            .and_then(|b| b.verify(&bob.identity.public()).ok())
            .is_some();
        assert!(!ok, "bit flip at {i} went unnoticed");
    }
}

#[test]
fn sealed_sender_rejects_tampering_and_wrong_recipient() {
    let mut rng = rng(5);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 1);
    let mallory = Device::new(&mut rng, 1);
    let (_, mut b) = establish(&mut rng, &alice, &bob, true, b"x");
    let msg = b.encrypt(b"sealed").unwrap();
    let env = sealed_sender::seal(
        &mut rng,
        &bob.identity,
        bob.address,
        &alice.identity.public(),
        alice.address,
        &msg,
    )
    .unwrap();
    assert_eq!(
        sealed_sender::SealedEnvelope::decode(&env.encode().unwrap()),
        Ok(env.clone())
    );

    let opened = sealed_sender::open(&alice.identity, alice.address, &env).unwrap();
    assert_eq!(opened.message, msg);
    assert_eq!(opened.sender_identity, bob.identity.public());

    assert_eq!(
        sealed_sender::open(&alice.identity, Address::new([1; 32], 9), &env),
        Err(OpenError::WrongRecipient)
    );
    assert_eq!(
        sealed_sender::open(&mallory.identity, alice.address, &env),
        Err(OpenError::EphemeralLayer)
    );
    // Re-addressing the envelope to another device breaks the ephemeral layer's salt.
    let mut readdressed = env.clone();
    readdressed.recipient = Address::new([1; 32], 2);
    assert_eq!(
        sealed_sender::open(&alice.identity, readdressed.recipient, &readdressed),
        Err(OpenError::EphemeralLayer)
    );

    let n = env.payload.len();
    let cases = [
        (5, OpenError::EphemeralLayer),
        (40, OpenError::EphemeralLayer),
        (n - 1, OpenError::StaticLayer),
    ];
    for (i, expected) in cases {
        let mut t = env.clone();
        t.payload[i] ^= 1;
        assert_eq!(
            sealed_sender::open(&alice.identity, alice.address, &t),
            Err(expected),
            "byte {i}"
        );
    }
    let mut t = env.clone();
    t.payload[0] = 9;
    assert_eq!(
        sealed_sender::open(&alice.identity, alice.address, &t),
        Err(OpenError::Malformed(DecodeError::UnknownVersion(9)))
    );
    let mut t = env.clone();
    t.payload.truncate(60);
    assert!(matches!(
        sealed_sender::open(&alice.identity, alice.address, &t),
        Err(OpenError::Malformed(_))
    ));

    // Mallory cannot claim to be Bob: she lacks Bob's identity secret, so sealing with
    // Bob's address under her own key names an account that is not hers, and is refused.
    let forged = sealed_sender::seal(
        &mut rng,
        &mallory.identity,
        bob.address,
        &alice.identity.public(),
        alice.address,
        &msg,
    )
    .unwrap();
    assert_eq!(
        sealed_sender::open(&alice.identity, alice.address, &forged),
        Err(OpenError::SenderMismatch)
    );
}

#[test]
fn failed_decrypt_leaves_session_unchanged_and_persistence_round_trips() {
    let mut rng = rng(6);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 1);
    let (mut a, mut b) = establish(&mut rng, &alice, &bob, true, b"x");
    let r = b.encrypt(b"r").unwrap();
    a.decrypt(&mut rng, &r).unwrap();
    let m = a.encrypt(b"payload").unwrap();
    let CiphertextMessage::Ratchet(inner) = &m else {
        panic!()
    };
    let before = b.to_bytes();
    let mut t = inner.clone();
    let last = t.ciphertext.len() - 1;
    t.ciphertext[last] ^= 1;
    assert!(b.decrypt(&mut rng, &CiphertextMessage::Ratchet(t)).is_err());
    assert_eq!(b.to_bytes(), before);

    let mut b = Session::from_bytes(&b.to_bytes()).unwrap();
    let mut a = Session::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(b.decrypt(&mut rng, &m).unwrap().as_slice(), b"payload");
    let r2 = b.encrypt(b"back").unwrap();
    assert_eq!(a.decrypt(&mut rng, &r2).unwrap().as_slice(), b"back");
    let mut bytes = a.to_bytes().to_vec();
    bytes[0] = 7;
    assert_eq!(
        Session::from_bytes(&bytes).err(),
        Some(DecodeError::UnknownVersion(7))
    );
}

#[derive(Debug, Clone)]
enum Op {
    Send {
        from_alice: bool,
        len: usize,
    },
    Deliver {
        to_bob: bool,
        pick: usize,
        duplicate: bool,
    },
    Drop {
        to_bob: bool,
        pick: usize,
    },
    Tamper {
        to_bob: bool,
        pick: usize,
    },
    Persist,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0usize..600).prop_map(|(from_alice, len)| Op::Send { from_alice, len }),
        4 => (any::<bool>(), any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(to_bob, pick, duplicate)| Op::Deliver { to_bob, pick, duplicate }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_bob, pick)| Op::Drop { to_bob, pick }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(to_bob, pick)| Op::Tamper { to_bob, pick }),
        1 => Just(Op::Persist),
    ]
}

struct InFlight {
    message: CiphertextMessage,
    plaintext: Vec<u8>,
}

fn tamper(m: &CiphertextMessage) -> CiphertextMessage {
    let mut m = m.clone();
    let inner = match &mut m {
        CiphertextMessage::PreKey(p) => &mut p.message,
        CiphertextMessage::Ratchet(r) => r,
    };
    inner.ciphertext[0] ^= 0x40;
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn conversations_survive_reordering_loss_and_duplication(
        seed in any::<[u8; 32]>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let alice = Device::new(&mut rng, 1);
        let bob = Device::new(&mut rng, 1);
        let (mut a, mut b) = establish(&mut rng, &alice, &bob, seed[0] % 2 == 0, b"start");
        let mut to_bob: Vec<InFlight> = Vec::new();
        let mut to_alice: Vec<InFlight> = Vec::new();
        let mut delivered_to_bob: Vec<CiphertextMessage> = Vec::new();
        let mut delivered_to_alice: Vec<CiphertextMessage> = Vec::new();
        let mut counter = 0u32;

        for op in ops {
            match op {
                Op::Send { from_alice, len } => {
                    counter += 1;
                    let plaintext: Vec<u8> = (0..len).map(|i| (i as u32 ^ counter) as u8).collect();
                    let (s, q) = if from_alice { (&mut a, &mut to_bob) } else { (&mut b, &mut to_alice) };
                    let message = s.encrypt(&plaintext).unwrap();
                    q.push(InFlight { message, plaintext });
                }
                Op::Deliver { to_bob: tb, pick, duplicate } => {
                    let (r, q, done) = if tb { (&mut b, &mut to_bob, &mut delivered_to_bob) } else { (&mut a, &mut to_alice, &mut delivered_to_alice) };
                    if duplicate && !done.is_empty() {
                        let m = &done[pick % done.len()];
                        let before = r.to_bytes();
                        let err = r.decrypt(&mut rng, m).unwrap_err();
                        prop_assert_eq!(err, DecryptError::Ratchet(RatchetDecryptError::Replayed));
                        prop_assert_eq!(r.to_bytes(), before);
                    } else if !q.is_empty() {
                        let f = q.remove(pick % q.len());
                        let pt = r.decrypt(&mut rng, &f.message).unwrap();
                        prop_assert_eq!(pt.as_slice(), f.plaintext.as_slice());
                        done.push(f.message);
                    }
                }
                Op::Drop { to_bob: tb, pick } => {
                    let q = if tb { &mut to_bob } else { &mut to_alice };
                    if !q.is_empty() {
                        q.remove(pick % q.len());
                    }
                }
                Op::Tamper { to_bob: tb, pick } => {
                    let (r, q) = if tb { (&mut b, &to_bob) } else { (&mut a, &to_alice) };
                    if !q.is_empty() {
                        let t = tamper(&q[pick % q.len()].message);
                        let before = r.to_bytes();
                        prop_assert!(r.decrypt(&mut rng, &t).is_err());
                        prop_assert_eq!(r.to_bytes(), before);
                    }
                }
                Op::Persist => {
                    a = Session::from_bytes(&a.to_bytes()).unwrap();
                    b = Session::from_bytes(&b.to_bytes()).unwrap();
                }
            }
        }
        // Everything still in flight is delivered, in reverse order.
        while let Some(f) = to_bob.pop() {
            let pt = b.decrypt(&mut rng, &f.message).unwrap();
            prop_assert_eq!(pt.as_slice(), f.plaintext.as_slice());
        }
        while let Some(f) = to_alice.pop() {
            let pt = a.decrypt(&mut rng, &f.message).unwrap();
            prop_assert_eq!(pt.as_slice(), f.plaintext.as_slice());
        }
    }
}

#[test]
fn oversize_plaintext_and_message_are_refused_with_typed_errors() {
    let mut rng = rng(42);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 2);
    let (mut a, _b) = establish(&mut rng, &alice, &bob, false, b"hi");
    let max = sotto_protocol::padding::MAX_PLAINTEXT;
    assert_eq!(max, 65_535);
    assert_eq!(
        a.encrypt(&vec![0u8; max + 1]).unwrap_err(),
        sotto_protocol::session::EncryptError::TooLarge
    );
    let largest = a.encrypt(&vec![0u8; max]).unwrap();
    let envelope = sealed_sender::seal(
        &mut rng,
        &alice.identity,
        alice.address,
        &bob.identity.public(),
        bob.address,
        &largest,
    )
    .unwrap();
    assert!(envelope.encode().unwrap().len() <= sealed_sender::MAX_ENVELOPE_LEN);

    // A hand-built inner message too large for the relay is refused by `seal`, not the relay.
    let m = sotto_protocol::RatchetMessage {
        header: sotto_protocol::Header {
            ratchet_key: [9u8; 32],
            previous_chain_length: 0,
            message_number: 0,
        },
        ciphertext: vec![0u8; sealed_sender::MAX_ENVELOPE_LEN],
    };
    assert_eq!(
        sealed_sender::seal(
            &mut rng,
            &alice.identity,
            alice.address,
            &bob.identity.public(),
            bob.address,
            &CiphertextMessage::Ratchet(m),
        )
        .unwrap_err(),
        sealed_sender::SealError::Encode(EncodeError::TooLong("ratchet ciphertext"))
    );
}

/// Encoders refuse, never truncate, a field outside what the decoder accepts; at the maximum
/// the encoding round-trips.
#[test]
fn encoders_refuse_oversize_fields_at_the_boundary() {
    use sotto_protocol::ratchet::{MAX_AD_LEN, MAX_CIPHERTEXT_LEN, RatchetInitError};
    let header = sotto_protocol::Header {
        ratchet_key: [9u8; 32],
        previous_chain_length: 1,
        message_number: 2,
    };
    let at_max = sotto_protocol::RatchetMessage {
        header,
        ciphertext: vec![7u8; MAX_CIPHERTEXT_LEN],
    };
    let bytes = at_max.encode().unwrap();
    assert_eq!(
        sotto_protocol::RatchetMessage::decode(&bytes),
        Ok(at_max.clone())
    );
    let over = sotto_protocol::RatchetMessage {
        header,
        ciphertext: vec![7u8; MAX_CIPHERTEXT_LEN + 1],
    };
    assert_eq!(
        over.encode(),
        Err(EncodeError::TooLong("ratchet ciphertext"))
    );
    assert_eq!(
        CiphertextMessage::Ratchet(over).encode(),
        Err(EncodeError::TooLong("ratchet ciphertext"))
    );

    let recipient = Address::new([3; 32], 1);
    let env = sealed_sender::SealedEnvelope {
        recipient,
        payload: vec![1u8; sealed_sender::MAX_PAYLOAD_LEN],
    };
    let bytes = env.encode().unwrap();
    assert_eq!(sealed_sender::SealedEnvelope::decode(&bytes), Ok(env));
    let env = sealed_sender::SealedEnvelope {
        recipient,
        payload: vec![1u8; sealed_sender::MAX_PAYLOAD_LEN + 1],
    };
    assert_eq!(env.encode(), Err(EncodeError::TooLong("sealed payload")));

    // A prekey message whose KEM ciphertext is not 1088 bytes would not decode.
    let mut rng = ChaCha20Rng::from_seed([77; 32]);
    let alice = Device::new(&mut rng, 1);
    let mut p = sotto_protocol::PreKeyMessage {
        signed_prekey_id: 1,
        one_time_prekey_id: None,
        kem_prekey_id: 2,
        identity: alice.identity.public(),
        base_key: [5; 32],
        kem_ciphertext: vec![0u8; 1088],
        message: at_max,
    };
    let bytes = p.encode().unwrap();
    assert_eq!(sotto_protocol::PreKeyMessage::decode(&bytes), Ok(p.clone()));
    for len in [0, 1087, 1089] {
        p.kem_ciphertext = vec![0u8; len];
        assert_eq!(p.encode(), Err(EncodeError::WrongLength("KEM ciphertext")));
    }

    // Ratchet associated data is bounded when the ratchet is built, so `to_bytes` cannot
    // produce a state that `from_bytes` rejects.
    let bob_pub = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([8; 32]));
    let ad = vec![4u8; MAX_AD_LEN];
    let dr = DoubleRatchet::init_alice(&mut rng, &[1; 32], bob_pub.as_bytes(), &ad).unwrap();
    let state = dr.to_bytes();
    assert_eq!(DoubleRatchet::from_bytes(&state).unwrap().to_bytes(), state);
    let ad = vec![4u8; MAX_AD_LEN + 1];
    assert_eq!(
        DoubleRatchet::init_alice(&mut rng, &[1; 32], bob_pub.as_bytes(), &ad).err(),
        Some(RatchetInitError::AssociatedDataTooLong)
    );
    assert_eq!(
        DoubleRatchet::init_bob(&[1; 32], &[8; 32], &ad).err(),
        Some(RatchetInitError::AssociatedDataTooLong)
    );
}

/// `to_bytes` allocates its buffer at the exact final size, so serializing never reallocates
/// (which would leave an unzeroized copy of the secrets in freed memory).
#[test]
fn session_serialization_never_reallocates() {
    let mut rng = rng(43);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 2);
    for use_one_time in [true, false] {
        let (mut a, mut b) = establish(&mut rng, &alice, &bob, use_one_time, b"hi");
        let exact = |s: &Session| {
            let bytes = s.to_bytes();
            assert_eq!(bytes.capacity(), bytes.len());
            assert_eq!(Session::from_bytes(&bytes).unwrap().to_bytes(), bytes);
        };
        // Alice has a pending prekey message, Bob the remote base key.
        exact(&a);
        exact(&b);
        // Skipped message keys on Bob's side.
        let msgs: Vec<_> = (0..5u8).map(|i| a.encrypt(&[i; 300]).unwrap()).collect();
        b.decrypt(&mut rng, &msgs[4]).unwrap();
        exact(&b);
        // Several DH ratchet steps: past remote keys on both sides, pending prekey cleared.
        for round in 0..4u8 {
            let r = b.encrypt(&[round; 10]).unwrap();
            a.decrypt(&mut rng, &r).unwrap();
            let m = a.encrypt(&[round; 1000]).unwrap();
            b.decrypt(&mut rng, &m).unwrap();
            exact(&a);
            exact(&b);
        }
    }
}

/// A session start without a one-time X25519 prekey leaves nothing to delete, so the
/// responder remembers its replay tag and refuses the same message again.
#[test]
fn prekey_message_without_one_time_key_cannot_be_replayed() {
    use sotto_protocol::PreKeyReplayTag;
    use std::cell::RefCell;
    use std::collections::HashSet;

    let mut rng = rng(40);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 1);
    let bundle = bob
        .upload()
        .bundle(None, None)
        .verify(&bob.identity.public())
        .unwrap();
    let seen: RefCell<HashSet<PreKeyReplayTag>> = RefCell::new(HashSet::new());
    let lookups = RefCell::new(0u32);
    let replay_seen = |t: &PreKeyReplayTag| {
        *lookups.borrow_mut() += 1;
        seen.borrow().contains(t)
    };
    let respond = |rng: &mut ChaCha20Rng, m: &sotto_protocol::PreKeyMessage| {
        let mut keys = bob.responder_keys(m);
        keys.replay_seen = &replay_seen;
        Session::respond(
            rng,
            &bob.identity,
            bob.address,
            alice.address,
            &alice.identity.public(),
            m,
            keys,
        )
    };

    let mut a = Session::initiate(&mut rng, &alice.identity, alice.address, &bundle).unwrap();
    let CiphertextMessage::PreKey(first) = a.encrypt(b"first").unwrap() else {
        panic!("expected a prekey message")
    };
    let tag = first.replay_tag().unwrap();
    assert_eq!(tag.signed_prekey_id, first.signed_prekey_id);
    let accepted = respond(&mut rng, &first).unwrap();
    assert_eq!(accepted.plaintext.as_slice(), b"first");
    assert_eq!(accepted.replay_tag, Some(tag));
    assert_eq!(*lookups.borrow(), 1);
    seen.borrow_mut().insert(tag);

    // The same message again (e.g. re-injected by the relay) is refused before key agreement.
    assert!(matches!(
        respond(&mut rng, &first),
        Err(RespondError::Replayed)
    ));
    // So is a later prekey message of the same session start (same base key): it belongs on
    // the existing session, never on a new one.
    let CiphertextMessage::PreKey(second) = a.encrypt(b"second").unwrap() else {
        panic!("expected a prekey message")
    };
    assert_eq!(second.replay_tag(), Some(tag));
    assert!(matches!(
        respond(&mut rng, &second),
        Err(RespondError::Replayed)
    ));
    let mut b = accepted.session;
    let inner = CiphertextMessage::PreKey(second);
    assert_eq!(b.decrypt(&mut rng, &inner).unwrap().as_slice(), b"second");

    // The same base key written another way (X25519 ignores the top bit, so the key
    // agreement would still succeed) does not decode, so it cannot dodge the replay tag.
    let mut bytes = first.encode().unwrap();
    let base_key_at = 1 + 4 + 1 + 4 + 33;
    assert_eq!(&bytes[base_key_at..base_key_at + 32], &first.base_key);
    bytes[base_key_at + 31] |= 0x80;
    assert_eq!(
        sotto_protocol::PreKeyMessage::decode(&bytes),
        Err(DecodeError::Invalid("base key"))
    );

    // A fresh session start from the same sender (new base key) is accepted.
    let mut a2 = Session::initiate(&mut rng, &alice.identity, alice.address, &bundle).unwrap();
    let CiphertextMessage::PreKey(fresh) = a2.encrypt(b"again").unwrap() else {
        panic!("expected a prekey message")
    };
    let fresh_tag = fresh.replay_tag().unwrap();
    assert_ne!(fresh_tag, tag);
    let accepted = respond(&mut rng, &fresh).unwrap();
    assert_eq!(accepted.replay_tag, Some(fresh_tag));

    // With a one-time prekey there is no tag and the callback is not consulted.
    let upload = bob.upload();
    let with_otk = upload
        .bundle(upload.one_time_prekeys.first().cloned(), None)
        .verify(&bob.identity.public())
        .unwrap();
    let mut a3 = Session::initiate(&mut rng, &alice.identity, alice.address, &with_otk).unwrap();
    let CiphertextMessage::PreKey(m) = a3.encrypt(b"otk").unwrap() else {
        panic!("expected a prekey message")
    };
    assert_eq!(m.replay_tag(), None);
    let before = *lookups.borrow();
    let accepted = respond(&mut rng, &m).unwrap();
    assert_eq!(accepted.replay_tag, None);
    assert_eq!(*lookups.borrow(), before);

    // Storage encoding: 36 bytes, strict.
    let enc = tag.encode();
    assert_eq!(enc.len(), PreKeyReplayTag::ENCODED_LEN);
    assert_eq!(&enc[..4], &tag.signed_prekey_id.to_be_bytes());
    assert_eq!(PreKeyReplayTag::decode(&enc), Ok(tag));
    assert_eq!(
        PreKeyReplayTag::decode(&enc[..35]),
        Err(DecodeError::Truncated)
    );
    let mut long = enc.to_vec();
    long.push(0);
    assert_eq!(
        PreKeyReplayTag::decode(&long),
        Err(DecodeError::TrailingBytes)
    );
}
