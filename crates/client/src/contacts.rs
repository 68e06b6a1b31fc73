//! Contacts: adding by username or invite, message requests, blocking, safety numbers, QR
//! verification and identity-key changes.
//!
//! A contact's row is keyed by the account it was first known under (a stable local id); its
//! `identity_key` column is the account messages go to now. When a username starts resolving
//! to another identity, the contact keeps its conversation, the new key is recorded in the key
//! history and the contact is marked `Changed` until the user verifies or accepts it.

use rand_core::OsRng;
use sotto_protocol::qr::ContactInvite;
use sotto_protocol::safety::{self, ScanResult, ScannableFingerprint};
use sotto_protocol::{AccountId, Address, Session};
use sotto_relay_wire::{self as wire, ErrorCode, Request, Response};
use sotto_store::{Contact, MessageRequest, Verification, VerifiedHow};
use thiserror::Error;

use crate::engine::{Client, PRIMARY_DEVICE};
use crate::prekey_codec::to_protocol_bundle;
use crate::relay::{ConnectError, RequestError};
use crate::state::{StateError, contact_account, db_account, db_address, now_ms};

/// Adding a contact failed.
#[derive(Debug, Error)]
pub enum ContactError {
    /// No account holds that username.
    #[error("username not found")]
    NotFound,
    /// The relay's bundle is malformed or its signatures do not verify.
    #[error("invalid prekey bundle")]
    InvalidBundle,
    /// PQXDH could not start.
    #[error("session setup failed")]
    Initiate,
    /// The invite is malformed.
    #[error("this is not a Sotto invite")]
    InvalidInvite,
    /// The invite names another relay than the one this profile uses.
    #[error("the invite is for another relay ({0})")]
    OtherRelay(String),
    /// The relay's directory maps the invite's username to another identity key than the
    /// invite carries: a stale invite, or someone is impersonating the user.
    #[error("the invite's identity key does not match the username's current key")]
    InviteMismatch,
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Connection trouble.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The relay refused or did not answer.
    #[error(transparent)]
    Relay(#[from] RequestError),
}

/// Verifying a contact failed.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// No such contact.
    #[error("no such contact")]
    UnknownContact,
    /// The scanned code is well-formed but belongs to other keys: this is not the person (or
    /// key) you think, or one of you has a new key. Nothing was marked verified.
    #[error("the scanned code does not match: the safety numbers differ")]
    Mismatch,
    /// The scanned bytes are not a Sotto verification code.
    #[error("this is not a Sotto verification code")]
    NotAVerificationCode,
    /// Local state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The result of adding a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The contact's stable local id.
    pub contact: sotto_store::AccountId,
    /// The username now belongs to a different identity key than the one pinned before.
    pub key_changed: bool,
}

