//! Checks a stored credential against its vendor (`POST …/credentials/{id}/test`): one cheap,
//! read-only authenticated request per vendor, judged by the answer's status.
//!
//! | vendor | request |
//! | --- | --- |
//! | `openai`, `groq`, `openai-compatible` | `GET {base}/models`, `Authorization: Bearer` |
//! | `deepgram` | `GET {base}/projects`, `Authorization: Token` |
//! | `elevenlabs` | `GET {base}/user`, `xi-api-key` |
//! | `twilio` | `GET {base}/Accounts/{account_sid}.json`, basic auth |
//! | `telnyx` | `GET {base}/balance`, `Authorization: Bearer` |
//!
//! `openai-compatible` is checked at its own `metadata.base_url` only (the URL its key is bound
//! to). Requests go through the outbound-guarded client (no redirects, public addresses
//! unless `SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE`). The key is never part of a result or a log:
//! a transport error is reported without its URL, a vendor's refusal by status alone.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::voice_config::VoiceConfig;

/// How long the vendor may take to answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Default API bases (overridable with `SWITCHBOARD_PROVIDER_API_BASES`, e.g. for tests).
const OPENAI_BASE: &str = "https://api.openai.com/v1";
const GROQ_BASE: &str = "https://api.groq.com/openai/v1";
const DEEPGRAM_BASE: &str = "https://api.deepgram.com/v1";
const ELEVENLABS_BASE: &str = "https://api.elevenlabs.io/v1";

/// The verdict of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// The vendor accepted the key.
    Ok,
    /// The vendor refused the key (401 or 403).
    Rejected,
    /// The vendor could not be reached, or answered with another error.
    Unreachable,
}

/// The result of a check, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// `ok`, `rejected` or `unreachable`.
    pub result: Verdict,
    /// The vendor's HTTP status, when it answered.
    pub vendor_status: Option<u16>,
    /// What happened, for a person (never contains the key).
    pub message: String,
}

/// A credential that cannot be checked as stored.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A setting the vendor's check needs is missing from the metadata.
    #[error("metadata.{0} is required to test this credential")]
    MissingMetadata(&'static str),
}

fn base_for<'a>(config: &'a VoiceConfig, vendor: &str, default: &'a str) -> &'a str {
    config
        .provider_api_bases
        .iter()
        .find_map(|entry| {
            let (name, base) = entry.split_once('=')?;
            (name.trim() == vendor).then_some(base.trim())
        })
        .unwrap_or(default)
        .trim_end_matches('/')
}

/// Checks `secret` of a `provider` credential with `metadata` against its vendor.
pub async fn check(
    client: &reqwest::Client,
    config: &VoiceConfig,
    provider: &str,
    secret: &str,
    metadata: &BTreeMap<String, String>,
) -> Result<CheckResult, CheckError> {
    let request = match provider {
        "openai" | "groq" | "openai-compatible" => {
            let base = match provider {
                "openai" => base_for(config, "openai", OPENAI_BASE).to_owned(),
                "groq" => base_for(config, "groq", GROQ_BASE).to_owned(),
                _ => metadata
                    .get("base_url")
                    .ok_or(CheckError::MissingMetadata("base_url"))?
                    .trim_end_matches('/')
                    .to_owned(),
            };
            client.get(format!("{base}/models")).bearer_auth(secret)
        }
        "deepgram" => client
            .get(format!(
                "{}/projects",
                base_for(config, "deepgram", DEEPGRAM_BASE)
            ))
            .header("authorization", format!("Token {secret}")),
        "elevenlabs" => client
            .get(format!(
                "{}/user",
                base_for(config, "elevenlabs", ELEVENLABS_BASE)
            ))
            .header("xi-api-key", secret),
        "twilio" => {
            let sid = metadata
                .get("account_sid")
                .ok_or(CheckError::MissingMetadata("account_sid"))?;
            client
                .get(format!(
                    "{}/Accounts/{sid}.json",
                    config.twilio_api_base.trim_end_matches('/')
                ))
                .basic_auth(sid, Some(secret))
        }
        "telnyx" => client
            .get(format!(
                "{}/balance",
                config.telnyx_api_base.trim_end_matches('/')
            ))
            .bearer_auth(secret),
        _ => {
            return Ok(CheckResult {
                result: Verdict::Unreachable,
                vendor_status: None,
                message: format!("no check is known for {provider}"),
            });
        }
    };
    Ok(match request.timeout(CHECK_TIMEOUT).send().await {
        Err(error) => CheckResult {
            result: Verdict::Unreachable,
            vendor_status: None,
            message: format!("{provider} could not be reached: {}", error.without_url()),
        },
        Ok(response) => {
            let status = response.status();
            let (result, message) = if status.is_success() {
                (Verdict::Ok, format!("{provider} accepted the key"))
            } else if status.as_u16() == 401 || status.as_u16() == 403 {
                (
                    Verdict::Rejected,
                    format!("{provider} rejected the key (HTTP {})", status.as_u16()),
                )
            } else {
                (
                    Verdict::Unreachable,
                    format!("{provider} answered HTTP {}", status.as_u16()),
                )
            };
            CheckResult {
                result,
                vendor_status: Some(status.as_u16()),
                message,
            }
        }
    })
}
