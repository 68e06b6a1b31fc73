//! Opening and creating the profile database: the OS keyring by default, or passphrase mode
//! with the passphrase from `--passphrase-file` or `SOTTO_PASSPHRASE`.

use std::path::{Path, PathBuf};

use sotto_store::{KdfParams, KeyMode, KeyProtection, OpenError, Passphrase, Store};
use zeroize::Zeroizing;

use crate::exit::{CliError, Code};

/// Where the passphrase comes from, if anywhere.
pub struct Secrets {
    pub passphrase_file: Option<PathBuf>,
}

impl Secrets {
    /// The passphrase from the file (first line) or the environment, if given.
    pub fn passphrase(&self) -> Result<Option<Passphrase>, CliError> {
        if let Some(path) = &self.passphrase_file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                CliError::new(
                    Code::Locked,
                    format!("cannot read the passphrase file: {}", e.kind()),
                )
            })?);
            let line = text.lines().next().unwrap_or("");
            return Ok(Some(non_empty(line)?));
        }
        match std::env::var("SOTTO_PASSPHRASE") {
            Ok(v) => {
                let v = Zeroizing::new(v);
                Ok(Some(non_empty(&v)?))
            }
            Err(_) => Ok(None),
        }
    }
}

fn non_empty(s: &str) -> Result<Passphrase, CliError> {
    if s.is_empty() {
        return Err(CliError::new(Code::Locked, "the passphrase is empty"));
    }
    Ok(Passphrase::new(Zeroizing::new(s.to_owned())))
}

/// The profile folder: `--profile DIR`, else `SOTTO_PROFILE`, else the platform data folder.
pub fn profile_dir(arg: Option<PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(p) = arg.or_else(|| std::env::var_os("SOTTO_PROFILE").map(PathBuf::from)) {
        return Ok(p);
    }
    directories::ProjectDirs::from("org", "Sotto", "sotto-cli")
        .map(|d| d.data_dir().join("default"))
        .ok_or_else(|| CliError::new(Code::Failure, "no home folder; pass --profile DIR"))
}

/// Creates a new profile: passphrase mode if a passphrase was given, else the OS keyring.
pub fn create(dir: &Path, secrets: &Secrets) -> Result<Store, CliError> {
    let passphrase = secrets.passphrase()?;
    let protection = match &passphrase {
        Some(p) => KeyProtection::Passphrase(p, KdfParams::default()),
        None => KeyProtection::Keyring,
    };
    Store::create(dir, protection).map_err(|e| match e {
        sotto_store::CreateError::Keyring(k) => CliError::new(
            Code::Locked,
            format!(
                "{k}\nTo use passphrase mode, pass --passphrase-file FILE or set SOTTO_PASSPHRASE."
            ),
        ),
        sotto_store::CreateError::AlreadyExists => {
            CliError::new(Code::Failure, "a profile already exists in this folder")
        }
        e => CliError::new(Code::Failure, e.to_string()),
    })
}

/// Opens an existing profile in whichever mode it uses.
pub fn open(dir: &Path, secrets: &Secrets) -> Result<Store, CliError> {
    let mode = sotto_store::key_mode(dir).map_err(open_error)?;
    let store = match mode {
        KeyMode::Keyring => Store::open_with_keyring(dir),
        KeyMode::Passphrase => {
            let p = secrets.passphrase()?.ok_or_else(|| {
                CliError::new(
                    Code::Locked,
                    "this profile is protected by a passphrase: pass --passphrase-file FILE or \
                     set SOTTO_PASSPHRASE",
                )
            })?;
            Store::open_with_passphrase(dir, &p)
        }
    };
    store.map_err(open_error)
}

fn open_error(e: OpenError) -> CliError {
    match e {
        OpenError::NoProfile => CliError::new(
            Code::NotFound,
            "no Sotto profile in this folder (create one with `sotto init`)",
        ),
        OpenError::Keyring(_) | OpenError::KeyFile(_) => CliError::new(Code::Locked, e.to_string()),
        e => CliError::new(Code::Failure, e.to_string()),
    }
}
