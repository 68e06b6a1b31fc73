//! QR payloads. Both are compact, versioned binary meant to be rendered in QR byte mode:
//!
//! * Verification: [`crate::safety::ScannableFingerprint::encode`] (65 bytes).
//! * Contact invite: [`ContactInvite`] — relay address, username and identity key.

use thiserror::Error;

use crate::identity::IdentityPublicKey;
use crate::safety::ScannableFingerprint;
use crate::wire::{DecodeError, Reader, ShortStr, Writer};

const INVITE_VERSION: u8 = 0x01;
/// Longest relay address (host[:port]), in bytes.
pub const MAX_RELAY_LEN: usize = 253;
/// Longest username, in bytes of UTF-8.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest possible invite encoding; decoders reject anything longer before parsing.
pub const MAX_INVITE_LEN: usize = 1 + 1 + MAX_RELAY_LEN + 1 + MAX_USERNAME_LEN + 33;

/// Why an invite could not be built.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum InviteError {
    /// Relay address empty, too long, or not printable ASCII without spaces.
    #[error("invalid relay address")]
    InvalidRelay,
    /// Username empty, too long, or containing control characters.
    #[error("invalid username")]
    InvalidUsername,
}

/// An invitation to add a contact, shown as a QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInvite {
    // Length-checked at construction, so `encode` cannot fail or truncate.
    relay: ShortStr,
    username: ShortStr,
    identity: IdentityPublicKey,
}

fn valid_relay(relay: &str) -> bool {
    !relay.is_empty() && relay.len() <= MAX_RELAY_LEN && relay.bytes().all(|b| b.is_ascii_graphic())
}

fn valid_username(username: &str) -> bool {
    !username.is_empty()
        && username.len() <= MAX_USERNAME_LEN
        && !username.chars().any(char::is_control)
}

impl ContactInvite {
    /// Validates and builds an invite.
    pub fn new(
        relay: &str,
        username: &str,
        identity: IdentityPublicKey,
    ) -> Result<Self, InviteError> {
        let relay = ShortStr::new(relay, MAX_RELAY_LEN)
            .filter(|r| valid_relay(r.as_str()))
            .ok_or(InviteError::InvalidRelay)?;
        let username = ShortStr::new(username, MAX_USERNAME_LEN)
            .filter(|u| valid_username(u.as_str()))
            .ok_or(InviteError::InvalidUsername)?;
        Ok(Self {
            relay,
            username,
            identity,
        })
    }

    /// Relay address (host[:port]).
    pub fn relay(&self) -> &str {
        self.relay.as_str()
    }

    /// Username on that relay.
    pub fn username(&self) -> &str {
        self.username.as_str()
    }

    /// The inviter's identity key (pin it; compare safety numbers later).
    pub fn identity(&self) -> IdentityPublicKey {
        self.identity
    }

    /// `0x01 || len(u8) || relay || len(u8) || username || identity(33)`.
    pub fn encode(&self) -> Vec<u8> {
        let (relay, username) = (&self.relay, &self.username);
        let mut w = Writer::with_capacity(3 + relay.as_str().len() + username.as_str().len() + 33);
        w.u8(INVITE_VERSION).short_str(relay).short_str(username);
        self.identity.write(&mut w);
        w.into_vec()
    }

    /// Decodes and validates a scanned invite.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_INVITE_LEN {
            return Err(DecodeError::TooLong);
        }
        let mut r = Reader::new(bytes);
        r.version(INVITE_VERSION)?;
        let relay = std::str::from_utf8(r.var8(MAX_RELAY_LEN)?)
            .map_err(|_| DecodeError::Invalid("relay address"))?;
        let username = std::str::from_utf8(r.var8(MAX_USERNAME_LEN)?)
            .map_err(|_| DecodeError::Invalid("username"))?;
        let identity = IdentityPublicKey::read(&mut r)?;
        r.finish()?;
        Self::new(relay, username, identity).map_err(|e| match e {
            InviteError::InvalidRelay => DecodeError::Invalid("relay address"),
            InviteError::InvalidUsername => DecodeError::Invalid("username"),
        })
    }
}

/// The verification QR payload (alias for the scannable fingerprint encoding).
pub fn verification_payload(
    fingerprint: &ScannableFingerprint,
) -> [u8; crate::safety::SCANNABLE_LEN] {
    fingerprint.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKeyPair;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn invite_round_trip_and_validation() {
        let mut rng = ChaCha20Rng::from_seed([20; 32]);
        let id = IdentityKeyPair::generate(&mut rng).public();
        let invite = ContactInvite::new("relay.example.org:443", "zoë", id).unwrap();
        let bytes = invite.encode();
        assert_eq!(bytes.len(), 1 + 1 + 21 + 1 + 4 + 33);
        assert_eq!(ContactInvite::decode(&bytes), Ok(invite.clone()));
        assert_eq!(
            ContactInvite::new("", "a", id),
            Err(InviteError::InvalidRelay)
        );
        assert_eq!(
            ContactInvite::new("a b", "a", id),
            Err(InviteError::InvalidRelay)
        );
        assert_eq!(
            ContactInvite::new("r", "a\nb", id),
            Err(InviteError::InvalidUsername)
        );
        assert_eq!(
            ContactInvite::new("r", &"x".repeat(65), id),
            Err(InviteError::InvalidUsername)
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            ContactInvite::decode(&trailing),
            Err(DecodeError::TrailingBytes)
        );
        let mut bad_utf8 = bytes.clone();
        bad_utf8[25] = 0xff;
        assert_eq!(
            ContactInvite::decode(&bad_utf8),
            Err(DecodeError::Invalid("username"))
        );
        assert_eq!(
            ContactInvite::decode(&[2]),
            Err(DecodeError::UnknownVersion(2))
        );
        assert_eq!(
            ContactInvite::decode(&vec![1; MAX_INVITE_LEN + 1]),
            Err(DecodeError::TooLong)
        );
    }

    #[test]
    fn invite_length_boundaries() {
        let mut rng = ChaCha20Rng::from_seed([21; 32]);
        let id = IdentityKeyPair::generate(&mut rng).public();
        let relay = "r".repeat(MAX_RELAY_LEN);
        let username = "u".repeat(MAX_USERNAME_LEN);
        let invite = ContactInvite::new(&relay, &username, id).unwrap();
        let bytes = invite.encode();
        assert_eq!(bytes.len(), MAX_INVITE_LEN);
        assert_eq!(usize::from(bytes[1]), MAX_RELAY_LEN);
        assert_eq!(ContactInvite::decode(&bytes), Ok(invite));
        for len in [MAX_RELAY_LEN + 1, 255, 256, 300] {
            assert_eq!(
                ContactInvite::new(&"r".repeat(len), "u", id),
                Err(InviteError::InvalidRelay),
                "relay of {len} bytes"
            );
        }
        for len in [MAX_USERNAME_LEN + 1, 255, 256] {
            assert_eq!(
                ContactInvite::new("r", &"u".repeat(len), id),
                Err(InviteError::InvalidUsername),
                "username of {len} bytes"
            );
        }
    }
}
