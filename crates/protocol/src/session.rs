//! A pairwise session between two devices: PQXDH start plus the Double Ratchet, with padding
//! applied to every plaintext. This is the type the client stores and drives.

use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use x25519_dalek::PublicKey as X25519Public;
use zeroize::Zeroizing;

use crate::address::Address;
use crate::bundle::VerifiedBundle;
use crate::identity::{IdentityKeyPair, IdentityPublicKey};
use crate::kem::{self, KEM_CIPHERTEXT_LEN};
use crate::padding::{self, PlaintextTooLarge, UnpadError};
use crate::pqxdh::{self, PreKeyMessage, PreKeyReplayTag};
use crate::prekeys::{KemPreKeySecret, OneTimePreKeySecret, PreKeyId, SignedPreKeySecret};
use crate::primitives;
use crate::ratchet::{DoubleRatchet, RatchetDecryptError, RatchetEncryptError, RatchetMessage};
use crate::wire::{DecodeError, EncodeError, Reader, Writer};

const SESSION_VERSION: u8 = 0x01;
const TYPE_PREKEY: u8 = 0x01;
const TYPE_RATCHET: u8 = 0x02;

/// Why a session could not be started from a bundle.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum InitiateError {
    /// A DH with the bundle's keys was all zeros.
    #[error("a Diffie-Hellman output was non-contributory")]
    NonContributory,
    /// The bundle's ML-KEM key is malformed.
    #[error("invalid KEM prekey")]
    InvalidKemKey,
}

/// Why an incoming prekey message could not start a session.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RespondError {
    /// The supplied prekey secrets do not have the ids the message names.
    #[error("prekey ids do not match the message")]
    PreKeyMismatch,
    /// The message used a one-time prekey but none was supplied (or vice versa).
    #[error("one-time prekey presence does not match the message")]
    OneTimePreKeyMismatch,
    /// A DH output was all zeros.
    #[error("a Diffie-Hellman output was non-contributory")]
    NonContributory,
    /// The KEM ciphertext does not have the ML-KEM-768 ciphertext length.
    #[error("malformed KEM ciphertext")]
    MalformedKemCiphertext,
    /// The message's identity key differs from the sender identity authenticated by sealed
    /// sender.
    #[error("prekey message identity does not match the authenticated sender")]
    IdentityMismatch,
    /// The embedded first message did not decrypt (wrong keys, tampering) or was malformed.
    #[error("first message failed to decrypt: {0}")]
    Decrypt(#[from] DecryptError),
    /// The message named no one-time X25519 prekey and its [`PreKeyReplayTag`] is one the
    /// caller has already recorded: a replay of a session start that was accepted before.
    #[error("prekey message replayed")]
    Replayed,
}

/// Why encryption failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum EncryptError {
    /// The plaintext exceeds [`padding::MAX_PLAINTEXT`].
    #[error("plaintext too large")]
    TooLarge,
    /// The ratchet refused (no sending chain, or chain exhausted).
    #[error("ratchet: {0}")]
    Ratchet(#[from] RatchetEncryptError),
}

impl From<PlaintextTooLarge> for EncryptError {
    fn from(_: PlaintextTooLarge) -> Self {
        Self::TooLarge
    }
}

/// Why decryption failed. The session is unchanged after every one of these.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DecryptError {
    /// The ratchet rejected the message.
    #[error("ratchet: {0}")]
    Ratchet(#[from] RatchetDecryptError),
    /// The plaintext was authentic but not validly padded.
    #[error("padding: {0}")]
    Padding(#[from] UnpadError),
    /// A prekey message that belongs to a different session (other base key or identity).
    #[error("prekey message does not belong to this session")]
    WrongSession,
}

/// What travels inside a sealed-sender envelope: a session-starting or a normal message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiphertextMessage {
    /// Sent by the initiator until its first reply arrives.
    PreKey(Box<PreKeyMessage>),
    /// Every other message.
    Ratchet(RatchetMessage),
}

impl CiphertextMessage {
    /// `type (0x01 prekey | 0x02 ratchet) || body`. Fails if the body does not encode
    /// ([`PreKeyMessage::encode`], [`RatchetMessage::encode`]).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let (ty, body) = match self {
            Self::PreKey(m) => (TYPE_PREKEY, m.encode()?),
            Self::Ratchet(m) => (TYPE_RATCHET, m.encode()?),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(ty);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes either kind.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let m = match r.u8()? {
            TYPE_PREKEY => Self::PreKey(Box::new(PreKeyMessage::read(&mut r)?)),
            TYPE_RATCHET => Self::Ratchet(RatchetMessage::read(&mut r)?),
            other => return Err(DecodeError::UnknownVersion(other)),
        };
        r.finish()?;
        Ok(m)
    }
}

