//! The Double Ratchet (Signal spec, revision 4) with the §5.2 recommended algorithms:
//!
//! * `KDF_RK(rk, dh)` = HKDF-SHA256(salt = rk, ikm = dh, info = [`ROOT_INFO`], 64 bytes) →
//!   (new root key, chain key).
//! * `KDF_CK(ck)` = (HMAC-SHA256(ck, 0x01) → message key, HMAC-SHA256(ck, 0x02) → next ck).
//! * `ENCRYPT(mk, pt, ad)` = ChaCha20-Poly1305 with (key, nonce) = HKDF-SHA256(salt = 32 zero
//!   bytes, ikm = mk, info = [`MESSAGE_KEY_INFO`], 44 bytes).
//! * AD = session AD || encoded header.
//!
//! Decryption derives the new chain keys into locals and commits them only on success
//! ([`DoubleRatchet::decrypt`]; `Session` commits only after the padding also checks out), so
//! a forged, replayed or corrupted message leaves the session exactly as it was.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::padding::MAX_BUCKET;
use crate::primitives::{
    self, hkdf_sha256, hkdf_sha256_zero_salt, hmac_sha256_pair, split_key_nonce,
};
use crate::wire::{Bounded16, DecodeError, EncodeError, Reader, Writer};

/// HKDF info for the root chain.
pub const ROOT_INFO: &[u8] = b"Sotto_DoubleRatchet_Root_v1";
/// HKDF info for expanding a message key into an AEAD key and nonce.
pub const MESSAGE_KEY_INFO: &[u8] = b"Sotto_DoubleRatchet_MessageKeys_v1";
/// Most message keys that may be skipped in one chain by one incoming message.
pub const MAX_SKIP: u32 = 1000;
/// Most skipped message keys kept in total; the oldest are evicted first.
pub const MAX_STORED_SKIPPED_KEYS: usize = 2000;
/// How many previous remote ratchet keys are remembered to recognise replays from old chains.
const MAX_PAST_REMOTE_KEYS: usize = 64;
/// Largest ciphertext accepted: the largest padding bucket plus the Poly1305 tag.
pub const MAX_CIPHERTEXT_LEN: usize = MAX_BUCKET + 16;

const MESSAGE_VERSION: u8 = 0x01;
const STATE_VERSION: u8 = 0x01;
/// Longest session associated data [`DoubleRatchet`] accepts (and stores in `var16`).
pub const MAX_AD_LEN: usize = 1024;
const _: () = assert!(crate::pqxdh::SESSION_AD_LEN <= MAX_AD_LEN);

/// Why a ratchet could not be initialised.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RatchetInitError {
    /// The remote ratchet key has small order.
    #[error("remote ratchet key is non-contributory")]
    NonContributory,
    /// The associated data is longer than [`MAX_AD_LEN`].
    #[error("associated data too long")]
    AssociatedDataTooLong,
}

/// Why encryption failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RatchetEncryptError {
    /// This side has not received a message yet and so has no sending chain (the responder
    /// before the first message arrives).
    #[error("no sending chain yet")]
    NoSendingChain,
    /// The plaintext is larger than the maximum padded size.
    #[error("plaintext too large")]
    TooLarge,
    /// The sending chain reached 2^32 - 1 messages.
    #[error("sending chain exhausted")]
    ChainExhausted,
}

/// Why decryption failed. The ratchet state is unchanged after every one of these.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RatchetDecryptError {
    /// The message's key was already used (a replay) or has been evicted.
    #[error("message was already received or its key expired")]
    Replayed,
    /// Accepting the message would skip more than [`MAX_SKIP`] keys in one chain.
    #[error("too many skipped messages")]
    TooManySkipped,
    /// The header's ratchet key is non-contributory.
    #[error("remote ratchet key is non-contributory")]
    NonContributory,
    /// Authentication failed: wrong key, tampered header or ciphertext.
    #[error("message authentication failed")]
    AuthenticationFailed,
    /// The ciphertext is larger than any valid message.
    #[error("ciphertext too large")]
    TooLarge,
}

