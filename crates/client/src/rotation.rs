//! Scheduled signed-prekey rotation. The current signed prekey is replaced once it is
//! [`ROTATE_AFTER`] old; replaced ones stay in the profile for [`RETIRED_GRACE`] so
//! PreKeyMessages started against them (from a bundle fetched before the rotation) still
//! decrypt, then their private keys are deleted. 30 days is the relay's default time to keep
//! an undelivered envelope, so an envelope sealed just before a rotation can still be opened
//! when it is finally delivered.

use std::time::Duration;

use rand_core::OsRng;
use sotto_protocol::SignedPreKeySecret;
use sotto_relay_wire::{self as wire, Request};
use sotto_store::{PrekeyKind, Store, Timestamp};

use crate::engine::{Client, SetupError};
use crate::prekey_codec::encode_signed;
use crate::state::{self, StateError, keys};

/// Age at which the signed prekey is replaced.
pub const ROTATE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a replaced signed prekey's private key is kept.
pub const RETIRED_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often the event pump checks whether rotation is due (also checked on every connect).
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);

fn ms(d: Duration) -> Timestamp {
    Timestamp::try_from(d.as_millis()).unwrap_or(Timestamp::MAX)
}

/// Whether a signed prekey made at `created_at_ms` should be replaced at `now_ms`. A key of
/// unknown age (made before ages were recorded) is due; a clock that went backwards is not.
pub fn rotation_due(created_at_ms: Option<Timestamp>, now_ms: Timestamp) -> bool {
    created_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= ms(ROTATE_AFTER))
}

/// Whether a signed prekey replaced at `retired_at_ms` may be deleted at `now_ms`.
pub fn grace_over(retired_at_ms: Timestamp, now_ms: Timestamp) -> bool {
    now_ms.saturating_sub(retired_at_ms) >= ms(RETIRED_GRACE)
}

/// Replaced signed prekeys still kept: `(id, retired_at_ms)`, stored as 12-byte big-endian
/// records.
fn retired(store: &Store) -> Result<Vec<(u32, Timestamp)>, StateError> {
    let Some(bytes) = store.setting(keys::SIGNED_PREKEY_RETIRED)? else {
        return Ok(Vec::new());
    };
    if bytes.len() % 12 != 0 {
        return Err(StateError::corrupt());
    }
    bytes
        .chunks_exact(12)
        .map(|r| {
            let (id, at) = r.split_at(4);
            Ok((
                u32::from_be_bytes(id.try_into().map_err(|_| StateError::corrupt())?),
                Timestamp::from_be_bytes(at.try_into().map_err(|_| StateError::corrupt())?),
            ))
        })
        .collect()
}

fn put_retired(store: &Store, list: &[(u32, Timestamp)]) -> Result<(), StateError> {
    let bytes: Vec<u8> = list
        .iter()
        .flat_map(|(id, at)| id.to_be_bytes().into_iter().chain(at.to_be_bytes()))
        .collect();
    Ok(store.put_setting(keys::SIGNED_PREKEY_RETIRED, &bytes)?)
}

impl Client {
    /// Generates and uploads a new signed prekey and makes it current; the previous one is
    /// kept for [`RETIRED_GRACE`] so session starts made against it still work. Returns the
    /// new id.
    pub async fn rotate_signed_prekey(&mut self) -> Result<u32, SetupError> {
        self.rotate_signed_prekey_at(state::now_ms()).await
    }

