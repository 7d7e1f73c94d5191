//! The tenant resource commands (clap definitions and what they do), one module per resource,
//! each over the typed [`crate::client`]. Every command prints the API's JSON with `--json`
//! and a table or a sentence otherwise.

pub mod access;
pub mod agents;
pub mod billing;
pub mod calls;
pub mod campaigns;
pub mod credentials;
pub mod numbers;
pub mod webhooks;

use std::path::Path;

use clap::Args;

use crate::commands::{CommandError, Context};

/// `--tenant` (or `SWITCHBOARD_TENANT`); the session's tenant when absent.
#[derive(Args, Debug, Clone)]
pub struct TenantArg {
    /// Tenant [default: the session's].
    #[arg(long, env = "SWITCHBOARD_TENANT")]
    pub tenant: Option<String>,
}

impl TenantArg {
    /// The tenant slug to act on.
    pub fn resolve(&self, context: &Context) -> Result<String, CommandError> {
        context.tenant(self.tenant.as_deref())
    }
}

/// Reads a file named on the command line (`-`: standard input), at most `limit` bytes.
pub fn read_input(path: &Path, limit: u64) -> Result<String, CommandError> {
    use std::io::Read as _;
    let io = |source| CommandError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(limit + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
    } else {
        std::fs::File::open(path)
            .map_err(io)?
            .take(limit + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
    }
    if text.len() as u64 > limit {
        return Err(CommandError::Invalid {
            flag: "file",
            message: format!("{} is larger than {limit} bytes", path.display()),
        });
    }
    Ok(text)
}

/// A JSON object read from a file (`--file`).
pub fn read_object(
    path: &Path,
    flag: &'static str,
) -> Result<serde_json::Map<String, serde_json::Value>, CommandError> {
    let text = read_input(path, 1024 * 1024)?;
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(CommandError::Invalid {
            flag,
            message: "expected a JSON object".to_owned(),
        }),
        Err(e) => Err(CommandError::Invalid {
            flag,
            message: format!("not JSON: {e}"),
        }),
    }
}
