//! The `auth` block of the NATS inputs and outputs: which method, and the files it reads once
//! before anything connects.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{Secret, Validator};

/// NATS authentication: at most one method.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// A file holding an NKey seed (`SU...`), for servers that list the user's public NKey.
    #[serde(default)]
    pub nkey_file: Option<PathBuf>,
    /// A token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// User name, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, with `user`.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// A file named in the `auth` block that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// The file cannot be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a `.creds` file the client can use.
    #[error("{}: {source}", file.display())]
    Credentials {
        /// The file.
        file: PathBuf,
        /// The client's reason.
        source: std::io::Error,
    },
    /// No line of the file is a user NKey seed.
    #[error("{}: no user NKey seed (a line starting SU)", file.display())]
    NoSeed {
        /// The file.
        file: PathBuf,
    },
    /// The seed found is not a valid one.
    #[error("{}: not a valid NKey seed: {source}", file.display())]
    BadSeed {
        /// The file.
        file: PathBuf,
        /// Why.
        source: nkeys::error::Error,
    },
}

impl NatsAuth {
    pub(super) fn is_set(&self) -> bool {
        self.credentials_file.is_some()
            || self.nkey_file.is_some()
            || self.token.is_some()
            || self.user.is_some()
    }

    /// Checks that the methods given make sense together, and reads the NKey seed and the
    /// credentials file; None when something is wrong.
    pub(super) fn build(&self, path: &str, v: &mut Validator<'_>) -> Option<Secrets> {
        let before = v.errors.len();
        let methods = [
            self.credentials_file.is_some(),
            self.nkey_file.is_some(),
            self.token.is_some(),
            self.user.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            v.error_at(
                path,
                "give only one of credentials_file, nkey_file, token, or user and password",
            );
        }
        if self.user.is_some() != self.password.is_some() {
            v.error_at(path, "user and password go together");
        }
        let nkey = self.nkey_file.as_ref().and_then(|file| {
            nkey_seed(file)
                .map_err(|e| v.error_at(&format!("{path}.nkey_file"), e.to_string()))
                .ok()
        });
        let credentials = self.credentials_file.as_ref().and_then(|file| {
            credentials(file)
                .map_err(|e| v.error_at(&format!("{path}.credentials_file"), e.to_string()))
                .ok()
        });
        (v.errors.len() == before).then_some(Secrets { nkey, credentials })
    }
}

/// What authentication takes from files.
pub(super) struct Secrets {
    /// The NKey seed of `nkey_file`.
    pub(super) nkey: Option<String>,
    /// The text of `credentials_file`.
    pub(super) credentials: Option<String>,
}

fn read(file: &Path) -> Result<String, AuthFileError> {
    std::fs::read_to_string(file).map_err(|source| AuthFileError::Read {
        file: file.to_path_buf(),
        source,
    })
}

/// The text of a `.creds` file, checked to hold a user JWT and NKey seed.
fn credentials(file: &Path) -> Result<String, AuthFileError> {
    let text = read(file)?;
    async_nats::ConnectOptions::new()
        .credentials(&text)
        .map_err(|source| AuthFileError::Credentials {
            file: file.to_path_buf(),
            source,
        })?;
    Ok(text)
}

/// The NKey seed in `file`: its first line that is a seed (nsc writes comments around it).
fn nkey_seed(file: &Path) -> Result<String, AuthFileError> {
    let text = read(file)?;
    let seed = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SU"))
        .ok_or_else(|| AuthFileError::NoSeed {
            file: file.to_path_buf(),
        })?;
    nkeys::KeyPair::from_seed(seed).map_err(|source| AuthFileError::BadSeed {
        file: file.to_path_buf(),
        source,
    })?;
    Ok(seed.to_string())
}
