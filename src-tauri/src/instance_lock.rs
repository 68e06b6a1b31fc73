//! One app instance per profile: an exclusive lock on a file in the profile folder, held for the
//! life of the process (the OS releases it when the process dies, even on a crash). A second
//! profile (`--profile DIR`) has its own lock and runs beside the first.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// The held lock; dropping it releases the profile.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Why the profile could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceLockError {
    /// Another Sotto window has this profile open.
    #[error(
        "Sotto is already running with the profile in {0}. Use that window, or start another \
         profile with --profile DIR."
    )]
    InUse(String),
    /// The lock file could not be created.
    #[error("the profile folder {path} is not writable: {reason}")]
    Io {
        /// The folder.
        path: String,
        /// What the OS said.
        reason: String,
    },
}

impl InstanceLock {
    /// Claims `dir` for this process.
    pub fn acquire(dir: &Path) -> Result<Self, InstanceLockError> {
        let io = |e: std::io::Error| InstanceLockError::Io {
            path: dir.display().to_string(),
            reason: e.kind().to_string(),
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("instance.lock"))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => {
                Err(InstanceLockError::InUse(dir.display().to_string()))
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_held_by_one_instance_at_a_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let other = tempfile::tempdir().expect("temp dir");
        let first = InstanceLock::acquire(dir.path()).expect("first");
        assert!(matches!(
            InstanceLock::acquire(dir.path()),
            Err(InstanceLockError::InUse(_))
        ));
        InstanceLock::acquire(other.path()).expect("another profile runs beside it");
        drop(first);
        InstanceLock::acquire(dir.path()).expect("released when the holder ends");
    }
}