    async fn rotate_signed_prekey_at(&mut self, now: Timestamp) -> Result<u32, SetupError> {
        if self.auth.is_none() {
            return Err(SetupError::NotConnected);
        }
        let id = state::allocate_prekey_ids(&mut self.store, 1)?;
        let spk = SignedPreKeySecret::generate(&mut OsRng, &self.identity, id);
        // The secret is saved before the relay can hand the public key out, listed as
        // replaced until the relay took it: after a crash or a lost answer the relay may hold
        // a key whose sessions we must still answer, and the grace period deletes it later.
        self.store.atomically(|s| {
            s.put_prekey(PrekeyKind::Signed, id, &spk.to_bytes(), now)?;
            let mut list = retired(s)?;
            list.push((id, now));
            put_retired(s, &list)
        })?;
        self.auth_request(Request::UploadSignedPrekey(wire::Prekey {
            id,
            bytes: encode_signed(&spk.public()),
        }))
        .await?;
        self.store.atomically(|s| {
            let mut list = retired(s)?;
            list.retain(|(r, _)| *r != id);
            if let Some(old) = state::get_u32(s, keys::SIGNED_PREKEY)? {
                list.push((old, now));
            }
            put_retired(s, &list)?;
            state::put_u32(s, keys::SIGNED_PREKEY, id)?;
            Ok::<_, StateError>(s.put_setting(keys::SIGNED_PREKEY_AT, &now.to_be_bytes())?)
        })?;
        Ok(id)
    }

    /// Signed-prekey upkeep with the current time; see
    /// [`maintain_signed_prekey_at`](Self::maintain_signed_prekey_at). Run on every connect
    /// and reconnect and hourly by the event pump.
    pub async fn maintain_signed_prekey(&mut self) -> Result<Option<u32>, SetupError> {
        self.maintain_signed_prekey_at(state::now_ms()).await
    }

    /// Signed-prekey upkeep as of `now_ms` (an explicit clock, for tests): deletes replaced
    /// signed prekeys whose grace period is over, then rotates the current one if it is due
    /// ([`rotation_due`]). Returns the new id if it rotated. Does nothing before
    /// [`register`](Self::register).
    pub async fn maintain_signed_prekey_at(
        &mut self,
        now_ms: Timestamp,
    ) -> Result<Option<u32>, SetupError> {
        let Some(current) = state::get_u32(&self.store, keys::SIGNED_PREKEY)? else {
            return Ok(None);
        };
        self.store.atomically(|s| {
            let mut list = retired(s)?;
            // Signed prekeys replaced before retirement was recorded start their grace now.
            for id in s.prekey_ids(PrekeyKind::Signed)? {
                if id != current && !list.iter().any(|(r, _)| *r == id) {
                    list.push((id, now_ms));
                }
            }
            let mut kept = Vec::with_capacity(list.len());
            for (id, at) in list {
                if grace_over(at, now_ms) {
                    s.remove_prekey(PrekeyKind::Signed, id)?;
                    // The key can no longer start a session, so its replay tags are moot.
                    s.delete_setting(&crate::receive::replay_tags_key(id))?;
                } else {
                    kept.push((id, at));
                }
            }
            put_retired(s, &kept)
        })?;
        let created = match self
            .store
            .setting(keys::SIGNED_PREKEY_AT)
            .map_err(StateError::from)?
        {
            Some(b) => Some(Timestamp::from_be_bytes(
                b.as_slice().try_into().map_err(|_| StateError::corrupt())?,
            )),
            None => None,
        };
        if !rotation_due(created, now_ms) {
            return Ok(None);
        }
        self.rotate_signed_prekey_at(now_ms).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Timestamp = 24 * 3600 * 1000;

    #[test]
    fn rotation_is_due_after_seven_days() {
        let t0 = 1_700_000_000_000;
        assert!(!rotation_due(Some(t0), t0));
        assert!(!rotation_due(Some(t0), t0 + 7 * DAY - 1));
        assert!(rotation_due(Some(t0), t0 + 7 * DAY));
        assert!(rotation_due(Some(t0), t0 + 40 * DAY));
        // Unknown age: rotate. Clock went backwards: do not.
        assert!(rotation_due(None, t0));
        assert!(!rotation_due(Some(t0), t0 - 10 * DAY));
    }

    #[test]
    fn retired_keys_are_kept_thirty_days() {
        let t0 = 1_700_000_000_000;
        assert!(!grace_over(t0, t0));
        assert!(!grace_over(t0, t0 + 30 * DAY - 1));
        assert!(grace_over(t0, t0 + 30 * DAY));
        assert!(!grace_over(t0, t0 - DAY));
    }
}