/// The responder's secrets named by a [`PreKeyMessage`], and what it remembers of earlier
/// session starts; the store looks them up by id.
pub struct ResponderPreKeys<'a> {
    /// Secret for `signed_prekey_id`.
    pub signed_prekey: &'a SignedPreKeySecret,
    /// Secret for `one_time_prekey_id`, if the message names one. Delete it after success.
    pub one_time_prekey: Option<&'a OneTimePreKeySecret>,
    /// Secret for `kem_prekey_id`. Delete it after success unless it is the last-resort key.
    pub kem_prekey: &'a KemPreKeySecret,
    /// Whether a replay tag has been recorded already (from [`Responded::replay_tag`] of an
    /// earlier success, kept while its signed prekey is kept). Called at most once, only for a
    /// message without a one-time X25519 prekey.
    pub replay_seen: &'a dyn Fn(&PreKeyReplayTag) -> bool,
}

/// A session accepted by [`Session::respond`].
#[must_use = "the session, plaintext and replay tag must be stored"]
pub struct Responded {
    /// The new session.
    pub session: Session,
    /// The first message's plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Record this (in the same transaction that stores the session) and report it as seen
    /// through [`ResponderPreKeys::replay_seen`] for as long as signed prekey
    /// `replay_tag.signed_prekey_id` is kept. `None` when the message used a one-time X25519
    /// prekey, whose deletion stops replays instead.
    pub replay_tag: Option<PreKeyReplayTag>,
}

#[derive(Clone, PartialEq, Eq)]
struct PendingPreKey {
    signed_prekey_id: PreKeyId,
    one_time_prekey_id: Option<PreKeyId>,
    kem_prekey_id: PreKeyId,
    base_key: [u8; 32],
    kem_ciphertext: Box<[u8; KEM_CIPHERTEXT_LEN]>,
}

/// A session with one remote device. Holds secrets: no `Debug`.
#[derive(Clone)]
pub struct Session {
    local_address: Address,
    remote_address: Address,
    local_identity: IdentityPublicKey,
    remote_identity: IdentityPublicKey,
    ratchet: DoubleRatchet,
    pending_prekey: Option<PendingPreKey>,
    remote_base_key: Option<[u8; 32]>,
}

impl Session {
    /// Starts a session (PQXDH initiator) from a verified bundle. Messages encrypted on the
    /// returned session are [`CiphertextMessage::PreKey`] until a reply is decrypted.
    pub fn initiate<R: CryptoRng + RngCore>(
        rng: &mut R,
        local_identity: &IdentityKeyPair,
        local_address: Address,
        bundle: &VerifiedBundle,
    ) -> Result<Self, InitiateError> {
        let b = bundle.bundle();
        let ephemeral = pqxdh::ephemeral(rng);
        let base_key = X25519Public::from(&ephemeral).to_bytes();
        let (kem_ciphertext, kem_secret) =
            kem::encapsulate(rng, &b.kem_prekey.key).map_err(|_| InitiateError::InvalidKemKey)?;
        let sk = pqxdh::initiator_secret(
            &local_identity.x25519_secret(),
            &ephemeral,
            &b.identity,
            &b.signed_prekey.key,
            b.one_time_prekey.as_ref().map(|k| &k.key),
            &kem_secret,
        )
        .map_err(|_| InitiateError::NonContributory)?;
        let ad = pqxdh::session_ad(&local_identity.public(), &b.identity);
        let ratchet = DoubleRatchet::alice(rng, &sk, &b.signed_prekey.key, ad)
            .map_err(|_| InitiateError::NonContributory)?;
        Ok(Self {
            local_address,
            remote_address: b.address,
            local_identity: local_identity.public(),
            remote_identity: b.identity,
            ratchet,
            pending_prekey: Some(PendingPreKey {
                signed_prekey_id: b.signed_prekey.id,
                one_time_prekey_id: b.one_time_prekey.as_ref().map(|k| k.id),
                kem_prekey_id: b.kem_prekey.id,
                base_key,
                kem_ciphertext: Box::new(kem_ciphertext),
            }),
            remote_base_key: None,
        })
    }

