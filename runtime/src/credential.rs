//! The runtime credential: the bearer token the runtime presents on the gateway's
//! `/internal/v1/events`.
//!
//! In Kubernetes the operator mounts the tenant's `runtime-credential` Secret as a file
//! (`SWITCHBOARD_INTERNAL_TOKEN_FILE`). The gateway invalidates the old credential the moment
//! it is rotated (`POST …/runtime-credential/rotate`) and writes the new one into the Secret;
//! the kubelet then refreshes the mounted file in place. Reading the file on every delivery
//! attempt (it is a few bytes, and attempts are at most a few per second) lets a running
//! runtime pick up the rotated credential without a restart. A token given directly
//! (`SWITCHBOARD_INTERNAL_TOKEN`, standalone and development) is fixed for the process's life.

use std::path::PathBuf;

use crate::config::Secret;

/// Where the runtime's token comes from.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A fixed token: a rotation needs a restart.
    Fixed(Secret),
    /// A mounted file, re-read on every use.
    File(PathBuf),
}

impl Credential {
    /// The token in force now; `None` (logged) when the file cannot be read or is empty, so
    /// the request goes out unauthenticated, is refused, and is retried.
    pub fn current(&self) -> Option<Secret> {
        match self {
            Self::Fixed(secret) => Some(secret.clone()),
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim())),
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "runtime credential file is empty");
                    None
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot read the runtime credential file");
                    None
                }
            },
        }
    }

    /// Whether the token can change while the process runs: then a refusal (401) may be a
    /// rotation the mounted file has not caught up with yet, worth retrying.
    pub fn refreshes(&self) -> bool {
        matches!(self, Self::File(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_credential_follows_the_file_and_a_fixed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "sbrt1.t.1.mac\n").unwrap();
        let file = Credential::File(path.clone());
        assert_eq!(file.current(), Some(Secret::new("sbrt1.t.1.mac")));
        std::fs::write(&path, "sbrt1.t.2.mac").unwrap();
        assert_eq!(file.current(), Some(Secret::new("sbrt1.t.2.mac")));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.current(), None);
        assert!(file.refreshes());

        let fixed = Credential::Fixed(Secret::new("fixed"));
        assert_eq!(fixed.current(), Some(Secret::new("fixed")));
        assert!(!fixed.refreshes());
    }
}
