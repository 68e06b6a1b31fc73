//! The passphrase-wrapped key file (`sotto.key`): Argon2id turns the passphrase into a
//! key-encryption key, XChaCha20-Poly1305 seals the database key with the whole header as
//! associated data. Byte layout (all integers big-endian), documented in docs/STORE.md:
//!
//! ```text
//! 0   8  magic "SOTTOKEY"
//! 8   1  version = 1
//! 9   1  kdf = 1 (Argon2id v0x13)
//! 10  4  m_cost (KiB)
//! 14  4  t_cost (iterations)
//! 18  4  p_cost (lanes)
//! 22 16  salt
//! 38 24  nonce
//! 62 48  ciphertext = XChaCha20-Poly1305(KEK, nonce, db_key, aad = bytes 0..62)
//! ```

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::secret::{DB_KEY_LEN, DbKey, Passphrase};

const MAGIC: &[u8; 8] = b"SOTTOKEY";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
pub(crate) const HEADER_LEN: usize = 8 + 1 + 1 + 12 + SALT_LEN + NONCE_LEN;
const FILE_LEN: usize = HEADER_LEN + DB_KEY_LEN + 16;

/// Argon2id cost parameters. They are stored in every key file and backup, so they can be
/// raised later without breaking existing files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallel lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// m = 64 MiB, t = 3, p = 1 (the OWASP/RFC 9106 "second recommended" profile, raised to
    /// three passes).
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Largest accepted memory cost (2 GiB, RFC 9106's first recommended profile). The
    /// parameters are read from a file before anything authenticates them, so a damaged or
    /// hostile key file or backup asking for more is refused instead of exhausting memory.
    pub const MAX_M_COST_KIB: u32 = 2 * 1024 * 1024;
    /// Largest accepted number of passes (bounds the time a hostile file can make us spend).
    pub const MAX_T_COST: u32 = 16;
    /// Largest accepted number of lanes.
    pub const MAX_P_COST: u32 = 16;

    fn argon2(&self) -> Result<Argon2<'static>, KeyFileError> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
        {
            return Err(KeyFileError::BadParams);
        }
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| KeyFileError::BadParams)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// Derives a 32-byte key from a passphrase and salt.
    pub(crate) fn derive(
        &self,
        passphrase: &Passphrase,
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
        let mut out = Zeroizing::new([0u8; 32]);
        self.argon2()?
            .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|_| KeyFileError::BadParams)?;
        Ok(out)
    }

    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.m_cost_kib.to_be_bytes());
        out.extend_from_slice(&self.t_cost.to_be_bytes());
        out.extend_from_slice(&self.p_cost.to_be_bytes());
    }

    pub(crate) fn read_from(b: &[u8]) -> Option<Self> {
        let u = |i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
        };
        Some(Self {
            m_cost_kib: u(0)?,
            t_cost: u(4)?,
            p_cost: u(8)?,
        })
    }
}

/// Why a key file could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The passphrase is wrong (or the file was altered).
    #[error("wrong passphrase (or the key file was altered)")]
    WrongPassphrase,
    /// Not a Sotto key file, or a version this build does not know.
    #[error("the key file is not a Sotto key file of a supported version")]
    Malformed,
    /// The Argon2id parameters are out of range.
    #[error("the key file's Argon2id parameters are out of the accepted range")]
    BadParams,
    /// The random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

/// Seals `key` under `passphrase`, returning the complete key file bytes.
pub(crate) fn wrap(
    key: &DbKey,
    passphrase: &Passphrase,
    params: KdfParams,
) -> Result<Vec<u8>, KeyFileError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| KeyFileError::Random)?;
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|_| KeyFileError::Random)?;
    let kek = params.derive(passphrase, &salt)?;
    let mut out = Vec::with_capacity(FILE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(KDF_ARGON2ID);
    params.write_to(&mut out);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let ct = XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()))
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: key.bytes(),
                aad: &out,
            },
        )
        .map_err(|_| KeyFileError::Malformed)?;
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a key file with `passphrase`.
pub(crate) fn unwrap(file: &[u8], passphrase: &Passphrase) -> Result<DbKey, KeyFileError> {
    if file.len() != FILE_LEN || &file[..8] != MAGIC || file[8] != VERSION {
        return Err(KeyFileError::Malformed);
    }
    if file[9] != KDF_ARGON2ID {
        return Err(KeyFileError::Malformed);
    }
    let params = KdfParams::read_from(&file[10..22]).ok_or(KeyFileError::Malformed)?;
    let salt = &file[22..22 + SALT_LEN];
    let nonce = &file[22 + SALT_LEN..HEADER_LEN];
    let kek = params.derive(passphrase, salt)?;
    let pt = Zeroizing::new(
        XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()))
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: &file[HEADER_LEN..],
                    aad: &file[..HEADER_LEN],
                },
            )
            .map_err(|_| KeyFileError::WrongPassphrase)?,
    );
    DbKey::from_slice(&pt).ok_or(KeyFileError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let key = DbKey::generate().unwrap();
        let file = wrap(&key, &Passphrase::from("correct horse"), FAST).unwrap();
        assert_eq!(file.len(), FILE_LEN);
        let back = unwrap(&file, &Passphrase::from("correct horse")).unwrap();
        assert_eq!(back.bytes(), key.bytes());
        assert!(matches!(
            unwrap(&file, &Passphrase::from("wrong")),
            Err(KeyFileError::WrongPassphrase)
        ));
    }

    #[test]
    fn header_is_authenticated() {
        let key = DbKey::generate().unwrap();
        let file = wrap(&key, &Passphrase::from("pw"), FAST).unwrap();
        // Flipping the salt, nonce or ciphertext must fail authentication.
        for i in [22, 40, 70] {
            let mut bad = file.clone();
            bad[i] ^= 1;
            assert!(matches!(
                unwrap(&bad, &Passphrase::from("pw")),
                Err(KeyFileError::WrongPassphrase)
            ));
        }
        let mut bad = file.clone();
        bad[0] ^= 1;
        assert!(matches!(
            unwrap(&bad, &Passphrase::from("pw")),
            Err(KeyFileError::Malformed)
        ));
        // Costs past the limits are refused before any allocation.
        for (at, value) in [
            (10, KdfParams::MAX_M_COST_KIB + 1),
            (10, u32::MAX),
            (14, KdfParams::MAX_T_COST + 1),
            (18, KdfParams::MAX_P_COST + 1),
        ] {
            let mut bad = file.clone();
            bad[at..at + 4].copy_from_slice(&value.to_be_bytes());
            assert!(matches!(
                unwrap(&bad, &Passphrase::from("pw")),
                Err(KeyFileError::BadParams)
            ));
        }
    }
}
