//! Making a profile restored from a backup safe to use (docs/CLIENT.md, "Restored profiles").
//!
//! The backup may be older than what the old device did afterwards: its ratchet sessions are
//! stale (the import already leaves them out, see `sotto_store::backup`), and the relay may
//! hold prekeys that the old device uploaded after the export, whose secrets the restored
//! profile does not have. On its first connection the restored profile therefore replaces
//! its signed prekey and last-resort ML-KEM prekey and uploads fresh one-time stocks, all
//! under ids allocated past a gap, before it sends or receives anything.

use sotto_store::backup::RESTORED_MARKER;

use crate::engine::{Client, SetupError};
use crate::state::{self, StateError, keys};

/// Prekey ids skipped after a restore. The old device may have allocated ids after the
/// export from the same counter; ids allocated here must not repeat them, or a session start
/// naming one of the old device's keys would be tried against a different secret of ours.
/// Every upload allocates at most a few dozen ids, so a million is far beyond what an old
/// device can have used.
const RESTORE_ID_GAP: u32 = 1 << 20;

impl Client {
    /// Whether this profile was restored from a backup and has not yet replaced its prekeys
    /// on the relay.
    pub fn needs_restore_refresh(&self) -> Result<bool, StateError> {
        Ok(self.store.setting(RESTORED_MARKER)?.is_some())
    }

    /// After a backup import: moves the prekey id counter past a gap, uploads a new signed
    /// prekey, a new last-resort ML-KEM prekey and full one-time stocks (the relay replaces
    /// its signed and last-resort keys; one-time keys are added), and only then clears the
    /// marker, so an interrupted refresh is redone on the next connection. Returns whether a
    /// refresh was done. Called by [`Client::connect`].
    pub async fn finish_restore(&mut self) -> Result<bool, SetupError> {
        if !self.needs_restore_refresh()? {
            return Ok(false);
        }
        let next = state::get_u32(&self.store, keys::NEXT_PREKEY_ID)?
            .unwrap_or(1)
            .max(1)
            .checked_add(RESTORE_ID_GAP)
            .ok_or_else(StateError::corrupt)?;
        state::put_u32(&self.store, keys::NEXT_PREKEY_ID, next)?;
        self.register().await?;
        self.store
            .delete_setting(RESTORED_MARKER)
            .map_err(StateError::from)?;
        Ok(true)
    }
}