/// Ratchet message header, sent in the clear and authenticated as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Sender's current ratchet public key.
    pub ratchet_key: [u8; 32],
    /// PN: number of messages in the sender's previous sending chain.
    pub previous_chain_length: u32,
    /// N: this message's number in the current sending chain.
    pub message_number: u32,
}

impl Header {
    /// Encoded size: 32 + 4 + 4.
    pub const ENCODED_LEN: usize = 40;

    /// `ratchet_key(32) || PN (u32 BE) || N (u32 BE)`; also the bytes appended to the AD.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..32].copy_from_slice(&self.ratchet_key);
        out[32..36].copy_from_slice(&self.previous_chain_length.to_be_bytes());
        out[36..].copy_from_slice(&self.message_number.to_be_bytes());
        out
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ratchet_key: r.x25519_public("ratchet key")?,
            previous_chain_length: r.u32()?,
            message_number: r.u32()?,
        })
    }
}

/// A Double Ratchet message: header plus AEAD ciphertext (including the 16-byte tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatchetMessage {
    /// The header.
    pub header: Header,
    /// ChaCha20-Poly1305 ciphertext || tag.
    pub ciphertext: Vec<u8>,
}

impl RatchetMessage {
    /// `0x01 || header(40) || len (u32 BE) || ciphertext`. Fails with
    /// [`EncodeError::TooLong`] (never truncates) if the ciphertext exceeds
    /// [`MAX_CIPHERTEXT_LEN`], which the decoder would reject.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::with_capacity(1 + Header::ENCODED_LEN + 4 + self.ciphertext.len());
        w.u8(MESSAGE_VERSION).bytes(&self.header.encode()).var32(
            "ratchet ciphertext",
            &self.ciphertext,
            MAX_CIPHERTEXT_LEN,
        )?;
        Ok(w.into_vec())
    }

    /// Decodes, bounding the ciphertext by [`MAX_CIPHERTEXT_LEN`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish()?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version(MESSAGE_VERSION)?;
        let header = Header::read(r)?;
        let ciphertext = r.var32(MAX_CIPHERTEXT_LEN)?.to_vec();
        Ok(Self { header, ciphertext })
    }
}

/// Stored size of a skipped key: ratchet key, message number, message key.
const SKIPPED_KEY_LEN: usize = 32 + 4 + 32;

/// Boxed wherever it is kept, so a growing or shrinking queue moves pointers, never the key
/// (a reallocation would leave copies of message keys in freed memory).
#[derive(Clone)]
struct SkippedKey {
    ratchet_key: [u8; 32],
    number: u32,
    message_key: Zeroizing<[u8; 32]>,
}

/// Double Ratchet state. Holds secrets: no `Debug`, zeroized on drop.
#[derive(Clone)]
pub struct DoubleRatchet {
    ad: Bounded16,
    dhs: StaticSecret,
    /// Public half of `dhs`, computed on first use and kept for the key's lifetime (a
    /// base-point multiplication per message otherwise). Derived, so never serialised.
    dhs_public: Option<[u8; 32]>,
    dhr: Option<[u8; 32]>,
    rk: Zeroizing<[u8; 32]>,
    cks: Option<Zeroizing<[u8; 32]>>,
    ckr: Option<Zeroizing<[u8; 32]>>,
    ns: u32,
    nr: u32,
    pn: u32,
    skipped: VecDeque<Box<SkippedKey>>,
    past_remote_keys: VecDeque<[u8; 32]>,
}

/// A receiving chain being advanced on a copy: its chain key, the number of its next message
/// and the remote ratchet key it belongs to.
struct Chain {
    ck: Zeroizing<[u8; 32]>,
    nr: u32,
    remote: [u8; 32],
}

impl Chain {
    /// Derives the keys of the next `count` messages into `out` and returns the chain after
    /// them.
    #[expect(
        clippy::vec_box,
        reason = "a key is moved by its pointer only (see SkippedKey)"
    )]
    fn skip(mut self, count: usize, out: &mut Vec<Box<SkippedKey>>) -> Self {
        for _ in 0..count {
            let (mk, next_ck) = kdf_ck(&self.ck);
            out.push(Box::new(SkippedKey {
                ratchet_key: self.remote,
                number: self.nr,
                message_key: mk,
            }));
            self.ck = next_ck;
            self.nr += 1;
        }
        self
    }
}

