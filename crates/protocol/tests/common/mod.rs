//! Shared fixtures for the integration tests: devices with published prekeys, and a helper
//! that runs a full session start through sealed sender.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sotto_protocol::sealed_sender;
use sotto_protocol::{
    Address, CiphertextMessage, IdentityKeyPair, KemPreKeyKind, KemPreKeySecret,
    OneTimePreKeySecret, PreKeyUpload, Responded, ResponderPreKeys, Session, SignedPreKeySecret,
};

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// A device with its secrets, as the client's store would hold them.
pub struct Device {
    pub identity: IdentityKeyPair,
    pub address: Address,
    pub signed_prekey: SignedPreKeySecret,
    pub last_resort: KemPreKeySecret,
    pub one_time: Vec<OneTimePreKeySecret>,
    pub one_time_kem: Vec<KemPreKeySecret>,
}

impl Device {
    pub fn new(rng: &mut ChaCha20Rng, device: u32) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let address = Address::new(identity.public().account_id().0, device);
        let signed_prekey = SignedPreKeySecret::generate(rng, &identity, 1);
        let last_resort = KemPreKeySecret::generate(rng, &identity, 1, KemPreKeyKind::LastResort);
        let one_time = OneTimePreKeySecret::generate_batch(rng, 100, 2);
        let one_time_kem = (0..2)
            .map(|i| KemPreKeySecret::generate(rng, &identity, 200 + i, KemPreKeyKind::OneTime))
            .collect();
        Self {
            identity,
            address,
            signed_prekey,
            last_resort,
            one_time,
            one_time_kem,
        }
    }

    pub fn upload(&self) -> PreKeyUpload {
        PreKeyUpload {
            address: self.address,
            identity: self.identity.public(),
            signed_prekey: self.signed_prekey.public(),
            last_resort_kem_prekey: self.last_resort.public(),
            one_time_prekeys: self
                .one_time
                .iter()
                .map(OneTimePreKeySecret::public)
                .collect(),
            one_time_kem_prekeys: self
                .one_time_kem
                .iter()
                .map(KemPreKeySecret::public)
                .collect(),
        }
    }

    /// Looks up the secrets a prekey message names, as the store would.
    pub fn responder_keys(&self, msg: &sotto_protocol::PreKeyMessage) -> ResponderPreKeys<'_> {
        ResponderPreKeys {
            signed_prekey: &self.signed_prekey,
            one_time_prekey: msg
                .one_time_prekey_id
                .and_then(|id| self.one_time.iter().find(|k| k.id() == id)),
            kem_prekey: self
                .one_time_kem
                .iter()
                .find(|k| k.id() == msg.kem_prekey_id)
                .unwrap_or(&self.last_resort),
            replay_seen: &|_| false,
        }
    }
}

/// Alice starts a session with Bob (using one-time keys when `use_one_time`), sends `first`
/// through sealed sender; Bob opens and responds. Returns both sessions.
pub fn establish(
    rng: &mut ChaCha20Rng,
    alice: &Device,
    bob: &Device,
    use_one_time: bool,
    first: &[u8],
) -> (Session, Session) {
    let upload = bob.upload();
    upload.verify().unwrap();
    let bundle = if use_one_time {
        upload.bundle(
            upload.one_time_prekeys.first().cloned(),
            upload.one_time_kem_prekeys.first().cloned(),
        )
    } else {
        upload.bundle(None, None)
    };
    let verified = bundle.verify(&bob.identity.public()).unwrap();
    let mut a = Session::initiate(rng, &alice.identity, alice.address, &verified).unwrap();
    let msg = a.encrypt(first).unwrap();
    let envelope = sealed_sender::seal(
        rng,
        &alice.identity,
        alice.address,
        &bob.identity.public(),
        bob.address,
        &msg,
    )
    .unwrap();
    let opened = sealed_sender::open(&bob.identity, bob.address, &envelope).unwrap();
    assert_eq!(opened.sender_identity, alice.identity.public());
    assert_eq!(opened.sender_address, alice.address);
    let CiphertextMessage::PreKey(pkm) = opened.message else {
        panic!("expected prekey message")
    };
    let Responded {
        session: b,
        plaintext,
        ..
    } = Session::respond(
        rng,
        &bob.identity,
        bob.address,
        opened.sender_address,
        &opened.sender_identity,
        &pkm,
        bob.responder_keys(&pkm),
    )
    .unwrap();
    assert_eq!(plaintext.as_slice(), first);
    (a, b)
}
