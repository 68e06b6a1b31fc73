//! Known-answer vectors generated from a seeded ChaCha20 RNG and committed under
//! `test-vectors/`. This test regenerates them and compares byte for byte; run with
//! `SOTTO_REGENERATE_VECTORS=1` to rewrite the files after an intentional format change.

// Integration-test helpers outside #[test] fns are test code too; clippy.toml only covers the latter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{Device, rng};
use serde_json::{Value, json};
use sotto_protocol::qr::ContactInvite;
use sotto_protocol::safety::{ScannableFingerprint, safety_number};
use sotto_protocol::{CiphertextMessage, Responded, Session, sealed_sender};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

fn check_or_write(name: &str, value: &Value) {
    let path = vectors_dir().join(name);
    let rendered = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var("SOTTO_REGENERATE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with SOTTO_REGENERATE_VECTORS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        committed, rendered,
        "{name} differs from the regenerated vector"
    );
}

fn h(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[test]
fn session_vector() {
    let mut rng = rng(0x5a);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 7);
    let upload = bob.upload();
    let bundle = upload.bundle(
        upload.one_time_prekeys.first().cloned(),
        upload.one_time_kem_prekeys.first().cloned(),
    );
    let verified = bundle.verify(&bob.identity.public()).unwrap();
    let mut a = Session::initiate(&mut rng, &alice.identity, alice.address, &verified).unwrap();
    let first = a.encrypt(b"Hello Bob").unwrap();
    let envelope = sealed_sender::seal(
        &mut rng,
        &alice.identity,
        alice.address,
        &bob.identity.public(),
        bob.address,
        &first,
    )
    .unwrap();

    let opened = sealed_sender::open(&bob.identity, bob.address, &envelope).unwrap();
    let CiphertextMessage::PreKey(pkm) = &opened.message else {
        panic!("expected prekey")
    };
    let Responded {
        session: mut b,
        plaintext: pt,
        ..
    } = Session::respond(
        &mut rng,
        &bob.identity,
        bob.address,
        opened.sender_address,
        &opened.sender_identity,
        pkm,
        bob.responder_keys(pkm),
    )
    .unwrap();
    assert_eq!(pt.as_slice(), b"Hello Bob");
    let reply = b.encrypt(b"Hello Alice").unwrap();
    assert_eq!(
        a.decrypt(&mut rng, &reply).unwrap().as_slice(),
        b"Hello Alice"
    );

    let value = json!({
        "description": "PQXDH + Double Ratchet + sealed sender, generated with ChaCha20Rng::from_seed([0x5a; 32]) in crates/protocol/tests/vectors.rs. Secrets are in storage encodings (docs/PROTOCOL.md).",
        "alice": {
            "address": h(&alice.address.encode()),
            "identity_key_pair": h(alice.identity.to_bytes().as_slice()),
            "identity_public": h(&alice.identity.public().encode()),
        },
        "bob": {
            "address": h(&bob.address.encode()),
            "identity_key_pair": h(bob.identity.to_bytes().as_slice()),
            "identity_public": h(&bob.identity.public().encode()),
            "signed_prekey_secret": h(&bob.signed_prekey.to_bytes()),
            "one_time_prekey_secret": h(&bob.one_time[0].to_bytes()),
            "kem_prekey_secret": h(&bob.one_time_kem[0].to_bytes()),
            "prekey_upload": h(&upload.encode().unwrap()),
        },
        "bundle": h(&bundle.encode()),
        "first_plaintext": h(b"Hello Bob"),
        "first_message": h(&first.encode().unwrap()),
        "sealed_envelope": h(&envelope.encode().unwrap()),
        "reply_plaintext": h(b"Hello Alice"),
        "reply_message": h(&reply.encode().unwrap()),
        "alice_session_after_reply": h(&a.to_bytes()),
        "bob_session_after_reply": h(&b.to_bytes()),
    });
    check_or_write("session.json", &value);
}

#[test]
fn safety_and_qr_vector() {
    let mut rng = rng(0x5b);
    let alice = Device::new(&mut rng, 1);
    let bob = Device::new(&mut rng, 1);
    let (ak, bk) = (
        alice.identity.public().encode(),
        bob.identity.public().encode(),
    );
    let (aid, bid) = (alice.address.account.0, bob.address.account.0);
    let number = safety_number(&aid, &ak, &bid, &bk);
    assert_eq!(number, safety_number(&bid, &bk, &aid, &ak));
    let scan_a = ScannableFingerprint::new(&aid, &ak, &bid, &bk);
    let invite =
        ContactInvite::new("relay.sotto.example:443", "alice", alice.identity.public()).unwrap();
    let value = json!({
        "description": "Safety number fed with account ids and Sotto identity encodings; scannable payload from Alice's side; a contact invite. Seed [0x5b; 32].",
        "alice_account_id": h(&aid),
        "alice_identity_public": h(&ak),
        "bob_account_id": h(&bid),
        "bob_identity_public": h(&bk),
        "safety_number": number,
        "alice_scannable": h(&scan_a.encode()),
        "invite": {
            "relay": invite.relay(),
            "username": invite.username(),
            "identity_public": h(&ak),
            "encoded": h(&invite.encode()),
        },
    });
    check_or_write("safety_qr.json", &value);
}

#[test]
fn committed_session_vector_opens_from_stored_secrets_alone() {
    use sotto_protocol::sealed_sender::SealedEnvelope;
    use sotto_protocol::{
        IdentityKeyPair, KemPreKeySecret, OneTimePreKeySecret, ResponderPreKeys, SignedPreKeySecret,
    };
    let text = std::fs::read_to_string(vectors_dir().join("session.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let bytes = |p: &str| hex::decode(v.pointer(p).unwrap().as_str().unwrap()).unwrap();

    let bob = IdentityKeyPair::from_bytes(&bytes("/bob/identity_key_pair")).unwrap();
    let bob_address = sotto_protocol::Address::decode(&bytes("/bob/address")).unwrap();
    let spk = SignedPreKeySecret::from_bytes(&bytes("/bob/signed_prekey_secret")).unwrap();
    let otk = OneTimePreKeySecret::from_bytes(&bytes("/bob/one_time_prekey_secret")).unwrap();
    let kem = KemPreKeySecret::from_bytes(&bytes("/bob/kem_prekey_secret")).unwrap();
    let envelope = SealedEnvelope::decode(&bytes("/sealed_envelope")).unwrap();
    let opened = sealed_sender::open(&bob, bob_address, &envelope).unwrap();
    assert_eq!(
        opened.sender_identity.encode().to_vec(),
        bytes("/alice/identity_public")
    );
    assert_eq!(opened.message.encode().unwrap(), bytes("/first_message"));
    let CiphertextMessage::PreKey(pkm) = &opened.message else {
        panic!("expected prekey")
    };
    let keys = ResponderPreKeys {
        signed_prekey: &spk,
        one_time_prekey: Some(&otk),
        kem_prekey: &kem,
        replay_seen: &|_| false,
    };
    let mut rng = rng(0);
    let Responded { plaintext: pt, .. } = Session::respond(
        &mut rng,
        &bob,
        bob_address,
        opened.sender_address,
        &opened.sender_identity,
        pkm,
        keys,
    )
    .unwrap();
    assert_eq!(pt.to_vec(), bytes("/first_plaintext"));
    // The stored sessions decode and re-encode byte-exactly.
    for p in ["/alice_session_after_reply", "/bob_session_after_reply"] {
        assert_eq!(
            Session::from_bytes(&bytes(p)).unwrap().to_bytes().to_vec(),
            bytes(p)
        );
    }
}