/// How many keys must be skipped to reach message `until` in `chain` (none without a chain),
/// refusing more than [`MAX_SKIP`].
fn skip_count(chain: Option<&Chain>, until: u32) -> Result<usize, RatchetDecryptError> {
    let Some(chain) = chain else {
        return Ok(0);
    };
    if until > chain.nr.saturating_add(MAX_SKIP) {
        return Err(RatchetDecryptError::TooManySkipped);
    }
    Ok(until.saturating_sub(chain.nr) as usize)
}

/// The sending half of a DH ratchet step: new key pair, root key and sending chain.
struct RatchetStep {
    dhs: StaticSecret,
    rk: Zeroizing<[u8; 32]>,
    cks: Zeroizing<[u8; 32]>,
}

/// State change of an accepted message that did not use a stored skipped key.
pub(crate) struct Advance {
    step: Option<Box<RatchetStep>>,
    remote: [u8; 32],
    ckr: Zeroizing<[u8; 32]>,
    nr: u32,
    #[expect(
        clippy::vec_box,
        reason = "a key is moved by its pointer only (see SkippedKey)"
    )]
    skipped: Vec<Box<SkippedKey>>,
}

/// What accepting a decrypted message changes in a [`DoubleRatchet`]; produced by
/// `decrypt_staged`, applied by `commit`. Holds secrets: no `Debug`, zeroized on drop.
pub(crate) enum StagedUpdate {
    /// The message used the stored skipped key at this index: delete it.
    UseSkipped(usize),
    /// The receiving chain advanced, possibly after a DH ratchet step.
    Advance(Advance),
}

fn kdf_rk(rk: &[u8; 32], dh: &[u8; 32]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let out = hkdf_sha256::<64>(rk, dh, ROOT_INFO);
    let mut new_rk = Zeroizing::new([0u8; 32]);
    let mut ck = Zeroizing::new([0u8; 32]);
    new_rk.copy_from_slice(&out[..32]);
    ck.copy_from_slice(&out[32..]);
    (new_rk, ck)
}

/// Returns (message key, next chain key).
fn kdf_ck(ck: &[u8; 32]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    hmac_sha256_pair(ck, &[0x01], &[0x02])
}

/// The (key, nonce) of `ENCRYPT`: HKDF with a zero salt, one 44-byte expand.
fn message_aead_keys(mk: &[u8; 32]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    split_key_nonce(&hkdf_sha256_zero_salt::<44>(mk, MESSAGE_KEY_INFO)[..])
}

/// Runs `f` on the AEAD associated data, session AD || encoded header, assembled on the
/// stack (the session AD is at most [`MAX_AD_LEN`] bytes).
fn with_associated_data<T>(
    session_ad: &Bounded16,
    header: &Header,
    f: impl FnOnce(&[u8]) -> T,
) -> T {
    let mut buf = [0u8; MAX_AD_LEN + Header::ENCODED_LEN];
    let (ad, rest) = buf.split_at_mut(session_ad.len());
    ad.copy_from_slice(session_ad.as_slice());
    rest[..Header::ENCODED_LEN].copy_from_slice(&header.encode());
    f(&buf[..session_ad.len() + Header::ENCODED_LEN])
}

