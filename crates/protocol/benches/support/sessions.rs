//! Established sessions for the benchmarks and the profiling example: a Sotto pair after
//! PQXDH and one reply, and the same for vodozemac (Olm).
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use sotto_protocol::{
    Address, CiphertextMessage, IdentityKeyPair, KemPreKeyKind, KemPreKeySecret,
    OneTimePreKeySecret, PreKeyUpload, ResponderPreKeys, Session, SignedPreKeySecret,
    VerifiedBundle,
};
use vodozemac::olm::{Account, OlmMessage, Session as OlmSession, SessionConfig};

pub struct Bob {
    pub identity: IdentityKeyPair,
    pub address: Address,
    pub spk: SignedPreKeySecret,
    pub otk: OneTimePreKeySecret,
    pub kem: KemPreKeySecret,
    pub bundle: VerifiedBundle,
}

pub fn bob(rng: &mut ChaCha20Rng) -> Bob {
    let identity = IdentityKeyPair::generate(rng);
    let address = Address::new(identity.public().account_id().0, 1);
    let spk = SignedPreKeySecret::generate(rng, &identity, 1);
    let otk = OneTimePreKeySecret::generate(rng, 2);
    let kem = KemPreKeySecret::generate(rng, &identity, 3, KemPreKeyKind::OneTime);
    let upload = PreKeyUpload {
        address,
        identity: identity.public(),
        signed_prekey: spk.public(),
        last_resort_kem_prekey: KemPreKeySecret::generate(
            rng,
            &identity,
            4,
            KemPreKeyKind::LastResort,
        )
        .public(),
        one_time_prekeys: vec![otk.public()],
        one_time_kem_prekeys: vec![kem.public()],
    };
    let bundle = upload
        .bundle(Some(otk.public()), Some(kem.public()))
        .verify(&identity.public())
        .unwrap();
    Bob {
        identity,
        address,
        spk,
        otk,
        kem,
        bundle,
    }
}

/// Alice (initiator) and Bob after the prekey message and one reply: both can send.
pub fn established(rng: &mut ChaCha20Rng) -> (Session, Session, IdentityKeyPair, Bob) {
    let alice = IdentityKeyPair::generate(rng);
    let alice_address = Address::new(alice.public().account_id().0, 1);
    let b = bob(rng);
    let mut a = Session::initiate(rng, &alice, alice_address, &b.bundle).unwrap();
    let CiphertextMessage::PreKey(m) = a.encrypt(b"hi").unwrap() else {
        panic!()
    };
    let keys = ResponderPreKeys {
        signed_prekey: &b.spk,
        one_time_prekey: Some(&b.otk),
        kem_prekey: &b.kem,
        replay_seen: &|_| false,
    };
    let mut s = Session::respond(
        rng,
        &b.identity,
        b.address,
        alice_address,
        &alice.public(),
        &m,
        keys,
    )
    .unwrap()
    .session;
    let reply = s.encrypt(b"r").unwrap();
    a.decrypt(rng, &reply).unwrap();
    (a, s, alice, b)
}

/// The Olm counterpart of [`established`]: outbound and inbound session after one reply.
pub fn olm_established() -> (OlmSession, OlmSession) {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(m) = a.encrypt(b"hi").unwrap() else {
        panic!("the first Olm message is a prekey message")
    };
    let mut b = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &m)
        .unwrap()
        .session;
    let reply = b.encrypt(b"r").unwrap();
    a.decrypt(&reply).unwrap();
    (a, b)
}
