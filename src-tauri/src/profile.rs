//! Which profile folder this instance runs on: `--profile DIR`, else `SOTTO_PROFILE`, else the
//! platform data folder. Several profiles can run side by side, one instance each.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The profile folder of this app instance.
#[derive(Debug, Clone)]
pub struct Profile {
    dir: PathBuf,
}

/// Why no profile folder could be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `--profile` was given without a folder after it.
    #[error("--profile needs a folder, for example: --profile ~/sotto-work")]
    MissingValue,
    /// The platform has no per-user data folder and none was given.
    #[error("no data folder is known for this user; start with --profile DIR")]
    NoDataDir,
    /// The folder could not be created.
    #[error("the profile folder {path} could not be created: {source}")]
    Create {
        /// The folder we tried to create.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl Profile {
    /// Chooses and creates the profile folder from the command line and environment.
    pub fn from_args_and_env(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ProfileError> {
        let dir = match profile_arg(args)? {
            Some(dir) => dir,
            None => match env("SOTTO_PROFILE").filter(|value| !value.is_empty()) {
                Some(dir) => PathBuf::from(dir),
                None => default_dir()?,
            },
        };
        std::fs::create_dir_all(&dir).map_err(|source| ProfileError::Create {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The folder holding this profile's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn profile_arg(args: impl IntoIterator<Item = OsString>) -> Result<Option<PathBuf>, ProfileError> {
    let mut args = args.into_iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--profile" {
            return args
                .next()
                .map(PathBuf::from)
                .map(Some)
                .ok_or(ProfileError::MissingValue);
        }
        if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--profile=")) {
            return Ok(Some(PathBuf::from(value)));
        }
    }
    Ok(None)
}

fn default_dir() -> Result<PathBuf, ProfileError> {
    directories::ProjectDirs::from("org", "Sotto", "Sotto")
        .map(|dirs| dirs.data_dir().join("profiles").join("default"))
        .ok_or(ProfileError::NoDataDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flag_wins_over_environment() {
        let tmp = std::env::temp_dir().join(format!("sotto-profile-test-{}", std::process::id()));
        let flag = tmp.join("flag");
        let profile =
            Profile::from_args_and_env(args(&["app", "--profile", flag.to_str().unwrap()]), |_| {
                Some(tmp.join("env").into_os_string())
            })
            .unwrap();
        assert_eq!(profile.dir(), flag);
        assert!(flag.is_dir());
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn equals_form_and_environment_are_read() {
        assert_eq!(
            profile_arg(args(&["app", "--profile=/x/y"])).unwrap(),
            Some(PathBuf::from("/x/y"))
        );
        let tmp = std::env::temp_dir().join(format!("sotto-profile-env-{}", std::process::id()));
        let profile =
            Profile::from_args_and_env(args(&["app"]), |_| Some(tmp.clone().into_os_string()))
                .unwrap();
        assert_eq!(profile.dir(), tmp);
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn dangling_flag_is_an_error() {
        assert!(matches!(
            profile_arg(args(&["app", "--profile"])),
            Err(ProfileError::MissingValue)
        ));
    }
}
