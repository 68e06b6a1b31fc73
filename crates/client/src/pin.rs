//! Registration-lock PIN stretching (docs/CLIENT.md).
//!
//! `verifier = Argon2id(password = PIN (UTF-8), salt = SHA-256("sotto-reglock-v1" || username),
//! m = 19456 KiB, t = 2, p = 1, output 32 bytes)` (Argon2 v1.3). The relay stores only a salted
//! hash of the verifier.

use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

/// Domain separator of the salt.
pub const SALT_DOMAIN: &[u8] = b"sotto-reglock-v1";
/// Argon2id memory cost in KiB.
pub const M_COST_KIB: u32 = 19_456;
/// Argon2id iterations.
pub const T_COST: u32 = 2;
/// Argon2id lanes.
pub const P_COST: u32 = 1;

/// The PIN could not be stretched.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum PinError {
    /// Empty PIN.
    #[error("empty PIN")]
    Empty,
    /// Argon2 refused its inputs.
    #[error("PIN stretching failed")]
    Kdf,
}

/// Stretches `pin` for `username` into the 32-byte verifier sent to the relay.
pub fn pin_verifier(pin: &str, username: &str) -> Result<Zeroizing<[u8; 32]>, PinError> {
    if pin.is_empty() {
        return Err(PinError::Empty);
    }
    let salt: [u8; 32] = Sha256::new()
        .chain_update(SALT_DOMAIN)
        .chain_update(username.as_bytes())
        .finalize()
        .into();
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(32)).map_err(|_| PinError::Kdf)?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pin.as_bytes(), &salt, out.as_mut())
        .map_err(|_| PinError::Kdf)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bound_to_username() {
        let a = pin_verifier("1234", "alice").unwrap();
        assert_eq!(*a, *pin_verifier("1234", "alice").unwrap());
        assert_ne!(*a, *pin_verifier("1234", "alice2").unwrap());
        assert_ne!(*a, *pin_verifier("1235", "alice").unwrap());
        assert_eq!(pin_verifier("", "alice"), Err(PinError::Empty));
    }
}