fn dh(
    secret: &StaticSecret,
    public: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, RatchetDecryptError> {
    primitives::x25519(secret, &X25519Public::from(*public))
        .map_err(|_| RatchetDecryptError::NonContributory)
}

impl DoubleRatchet {
    /// `RatchetInitAlice`: the initiator knows the responder's ratchet public key (in PQXDH,
    /// the signed prekey) and can send immediately. `ad` is at most [`MAX_AD_LEN`] bytes.
    pub fn init_alice<R: CryptoRng + RngCore>(
        rng: &mut R,
        shared_secret: &[u8; 32],
        remote_ratchet_key: &[u8; 32],
        ad: &[u8],
    ) -> Result<Self, RatchetInitError> {
        let ad = Bounded16::new(ad, MAX_AD_LEN).ok_or(RatchetInitError::AssociatedDataTooLong)?;
        Self::alice(rng, shared_secret, remote_ratchet_key, ad)
    }

    pub(crate) fn alice<R: CryptoRng + RngCore>(
        rng: &mut R,
        shared_secret: &[u8; 32],
        remote_ratchet_key: &[u8; 32],
        ad: Bounded16,
    ) -> Result<Self, RatchetInitError> {
        let dhs = StaticSecret::random_from_rng(&mut *rng);
        let dh_out = primitives::x25519(&dhs, &X25519Public::from(*remote_ratchet_key))
            .map_err(|_| RatchetInitError::NonContributory)?;
        let (rk, cks) = kdf_rk(shared_secret, &dh_out);
        Ok(Self {
            ad,
            dhs,
            dhs_public: None,
            dhr: Some(*remote_ratchet_key),
            rk,
            cks: Some(cks),
            ckr: None,
            ns: 0,
            nr: 0,
            pn: 0,
            skipped: VecDeque::new(),
            past_remote_keys: VecDeque::new(),
        })
    }

    /// `RatchetInitBob`: the responder starts from its ratchet key pair (in PQXDH, the signed
    /// prekey) and can send only after the first message arrives. `ad` is at most
    /// [`MAX_AD_LEN`] bytes.
    pub fn init_bob(
        shared_secret: &[u8; 32],
        own_ratchet_secret: &[u8; 32],
        ad: &[u8],
    ) -> Result<Self, RatchetInitError> {
        let ad = Bounded16::new(ad, MAX_AD_LEN).ok_or(RatchetInitError::AssociatedDataTooLong)?;
        Ok(Self::bob(shared_secret, own_ratchet_secret, ad))
    }

    pub(crate) fn bob(
        shared_secret: &[u8; 32],
        own_ratchet_secret: &[u8; 32],
        ad: Bounded16,
    ) -> Self {
        Self {
            ad,
            dhs: StaticSecret::from(*own_ratchet_secret),
            dhs_public: None,
            dhr: None,
            rk: Zeroizing::new(*shared_secret),
            cks: None,
            ckr: None,
            ns: 0,
            nr: 0,
            pn: 0,
            skipped: VecDeque::new(),
            past_remote_keys: VecDeque::new(),
        }
    }

    /// Our current ratchet public key.
    pub fn ratchet_public_key(&self) -> [u8; 32] {
        match self.dhs_public {
            Some(public) => public,
            None => X25519Public::from(&self.dhs).to_bytes(),
        }
    }

    /// [`ratchet_public_key`](Self::ratchet_public_key), computed once per ratchet key.
    fn cached_ratchet_public_key(&mut self) -> [u8; 32] {
        *self
            .dhs_public
            .get_or_insert_with(|| X25519Public::from(&self.dhs).to_bytes())
    }

    /// Number of skipped message keys currently stored.
    pub fn skipped_key_count(&self) -> usize {
        self.skipped.len()
    }

    /// Encrypts one message (callers pad first; see [`crate::padding`]).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<RatchetMessage, RatchetEncryptError> {
        if plaintext.len() > MAX_BUCKET {
            return Err(RatchetEncryptError::TooLarge);
        }
        self.encrypt_with(|key, nonce, ad| primitives::aead_seal(key, nonce, ad, plaintext))
    }

    /// [`encrypt`](Self::encrypt) in place: `padded` (with 16 bytes of spare capacity for the
    /// tag, see [`crate::padding`]) becomes the ciphertext, so no second buffer is allocated
    /// and no plaintext copy is left to zeroize.
    pub(crate) fn encrypt_buffer(
        &mut self,
        mut padded: Zeroizing<Vec<u8>>,
    ) -> Result<RatchetMessage, RatchetEncryptError> {
        if padded.len() > MAX_BUCKET {
            return Err(RatchetEncryptError::TooLarge);
        }
        self.encrypt_with(|key, nonce, ad| {
            primitives::aead_seal_in_place(key, nonce, ad, &mut padded);
            // Ciphertext from here on: nothing left to zeroize.
            std::mem::take(&mut *padded)
        })
    }

    /// The sending-chain step shared by both encrypt paths; `seal` runs the AEAD.
    fn encrypt_with(
        &mut self,
        seal: impl FnOnce(&[u8; 32], &[u8; 12], &[u8]) -> Vec<u8>,
    ) -> Result<RatchetMessage, RatchetEncryptError> {
        let ck = self
            .cks
            .as_ref()
            .ok_or(RatchetEncryptError::NoSendingChain)?;
        let next_ns = self
            .ns
            .checked_add(1)
            .ok_or(RatchetEncryptError::ChainExhausted)?;
        let (mk, next_ck) = kdf_ck(ck);
        let header = Header {
            ratchet_key: self.cached_ratchet_public_key(),
            previous_chain_length: self.pn,
            message_number: self.ns,
        };
        let (key, nonce) = message_aead_keys(&mk);
        let ciphertext = with_associated_data(&self.ad, &header, |ad| seal(&key, &nonce, ad));
        self.cks = Some(next_ck);
        self.ns = next_ns;
        Ok(RatchetMessage { header, ciphertext })
    }

    /// Decrypts one message. On any error the state is left untouched.
    pub fn decrypt<R: CryptoRng + RngCore>(
        &mut self,
        rng: &mut R,
        message: &RatchetMessage,
    ) -> Result<Zeroizing<Vec<u8>>, RatchetDecryptError> {
        let (plaintext, update) = self.decrypt_staged(rng, message)?;
        self.commit(update);
        Ok(plaintext)
    }

    /// Decrypts without changing the state: returns the plaintext and the state change that
    /// accepting it makes, for [`commit`](Self::commit). Callers that validate the plaintext
    /// further (padding) commit only once that succeeds, so no state copy is needed for
    /// "unchanged on failure".
    pub(crate) fn decrypt_staged<R: CryptoRng + RngCore>(
        &self,
        rng: &mut R,
        message: &RatchetMessage,
    ) -> Result<(Zeroizing<Vec<u8>>, StagedUpdate), RatchetDecryptError> {
        if message.ciphertext.len() > MAX_CIPHERTEXT_LEN {
            return Err(RatchetDecryptError::TooLarge);
        }
        let header = &message.header;
        if let Some(pos) = self
            .skipped
            .iter()
            .position(|k| k.ratchet_key == header.ratchet_key && k.number == header.message_number)
        {
            let plaintext = self.open(&self.skipped[pos].message_key, message)?;
            return Ok((plaintext, StagedUpdate::UseSkipped(pos)));
        }
        // The receiving chain the message belongs to, and (for a new remote ratchet key) the
        // DH ratchet step with the rest of the current receiving chain to skip first.
        let (chain, step) = if self.dhr == Some(header.ratchet_key) {
            if header.message_number < self.nr {
                return Err(RatchetDecryptError::Replayed);
            }
            (self.receiving_chain(), None)
        } else {
            if self.past_remote_keys.contains(&header.ratchet_key) {
                return Err(RatchetDecryptError::Replayed);
            }
            let old_chain = self.receiving_chain();
            let old_skip = skip_count(old_chain.as_ref(), header.previous_chain_length)?;
            let remote = header.ratchet_key;
            let (rk, ckr) = kdf_rk(&self.rk, &*dh(&self.dhs, &remote)?);
            let dhs = StaticSecret::random_from_rng(&mut *rng);
            let (rk, cks) = kdf_rk(&rk, &*dh(&dhs, &remote)?);
            let chain = Chain {
                ck: ckr,
                nr: 0,
                remote,
            };
            let step = RatchetStep { dhs, rk, cks };
            (Some(chain), Some((old_chain, old_skip, step)))
        };
        let chain = chain.ok_or(RatchetDecryptError::AuthenticationFailed)?;
        let new_skip = skip_count(Some(&chain), header.message_number)?;
        // Every skipped key is boxed into one exactly-sized buffer of pointers.
        let old_skip = step.as_ref().map_or(0, |(_, n, _)| *n);
        let mut skipped = Vec::with_capacity(old_skip + new_skip);
        let step = step.map(|(old_chain, old_skip, step)| {
            if let Some(old) = old_chain {
                old.skip(old_skip, &mut skipped);
            }
            Box::new(step)
        });
        let chain = chain.skip(new_skip, &mut skipped);
        let (mk, next_ck) = kdf_ck(&chain.ck);
        let nr = chain
            .nr
            .checked_add(1)
            .ok_or(RatchetDecryptError::TooManySkipped)?;
        let plaintext = self.open(&mk, message)?;
        Ok((
            plaintext,
            StagedUpdate::Advance(Advance {
                step,
                remote: chain.remote,
                ckr: next_ck,
                nr,
                skipped,
            }),
        ))
    }

    /// Applies what [`decrypt_staged`](Self::decrypt_staged) returned for this state.
    pub(crate) fn commit(&mut self, update: StagedUpdate) {
        match update {
            StagedUpdate::UseSkipped(pos) => {
                self.skipped.remove(pos);
            }
            StagedUpdate::Advance(advance) => {
                let Advance {
                    step,
                    remote,
                    ckr,
                    nr,
                    skipped,
                } = advance;
                if let Some(mut step) = step {
                    // Swapped, not moved out: the box then wipes the old secrets as it drops,
                    // instead of freeing memory that still holds the new ones.
                    let cks = std::mem::take(&mut step.cks);
                    if let Some(old) = self.dhr.replace(remote) {
                        if self.past_remote_keys.len() >= MAX_PAST_REMOTE_KEYS {
                            self.past_remote_keys.pop_front();
                        }
                        self.past_remote_keys.push_back(old);
                    }
                    self.pn = self.ns;
                    self.ns = 0;
                    std::mem::swap(&mut self.dhs, &mut step.dhs);
                    self.dhs_public = None;
                    std::mem::swap(&mut self.rk, &mut step.rk);
                    self.cks = Some(cks);
                }
                self.ckr = Some(ckr);
                self.nr = nr;
                for key in skipped {
                    if self.skipped.len() >= MAX_STORED_SKIPPED_KEYS {
                        self.skipped.pop_front();
                    }
                    self.skipped.push_back(key);
                }
            }
        }
    }

    fn open(
        &self,
        mk: &[u8; 32],
        message: &RatchetMessage,
    ) -> Result<Zeroizing<Vec<u8>>, RatchetDecryptError> {
        let (key, nonce) = message_aead_keys(mk);
        with_associated_data(&self.ad, &message.header, |ad| {
            primitives::aead_open(&key, &nonce, ad, &message.ciphertext)
        })
        .map_err(|_| RatchetDecryptError::AuthenticationFailed)
    }

    /// The current receiving chain, if there is one yet.
    fn receiving_chain(&self) -> Option<Chain> {
        match (self.ckr.as_ref(), self.dhr) {
            (Some(ck), Some(remote)) => Some(Chain {
                ck: ck.clone(),
                nr: self.nr,
                remote,
            }),
            _ => None,
        }
    }

    /// Versioned storage encoding (see docs/PROTOCOL.md, "Ratchet state").
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(self.encoded_len());
        self.write(&mut w);
        w.into_zeroizing()
    }

    /// Exact length of [`write`](Self::write)'s output, so buffers can be allocated once and
    /// never reallocate (a reallocation would leave an unzeroized copy of the secrets).
    pub(crate) fn encoded_len(&self) -> usize {
        let opt = |present: bool| if present { 1 + 32 } else { 1 };
        1 // version
            + 2
            + self.ad.len()
            + 32 // dhs
            + opt(self.dhr.is_some())
            + 32 // rk
            + opt(self.cks.is_some())
            + opt(self.ckr.is_some())
            + 3 * 4 // ns, nr, pn
            + 2
            + self.skipped.len() * SKIPPED_KEY_LEN
            + 1
            + self.past_remote_keys.len() * 32
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u8(STATE_VERSION)
            .bounded16(&self.ad)
            .bytes(self.dhs.as_bytes());
        write_opt(w, self.dhr.as_ref());
        w.bytes(self.rk.as_ref());
        write_opt(w, self.cks.as_deref());
        write_opt(w, self.ckr.as_deref());
        w.u32(self.ns).u32(self.nr).u32(self.pn);
        w.u16(self.skipped.len() as u16);
        for k in &self.skipped {
            w.bytes(&k.ratchet_key)
                .u32(k.number)
                .bytes(k.message_key.as_ref());
        }
        w.u8(self.past_remote_keys.len() as u8);
        for k in &self.past_remote_keys {
            w.bytes(k);
        }
    }

    /// Restores from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let s = Self::read(&mut r)?;
        r.finish()?;
        Ok(s)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.version(STATE_VERSION)?;
        let ad = Bounded16::new(r.var16(MAX_AD_LEN)?, MAX_AD_LEN).ok_or(DecodeError::TooLong)?;
        let dhs = StaticSecret::from(*Zeroizing::new(r.array::<32>()?));
        let dhr = read_opt(r)?.map(|k| *k);
        let rk = Zeroizing::new(r.array::<32>()?);
        let cks = read_opt(r)?;
        let ckr = read_opt(r)?;
        let (ns, nr, pn) = (r.u32()?, r.u32()?, r.u32()?);
        let n = usize::from(r.u16()?);
        if n > MAX_STORED_SKIPPED_KEYS {
            return Err(DecodeError::TooLong);
        }
        if r.remaining() < n * SKIPPED_KEY_LEN {
            return Err(DecodeError::Truncated);
        }
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back(Box::new(SkippedKey {
                ratchet_key: r.array()?,
                number: r.u32()?,
                message_key: Zeroizing::new(r.array()?),
            }));
        }
        let n = usize::from(r.u8()?);
        if n > MAX_PAST_REMOTE_KEYS {
            return Err(DecodeError::TooLong);
        }
        let past_remote_keys = (0..n)
            .map(|_| r.array())
            .collect::<Result<VecDeque<_>, _>>()?;
        Ok(Self {
            ad,
            dhs,
            dhs_public: None,
            dhr,
            rk,
            cks,
            ckr,
            ns,
            nr,
            pn,
            skipped,
            past_remote_keys,
        })
    }
}