    /// Accepts a session (PQXDH responder) from an incoming prekey message, returning the
    /// session, the first plaintext and the replay tag to record. `remote_address` and
    /// `remote_identity` are the sender's address and identity key as authenticated by sealed
    /// sender ([`crate::OpenedEnvelope`]); a message whose `identity` differs is rejected with
    /// [`RespondError::IdentityMismatch`]. A message without a one-time X25519 prekey whose
    /// replay tag `keys.replay_seen` reports is rejected with [`RespondError::Replayed`].
    pub fn respond<R: CryptoRng + RngCore>(
        rng: &mut R,
        local_identity: &IdentityKeyPair,
        local_address: Address,
        remote_address: Address,
        remote_identity: &IdentityPublicKey,
        message: &PreKeyMessage,
        keys: ResponderPreKeys<'_>,
    ) -> Result<Responded, RespondError> {
        if message.identity != *remote_identity {
            return Err(RespondError::IdentityMismatch);
        }
        if keys.signed_prekey.id() != message.signed_prekey_id
            || keys.kem_prekey.id() != message.kem_prekey_id
        {
            return Err(RespondError::PreKeyMismatch);
        }
        let one_time = match (message.one_time_prekey_id, keys.one_time_prekey) {
            (Some(id), Some(k)) if k.id() == id => Some(k.secret()),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(RespondError::PreKeyMismatch),
            _ => return Err(RespondError::OneTimePreKeyMismatch),
        };
        let replay_tag = message.replay_tag();
        if replay_tag.as_ref().is_some_and(|t| (keys.replay_seen)(t)) {
            return Err(RespondError::Replayed);
        }
        let ct: [u8; KEM_CIPHERTEXT_LEN] = message
            .kem_ciphertext
            .as_slice()
            .try_into()
            .map_err(|_| RespondError::MalformedKemCiphertext)?;
        let kem_secret = keys.kem_prekey.secret().decapsulate(&ct);
        let sk = pqxdh::responder_secret(
            &local_identity.x25519_secret(),
            keys.signed_prekey.secret(),
            one_time,
            &message.identity,
            &message.base_key,
            &kem_secret,
        )
        .map_err(|_| RespondError::NonContributory)?;
        let ad = pqxdh::session_ad(&message.identity, &local_identity.public());
        let spk_secret = Zeroizing::new(keys.signed_prekey.secret().to_bytes());
        let mut session = Self {
            local_address,
            remote_address,
            local_identity: local_identity.public(),
            remote_identity: message.identity,
            ratchet: DoubleRatchet::bob(&sk, &spk_secret, ad),
            pending_prekey: None,
            remote_base_key: Some(message.base_key),
        };
        let plaintext = session.decrypt_ratchet(rng, &message.message)?;
        Ok(Responded {
            session,
            plaintext,
            replay_tag,
        })
    }

