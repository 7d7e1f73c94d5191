//! The stored login: gateway URL, access and refresh tokens and the current tenant, kept in
//! `$XDG_CONFIG_HOME/switchboard/session.json` (or `~/.config/switchboard/session.json`),
//! readable by its owner only.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the session inside the configuration folder.
pub const SESSION_FILE: &str = "session.json";

/// A logged-in session.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Base URL of the gateway the tokens belong to.
    pub url: String,
    /// The user's e-mail address, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Bearer token for API calls.
    pub access_token: String,
    /// Single-use token to get a new access token.
    pub refresh_token: String,
    /// Slug of the tenant that tenant-scoped commands use by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

// Tokens are secrets: never print them, even in debug output.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.url)
            .field("email", &self.email)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// Why the session file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("cannot find a configuration folder: set XDG_CONFIG_HOME or HOME, or pass --config")]
    NoConfigDir,
    /// Reading or writing failed.
    #[error("cannot use {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a session.
    #[error("{path} is not a valid session file (delete it and log in again)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Where the session lives, and how it is read and written.
#[derive(Clone, Debug)]
pub struct SessionStore {
    path: PathBuf,
}

impl SessionStore {
    /// A store at an explicit file path.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The default store: `$XDG_CONFIG_HOME/switchboard/session.json`, falling back to
    /// `$HOME/.config/switchboard/session.json` as the XDG base-directory spec says.
    pub fn from_environment() -> Result<Self, SessionError> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let base = match (non_empty("XDG_CONFIG_HOME"), non_empty("HOME")) {
            (Some(xdg), _) => PathBuf::from(xdg),
            (None, Some(home)) => PathBuf::from(home).join(".config"),
            (None, None) => return Err(SessionError::NoConfigDir),
        };
        Ok(Self::at(base.join("switchboard").join(SESSION_FILE)))
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored session, or `None` when nobody is logged in.
    pub fn load(&self) -> Result<Option<Session>, SessionError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| SessionError::Corrupt {
                        path: self.path.clone(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.io(source)),
        }
    }

    /// Stores `session`, replacing the file atomically (a crash leaves the old or the new
    /// file, never half of one) with owner-only permissions from the first byte.
    pub fn save(&self, session: &Session) -> Result<(), SessionError> {
        let folder = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(folder).map_err(|source| SessionError::Io {
            path: folder.to_path_buf(),
            source,
        })?;
        let body = serde_json::to_vec_pretty(session).map_err(|source| SessionError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        let temporary = self
            .path
            .with_extension(format!("json.tmp-{}", std::process::id()));
        let written =
            write_private(&temporary, &body).and_then(|()| std::fs::rename(&temporary, &self.path));
        if let Err(source) = written {
            // Best effort: do not leave a token-bearing temporary file behind.
            let _ = std::fs::remove_file(&temporary);
            return Err(self.io(source));
        }
        Ok(())
    }

    /// Deletes the session; `false` when there was none.
    pub fn clear(&self) -> Result<bool, SessionError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(self.io(source)),
        }
    }

    fn io(&self, source: std::io::Error) -> SessionError {
        SessionError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(unix)]
fn create_private_dir(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

#[cfg(not(unix))]
fn create_private_dir(folder: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)
}

/// Writes a new file that only its owner can read (mode 0600 on Unix, set at creation so
/// the tokens are never readable by others, not even briefly).
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(body)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Session {
        Session {
            url: "http://127.0.0.1:8080".into(),
            email: Some("a@example.com".into()),
            access_token: "secret-access".into(),
            refresh_token: "secret-refresh".into(),
            tenant: Some("acme".into()),
        }
    }

    #[test]
    fn saves_loads_and_clears_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::at(dir.path().join("nested/switchboard/session.json"));
        assert_eq!(store.load().unwrap(), None);
        store.save(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(store.path().parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        assert!(store.clear().unwrap());
        assert!(!store.clear().unwrap());
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn debug_output_hides_tokens() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn a_corrupt_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.json");
        std::fs::write(&path, "not json").unwrap();
        let error = SessionStore::at(&path).load().unwrap_err();
        assert!(error.to_string().contains("session.json"), "{error}");
    }
}