fn write_opt(w: &mut Writer, v: Option<&[u8; 32]>) {
    match v {
        Some(k) => w.u8(1).bytes(k),
        None => w.u8(0),
    };
}

fn read_opt(r: &mut Reader<'_>) -> Result<Option<Zeroizing<[u8; 32]>>, DecodeError> {
    Ok(if r.flag()? {
        Some(Zeroizing::new(r.array()?))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn pair(rng: &mut ChaCha20Rng) -> (DoubleRatchet, DoubleRatchet) {
        let sk = [42u8; 32];
        let bob_secret = [7u8; 32];
        let bob_pub = X25519Public::from(&StaticSecret::from(bob_secret)).to_bytes();
        let alice = DoubleRatchet::init_alice(rng, &sk, &bob_pub, b"ad").unwrap();
        let bob = DoubleRatchet::init_bob(&sk, &bob_secret, b"ad").unwrap();
        (alice, bob)
    }

    #[test]
    fn basic_exchange_and_replay() {
        let mut rng = ChaCha20Rng::from_seed([10; 32]);
        let (mut a, mut b) = pair(&mut rng);
        assert_eq!(
            b.encrypt(b"x").err(),
            Some(RatchetEncryptError::NoSendingChain)
        );
        let m1 = a.encrypt(b"hello").unwrap();
        assert_eq!(b.decrypt(&mut rng, &m1).unwrap().as_slice(), b"hello");
        assert_eq!(
            b.decrypt(&mut rng, &m1).err(),
            Some(RatchetDecryptError::Replayed)
        );
        let r1 = b.encrypt(b"hi").unwrap();
        assert_eq!(a.decrypt(&mut rng, &r1).unwrap().as_slice(), b"hi");
        // Replay of a message from a chain that has since been ratcheted away.
        let m2 = a.encrypt(b"again").unwrap();
        b.decrypt(&mut rng, &m2).unwrap();
        assert_eq!(
            b.decrypt(&mut rng, &m1).err(),
            Some(RatchetDecryptError::Replayed)
        );
    }

    #[test]
    fn skip_limits_and_eviction() {
        let mut rng = ChaCha20Rng::from_seed([11; 32]);
        let (mut a, mut b) = pair(&mut rng);
        let first = a.encrypt(b"0").unwrap();
        for _ in 0..MAX_SKIP {
            a.encrypt(b"skip").unwrap();
        }
        let too_far = a.encrypt(b"far").unwrap();
        assert_eq!(too_far.header.message_number, MAX_SKIP + 1);
        let before = b.to_bytes();
        assert_eq!(
            b.decrypt(&mut rng, &too_far).err(),
            Some(RatchetDecryptError::TooManySkipped)
        );
        assert_eq!(b.to_bytes(), before);
        b.decrypt(&mut rng, &first).unwrap();
        assert_eq!(b.decrypt(&mut rng, &too_far).unwrap().as_slice(), b"far");
        assert_eq!(b.skipped_key_count(), MAX_SKIP as usize);
    }

    #[test]
    fn total_skipped_cap_evicts_oldest() {
        let mut rng = ChaCha20Rng::from_seed([12; 32]);
        let (mut a, mut b) = pair(&mut rng);
        let mut oldest = None;
        // Three chains of 900 skipped keys each: 2700 > 2000, so the first chain's keys go.
        for round in 0..3 {
            let msgs: Vec<_> = (0..901).map(|_| a.encrypt(b"m").unwrap()).collect();
            if round == 0 {
                oldest = Some(msgs[0].clone());
            }
            b.decrypt(&mut rng, &msgs[900]).unwrap();
            let reply = b.encrypt(b"r").unwrap();
            a.decrypt(&mut rng, &reply).unwrap();
        }
        assert_eq!(b.skipped_key_count(), MAX_STORED_SKIPPED_KEYS);
        let oldest = oldest.unwrap();
        assert_eq!(
            b.decrypt(&mut rng, &oldest).err(),
            Some(RatchetDecryptError::Replayed)
        );
    }

    #[test]
    fn tampering_fails_and_leaves_state_unchanged() {
        let mut rng = ChaCha20Rng::from_seed([13; 32]);
        let (mut a, mut b) = pair(&mut rng);
        let m = a.encrypt(b"secret").unwrap();
        let before = b.to_bytes();
        let mut bad_ct = m.clone();
        bad_ct.ciphertext[0] ^= 1;
        assert_eq!(
            b.decrypt(&mut rng, &bad_ct).err(),
            Some(RatchetDecryptError::AuthenticationFailed)
        );
        let mut bad_n = m.clone();
        bad_n.header.message_number = 1;
        assert_eq!(
            b.decrypt(&mut rng, &bad_n).err(),
            Some(RatchetDecryptError::AuthenticationFailed)
        );
        let mut bad_pn = m.clone();
        bad_pn.header.previous_chain_length = 3;
        assert_eq!(
            b.decrypt(&mut rng, &bad_pn).err(),
            Some(RatchetDecryptError::AuthenticationFailed)
        );
        let mut zero_key = m.clone();
        zero_key.header.ratchet_key = [0; 32];
        assert_eq!(
            b.decrypt(&mut rng, &zero_key).err(),
            Some(RatchetDecryptError::NonContributory)
        );
        assert_eq!(b.to_bytes(), before);
        assert_eq!(b.decrypt(&mut rng, &m).unwrap().as_slice(), b"secret");
    }

    #[test]
    fn state_and_message_round_trip() {
        let mut rng = ChaCha20Rng::from_seed([14; 32]);
        let (mut a, mut b) = pair(&mut rng);
        let m0 = a.encrypt(b"0").unwrap();
        let m1 = a.encrypt(b"1").unwrap();
        b.decrypt(&mut rng, &m1).unwrap();
        let restored = DoubleRatchet::from_bytes(&b.to_bytes()).unwrap();
        assert_eq!(restored.to_bytes(), b.to_bytes());
        let mut b = restored;
        assert_eq!(
            RatchetMessage::decode(&m0.encode().unwrap()),
            Ok(m0.clone())
        );
        assert_eq!(b.decrypt(&mut rng, &m0).unwrap().as_slice(), b"0");
        let mut enc = b.to_bytes().to_vec();
        enc.push(0);
        assert_eq!(
            DoubleRatchet::from_bytes(&enc).err(),
            Some(DecodeError::TrailingBytes)
        );
    }
}