    /// Pads and encrypts one plaintext.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<CiphertextMessage, EncryptError> {
        let padded = padding::pad_with_spare(plaintext, primitives::AEAD_TAG_LEN)?;
        let message = self.ratchet.encrypt_buffer(padded)?;
        Ok(match &self.pending_prekey {
            Some(p) => CiphertextMessage::PreKey(Box::new(PreKeyMessage {
                signed_prekey_id: p.signed_prekey_id,
                one_time_prekey_id: p.one_time_prekey_id,
                kem_prekey_id: p.kem_prekey_id,
                identity: self.local_identity,
                base_key: p.base_key,
                kem_ciphertext: p.kem_ciphertext.to_vec(),
                message,
            })),
            None => CiphertextMessage::Ratchet(message),
        })
    }

    /// Decrypts a message on this session. A prekey message is accepted only if it is a
    /// retransmission of the one that created this session (same base key and identity);
    /// otherwise the caller should try [`Session::respond`].
    pub fn decrypt<R: CryptoRng + RngCore>(
        &mut self,
        rng: &mut R,
        message: &CiphertextMessage,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let inner = match message {
            CiphertextMessage::Ratchet(m) => m,
            CiphertextMessage::PreKey(p) => {
                if self.remote_base_key != Some(p.base_key) || p.identity != self.remote_identity {
                    return Err(DecryptError::WrongSession);
                }
                &p.message
            }
        };
        self.decrypt_ratchet(rng, inner)
    }

    fn decrypt_ratchet<R: CryptoRng + RngCore>(
        &mut self,
        rng: &mut R,
        message: &RatchetMessage,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        // Commit only once the padding also checks out, so that a padding failure after a
        // successful AEAD open leaves the session untouched too.
        let (padded, update) = self.ratchet.decrypt_staged(rng, message)?;
        let plaintext = padding::unpad_in_place(padded)?;
        self.ratchet.commit(update);
        self.pending_prekey = None;
        Ok(plaintext)
    }

    /// Our device address.
    pub fn local_address(&self) -> Address {
        self.local_address
    }

    /// The peer's device address.
    pub fn remote_address(&self) -> Address {
        self.remote_address
    }

    /// The peer's identity key (feed it to safety numbers).
    pub fn remote_identity(&self) -> IdentityPublicKey {
        self.remote_identity
    }

    /// True until the initiator has received a reply.
    pub fn is_awaiting_reply(&self) -> bool {
        self.pending_prekey.is_some()
    }

    /// The base key of the prekey message that created this session (responder side).
    pub fn remote_base_key(&self) -> Option<[u8; 32]> {
        self.remote_base_key
    }

    /// Exact length of [`to_bytes`](Self::to_bytes)'s output: the buffer is allocated once
    /// and never reallocates, so no unzeroized copy of the secrets is left behind.
    fn encoded_len(&self) -> usize {
        let pending = match &self.pending_prekey {
            Some(p) => {
                1 + 4
                    + if p.one_time_prekey_id.is_some() {
                        1 + 4
                    } else {
                        1
                    }
                    + 4
                    + p.base_key.len()
                    + p.kem_ciphertext.len()
            }
            None => 1,
        };
        let remote_base_key = if self.remote_base_key.is_some() {
            1 + 32
        } else {
            1
        };
        1 + 2 * Address::ENCODED_LEN
            + 2 * IdentityPublicKey::ENCODED_LEN
            + pending
            + remote_base_key
            + self.ratchet.encoded_len()
    }

    /// Versioned storage encoding (see docs/PROTOCOL.md, "Session state").
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(self.encoded_len());
        w.u8(SESSION_VERSION);
        self.local_address.write(&mut w);
        self.remote_address.write(&mut w);
        self.local_identity.write(&mut w);
        self.remote_identity.write(&mut w);
        match &self.pending_prekey {
            Some(p) => {
                w.u8(1).u32(p.signed_prekey_id);
                match p.one_time_prekey_id {
                    Some(id) => w.u8(1).u32(id),
                    None => w.u8(0),
                };
                w.u32(p.kem_prekey_id)
                    .bytes(&p.base_key)
                    .bytes(&p.kem_ciphertext[..]);
            }
            None => {
                w.u8(0);
            }
        }
        match &self.remote_base_key {
            Some(k) => w.u8(1).bytes(k),
            None => w.u8(0),
        };
        self.ratchet.write(&mut w);
        w.into_zeroizing()
    }

    /// Restores from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version(SESSION_VERSION)?;
        let local_address = Address::read(&mut r)?;
        let remote_address = Address::read(&mut r)?;
        let local_identity = IdentityPublicKey::read(&mut r)?;
        let remote_identity = IdentityPublicKey::read(&mut r)?;
        let pending_prekey = if r.flag()? {
            let signed_prekey_id = r.u32()?;
            let one_time_prekey_id = if r.flag()? { Some(r.u32()?) } else { None };
            Some(PendingPreKey {
                signed_prekey_id,
                one_time_prekey_id,
                kem_prekey_id: r.u32()?,
                base_key: r.array()?,
                kem_ciphertext: Box::new(r.array()?),
            })
        } else {
            None
        };
        let remote_base_key = if r.flag()? { Some(r.array()?) } else { None };
        let ratchet = DoubleRatchet::read(&mut r)?;
        r.finish()?;
        Ok(Self {
            local_address,
            remote_address,
            local_identity,
            remote_identity,
            ratchet,
            pending_prekey,
            remote_base_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use x25519_dalek::StaticSecret;

    /// A session pair straight from the ratchet initialisations (no PQXDH), so a test can
    /// reach the unpadded ratchet underneath.
    fn pair(rng: &mut ChaCha20Rng) -> (Session, Session) {
        let (ia, ib) = (
            IdentityKeyPair::generate(rng).public(),
            IdentityKeyPair::generate(rng).public(),
        );
        let (aa, ab) = (Address::new([1; 32], 1), Address::new([2; 32], 1));
        let bob_secret = [7u8; 32];
        let bob_public = X25519Public::from(&StaticSecret::from(bob_secret)).to_bytes();
        let session =
            |local_address, remote_address, local_identity, remote_identity, ratchet| Session {
                local_address,
                remote_address,
                local_identity,
                remote_identity,
                ratchet,
                pending_prekey: None,
                remote_base_key: None,
            };
        let alice =
            DoubleRatchet::alice(rng, &[42; 32], &bob_public, pqxdh::session_ad(&ia, &ib)).unwrap();
        let bob = DoubleRatchet::bob(&[42; 32], &bob_secret, pqxdh::session_ad(&ia, &ib));
        (session(aa, ab, ia, ib, alice), session(ab, aa, ib, ia, bob))
    }

    #[test]
    fn authentic_but_badly_padded_message_leaves_session_unchanged() {
        let mut rng = ChaCha20Rng::from_seed([20; 32]);
        let (mut a, mut b) = pair(&mut rng);
        // Once with a DH ratchet step (b's first message), once within the chain.
        for _ in 0..2 {
            let bad = CiphertextMessage::Ratchet(a.ratchet.encrypt(b"not padded").unwrap());
            let good = a.encrypt(b"padded").unwrap();
            let before = b.to_bytes();
            assert_eq!(
                b.decrypt(&mut rng, &bad).err(),
                Some(DecryptError::Padding(UnpadError::NotABucket))
            );
            assert_eq!(b.to_bytes(), before);
            assert_eq!(b.decrypt(&mut rng, &good).unwrap().as_slice(), b"padded");
        }
    }
}