impl Client {
    /// Resolves a username to its account (anonymous connection).
    pub async fn lookup(&mut self, username: &str) -> Result<AccountId, ContactError> {
        match self
            .anon_request(Request::UsernameLookup {
                username: username.to_owned(),
            })
            .await
        {
            Ok(Response::Account { account }) => Ok(AccountId(account)),
            Ok(_) => Err(ContactError::Relay(RequestError::UnexpectedResponse)),
            Err(RequestError::Relay {
                code: ErrorCode::NotFound,
                ..
            }) => Err(ContactError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds (or accepts) a contact by username: lookup → pin or update the identity → fetch
    /// and verify its bundle → start a session unless one exists.
    pub async fn add_contact(&mut self, username: &str) -> Result<Added, ContactError> {
        let account = self.lookup(username).await?;
        let added = self.pin_contact(username, account)?;
        self.ensure_session(account).await?;
        Ok(added)
    }

    /// Adds a contact from a scanned invite (relay, username, identity key). The directory
    /// must agree with the invite; the contact is then marked verified by QR code, since the
    /// key came from the person's own code.
    pub async fn add_contact_from_invite(&mut self, invite: &[u8]) -> Result<Added, ContactError> {
        let invite = ContactInvite::decode(invite).map_err(|_| ContactError::InvalidInvite)?;
        if !same_relay(invite.relay(), &self.url) {
            return Err(ContactError::OtherRelay(invite.relay().to_owned()));
        }
        let account = self.lookup(invite.username()).await?;
        if account != invite.identity().account_id() {
            return Err(ContactError::InviteMismatch);
        }
        let added = self.pin_contact(invite.username(), account)?;
        self.store
            .set_verified(&added.contact, VerifiedHow::QrCode)
            .map_err(StateError::from)?;
        self.ensure_session(account).await?;
        Ok(Added {
            key_changed: false,
            ..added
        })
    }

    /// This account's invite: relay address, username and identity key.
    pub fn invite(&self) -> Result<Vec<u8>, ContactError> {
        let username = self.username()?.ok_or(ContactError::NotFound)?;
        let relay = relay_host(&self.url);
        ContactInvite::new(relay, &username, self.identity.public())
            .map(|i| i.encode())
            .map_err(|_| ContactError::InvalidInvite)
    }

    /// Records `username → account`: a new accepted contact, an existing one (accepted), or a
    /// key change of the contact known under that username.
    pub(crate) fn pin_contact(
        &mut self,
        username: &str,
        account: AccountId,
    ) -> Result<Added, StateError> {
        let now = now_ms();
        let default_timer = self.privacy()?.default_disappearing_secs;
        self.store.atomically(|s| {
            if let Some(mut c) = s.contact_by_identity_key(&account.0)? {
                c.username = Some(username.to_owned());
                c.request = MessageRequest::Accepted;
                s.update_contact(&c)?;
                s.conversation_with(&c.account, now)?;
                return Ok(Added {
                    contact: c.account,
                    key_changed: false,
                });
            }
            if let Some(mut c) = s.contact_by_username(username)? {
                s.set_identity_key(&c.account, &account.0, now)?;
                c.request = MessageRequest::Accepted;
                s.update_contact(&c)?;
                return Ok(Added {
                    contact: c.account,
                    key_changed: true,
                });
            }
            let c = Contact {
                account: db_account(account),
                device_id: PRIMARY_DEVICE,
                username: Some(username.to_owned()),
                display_name: None,
                identity_key: account.0.to_vec(),
                verification: Verification::Unverified,
                blocked: false,
                request: MessageRequest::Accepted,
            };
            s.add_contact(&c, now)?;
            let conv = s.conversation_with(&c.account, now)?;
            if default_timer > 0 {
                s.set_disappearing_timer(conv, default_timer)?;
            }
            Ok::<_, StateError>(Added {
                contact: c.account,
                key_changed: false,
            })
        })
    }

    /// Starts a PQXDH session with `account` unless one exists.
    pub(crate) async fn ensure_session(&mut self, account: AccountId) -> Result<(), ContactError> {
        let peer = Address::new(account.0, PRIMARY_DEVICE);
        if self
            .store
            .session(&db_address(peer))
            .map_err(StateError::from)?
            .is_some()
        {
            return Ok(());
        }
        let identity = account
            .identity_key()
            .map_err(|_| ContactError::InvalidBundle)?;
        let bundle = match self
            .anon_request(Request::FetchBundle {
                address: wire::Address {
                    account: account.0,
                    device: PRIMARY_DEVICE,
                },
            })
            .await?
        {
            Response::Bundle(b) => b,
            _ => return Err(ContactError::Relay(RequestError::UnexpectedResponse)),
        };
        let bundle = to_protocol_bundle(peer, &bundle).ok_or(ContactError::InvalidBundle)?;
        let verified = bundle
            .verify(&identity)
            .map_err(|_| ContactError::InvalidBundle)?;
        let session = Session::initiate(&mut OsRng, &self.identity, self.address(), &verified)
            .map_err(|_| ContactError::Initiate)?;
        self.store
            .put_session(&db_address(peer), &session.to_bytes(), now_ms())
            .map_err(StateError::from)?;
        Ok(())
    }

    /// All contacts, oldest first.
    pub fn contacts(&self) -> Result<Vec<Contact>, StateError> {
        Ok(self.store.contacts()?)
    }

    /// A contact by username or by the 64-hex-digit id.
    pub fn find_contact(&self, name_or_id: &str) -> Result<Option<Contact>, StateError> {
        if let Some(c) = self.store.contact_by_username(name_or_id)? {
            return Ok(Some(c));
        }
        match parse_account_hex(name_or_id) {
            Some(a) => Ok(self.store.contact(&sotto_store::AccountId(a))?),
            None => Ok(None),
        }
    }

    fn known_contact(&self, contact: &sotto_store::AccountId) -> Result<Contact, VerifyError> {
        self.store
            .contact(contact)
            .map_err(StateError::from)?
            .ok_or(VerifyError::UnknownContact)
    }

    /// Blocks or unblocks a contact: messages from a blocked contact are discarded unread.
    pub fn set_blocked(
        &mut self,
        contact: &sotto_store::AccountId,
        blocked: bool,
    ) -> Result<(), VerifyError> {
        let mut c = self.known_contact(contact)?;
        c.blocked = blocked;
        self.store.update_contact(&c).map_err(StateError::from)?;
        Ok(())
    }

    /// Accepts a message request (or declines it).
    pub fn answer_request(
        &mut self,
        contact: &sotto_store::AccountId,
        accept: bool,
    ) -> Result<(), VerifyError> {
        let mut c = self.known_contact(contact)?;
        c.request = if accept {
            MessageRequest::Accepted
        } else {
            MessageRequest::Declined
        };
        self.store.update_contact(&c).map_err(StateError::from)?;
        Ok(())
    }

    /// Deletes a contact with its conversation, messages and key history.
    pub fn delete_contact(&mut self, contact: &sotto_store::AccountId) -> Result<(), VerifyError> {
        let c = self.known_contact(contact)?;
        let account = contact_account(&c)?;
        self.store.atomically(|s| {
            s.delete_session(&db_address(Address::new(account.0, c.device_id)))?;
            s.delete_contact(contact)?;
            Ok::<_, StateError>(())
        })?;
        Ok(())
    }

    /// Runs `f` on the safety-number inputs for a contact: our account id and identity key
    /// encoding, then theirs (docs/PROTOCOL.md: account id bytes as the stable identifier,
    /// the identity key's versioned encoding as the key).
    fn with_fingerprint_inputs<T>(
        &self,
        contact: &sotto_store::AccountId,
        f: impl FnOnce(&[u8], &[u8], &[u8], &[u8]) -> T,
    ) -> Result<T, VerifyError> {
        let c = self.known_contact(contact)?;
        let remote = contact_account(&c)?;
        let remote_key = remote
            .identity_key()
            .map_err(|_| StateError::corrupt())?
            .encode();
        let local = self.identity.public();
        Ok(f(
            &local.account_id().0,
            &local.encode(),
            &remote.0,
            &remote_key,
        ))
    }

    /// The 60-digit safety number with a contact's current key.
    pub fn safety_number(&self, contact: &sotto_store::AccountId) -> Result<String, VerifyError> {
        self.with_fingerprint_inputs(contact, safety::safety_number)
    }

    /// Our verification QR payload for a contact.
    pub fn verification_payload(
        &self,
        contact: &sotto_store::AccountId,
    ) -> Result<Vec<u8>, VerifyError> {
        self.with_fingerprint_inputs(contact, |a, b, c, d| {
            ScannableFingerprint::new(a, b, c, d).encode().to_vec()
        })
    }

    /// Compares a payload scanned from the contact's screen (constant time). A match marks
    /// the contact verified by QR code; a mismatch changes nothing.
    pub fn verify_scanned(
        &mut self,
        contact: &sotto_store::AccountId,
        scanned: &[u8],
    ) -> Result<(), VerifyError> {
        let result = self.with_fingerprint_inputs(contact, |a, b, c, d| {
            ScannableFingerprint::new(a, b, c, d).compare(scanned)
        })?;
        match result {
            ScanResult::Match => {
                self.store
                    .set_verified(contact, VerifiedHow::QrCode)
                    .map_err(StateError::from)?;
                Ok(())
            }
            ScanResult::Mismatch => Err(VerifyError::Mismatch),
            ScanResult::WrongVersion(_) | ScanResult::Malformed => {
                Err(VerifyError::NotAVerificationCode)
            }
        }
    }

    /// Marks a contact verified after the user compared the safety numbers by hand, or
    /// (`verified = false`) back to unverified; either way a key change is acknowledged.
    pub fn set_verified(
        &mut self,
        contact: &sotto_store::AccountId,
        verified: bool,
    ) -> Result<(), VerifyError> {
        let how = if verified {
            VerifiedHow::SafetyNumber
        } else {
            VerifiedHow::FirstUse
        };
        self.store.set_verified(contact, how).map_err(|e| match e {
            sotto_store::QueryError::NotFound => VerifyError::UnknownContact,
            e => StateError::from(e).into(),
        })
    }

    /// Checks whether a contact's username still resolves to the pinned key; records a
    /// change (contact marked `Changed`) and returns whether one happened.
    pub async fn refresh_contact(
        &mut self,
        contact: &sotto_store::AccountId,
    ) -> Result<bool, ContactError> {
        let c = self
            .store
            .contact(contact)
            .map_err(StateError::from)?
            .ok_or(ContactError::NotFound)?;
        let Some(username) = c.username.clone() else {
            return Ok(false);
        };
        let account = self.lookup(&username).await?;
        if account == contact_account(&c)? {
            return Ok(false);
        }
        let added = self.pin_contact(&username, account)?;
        self.ensure_session(account).await?;
        Ok(added.key_changed)
    }
}

/// `HOST:PORT` of a relay URL (what invites carry).
pub(crate) fn relay_host(url: &str) -> &str {
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"))
        .unwrap_or(url);
    rest.split('/').next().unwrap_or(rest)
}

fn same_relay(invite_relay: &str, url: &str) -> bool {
    invite_relay.eq_ignore_ascii_case(relay_host(url))
}

/// Parses a 64-hex-digit account id.
pub fn parse_account_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Formats an account id as 64 lowercase hex digits.
pub fn account_hex(a: &[u8; 32]) -> String {
    a.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_hosts_and_hex_ids() {
        assert_eq!(relay_host("ws://127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(
            relay_host("wss://relay.example:443/v1"),
            "relay.example:443"
        );
        assert!(same_relay("RELAY.example:443", "wss://relay.example:443"));
        let a = [0xAB; 32];
        assert_eq!(parse_account_hex(&account_hex(&a)), Some(a));
        assert_eq!(parse_account_hex("zz"), None);
        assert_eq!(parse_account_hex(&"g".repeat(64)), None);
    }
}
