//! Speech-to-text, language-model and text-to-speech providers, chosen per tenant.
//!
//! Each kind is an enum over the supported providers (static dispatch, no boxed futures): the
//! set is closed and known from `AgentSpec`.

pub mod deepgram;
pub mod llm;
pub mod stt;
pub mod tts;

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use switchboard_crds::credentials::{Vendor, same_base_url};

use crate::config::{AgentSnapshot, ProviderKeys, Secret};

pub use llm::{ChatMessage, Llm, LlmOutcome, ToolCall};
pub use stt::{Stt, SttEvent, SttSession, Transcript};
pub use tts::Tts;

/// Why a provider request failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider's key is not in the keys Secret.
    #[error("missing API key {0}")]
    MissingKey(&'static str),
    /// No answer within the configured timeout.
    #[error("timed out")]
    Timeout,
    /// Connection or protocol failure.
    #[error("transport: {0}")]
    Transport(String),
    /// The provider answered with an error status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The response could not be understood.
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl ProviderError {
    /// Worth one more try: the request never reached a model, or the provider was overloaded.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Transport(_) => true,
            ProviderError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<reqwest::Error> for ProviderError {
    fn from(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            ProviderError::Timeout
        } else {
            // Without the URL: it may carry query parameters we would rather not log.
            ProviderError::Transport(error.without_url().to_string())
        }
    }
}

/// The three providers of one call, built from the tenant's snapshot.
#[derive(Clone, Debug)]
pub struct Providers {
    /// Speech-to-text.
    pub stt: Stt,
    /// Language model.
    pub llm: Llm,
    /// Text-to-speech.
    pub tts: Tts,
    /// Fallback voice when the configured TTS fails.
    pub builtin_tts: Tts,
}

impl Providers {
    /// Providers for `snapshot`, sharing `http`.
    pub fn from_snapshot(snapshot: &AgentSnapshot, http: &reqwest::Client) -> Self {
        let agent = &snapshot.agent;
        Self {
            stt: Stt::from_spec(&agent.stt, &agent.language, &snapshot.keys, http),
            llm: Llm::from_spec(&agent.llm, &snapshot.keys, http),
            tts: Tts::from_spec(&agent.tts, &snapshot.keys, http),
            builtin_tts: Tts::Builtin,
        }
    }

    /// True when all three are the offline builtins: the echo agent plays the caller's own
    /// utterance back as its reply audio.
    pub fn is_echo(&self) -> bool {
        matches!(self.stt, Stt::Builtin)
            && matches!(self.llm, Llm::Builtin)
            && matches!(self.tts, Tts::Builtin)
    }
}

/// A shared HTTP client for provider calls (rustls, connection pooling across calls). A
/// tenant's agent chooses provider base URLs, so the client follows no redirects and, unless
/// `allow_private`, connects to public addresses only (`switchboard_crds::outbound`).
pub fn http_client(allow_private: bool) -> reqwest::Client {
    switchboard_crds::outbound::guarded_client(allow_private)
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_default()
}

/// The key and base URL of one stage (STT, LLM or TTS).
pub(crate) struct StageAuth {
    /// The key to send; `Err` names what is missing (reported when the stage is used).
    pub key: Result<Secret, &'static str>,
    /// The base URL the stage calls (the agent's, else the credential's, else the vendor's).
    pub base: String,
}

/// Resolves a stage's credential (`switchboard_crds::credentials`): the one labelled
/// `label` of `vendor`, else the vendor's default. An `openai-compatible` credential is sent
/// only to its own base URL: the stage calls the agent's `baseUrl` when set (the credential
/// must be bound to the same URL, or the named credential is refused and a default one is
/// left out), else the credential's. Without a credential, `key_required` stages fail with
/// `missing`; others call without a key (self-hosted servers usually need none).
pub(crate) fn stage_auth(
    keys: &ProviderKeys,
    vendor: Vendor,
    label: Option<&str>,
    agent_base: Option<&str>,
    vendor_base: &str,
    key_required: bool,
    missing: &'static str,
) -> StageAuth {
    let credential = keys.for_stage(vendor, label);
    let none = |base: String| StageAuth {
        key: if key_required || label.is_some() {
            Err(missing)
        } else {
            Ok(Secret::new(""))
        },
        base,
    };
    let Some(credential) = credential else {
        return none(agent_base.unwrap_or(vendor_base).to_owned());
    };
    if vendor != Vendor::OpenaiCompatible {
        return StageAuth {
            key: Ok(credential.secret),
            base: agent_base.unwrap_or(vendor_base).to_owned(),
        };
    }
    match (agent_base, credential.base_url.as_deref()) {
        (Some(agent), Some(bound)) if same_base_url(agent, bound) => StageAuth {
            key: Ok(credential.secret),
            base: agent.to_owned(),
        },
        (None, Some(bound)) => StageAuth {
            key: Ok(credential.secret),
            base: bound.to_owned(),
        },
        // Bound elsewhere (or to nothing): the key is never sent here.
        (agent, _) => {
            let base = agent.unwrap_or(vendor_base).to_owned();
            if label.is_some() {
                StageAuth {
                    key: Err("openai-compatible credential bound to another baseUrl"),
                    base,
                }
            } else {
                none(base)
            }
        }
    }
}

/// Key of `name`, or [`ProviderError::MissingKey`].
pub(crate) fn require_key(
    key: Option<&Secret>,
    name: &'static str,
) -> Result<Secret, ProviderError> {
    key.cloned().ok_or(ProviderError::MissingKey(name))
}

/// Fails with the status and the start of the body unless `response` is a success.
pub(crate) async fn check_status(
    response: reqwest::Response,
) -> Result<reqwest::Response, ProviderError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Err(ProviderError::Status {
        status,
        body: body.chars().take(300).collect(),
    })
}

/// Next chunk of a streaming body, failing if none arrives within `idle`.
pub(crate) async fn next_chunk<S>(
    stream: &mut S,
    idle: Duration,
) -> Result<Option<Bytes>, ProviderError>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Unpin,
{
    match tokio::time::timeout(idle, stream.next()).await {
        Err(_) => Err(ProviderError::Timeout),
        Ok(None) => Ok(None),
        Ok(Some(Ok(bytes))) => Ok(Some(bytes)),
        Ok(Some(Err(error))) => Err(error.into()),
    }
}

/// Turns an `http(s)://` base URL into the matching `ws(s)://` one.
pub(crate) fn websocket_base(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

/// Little-endian 16-bit PCM bytes → samples (an odd trailing byte is carried in `carry`).
pub(crate) fn pcm16le_to_samples(bytes: &[u8], carry: &mut Option<u8>, out: &mut Vec<i16>) {
    let mut iter = bytes.iter().copied();
    if let Some(low) = carry.take() {
        match iter.next() {
            Some(high) => out.push(i16::from_le_bytes([low, high])),
            None => {
                *carry = Some(low);
                return;
            }
        }
    }
    let rest: Vec<u8> = iter.collect();
    let mut pairs = rest.chunks_exact(2);
    out.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
    if let [last] = pairs.remainder() {
        *carry = Some(*last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_crds::credentials::{CredentialEntry, secret_key};

    fn keys(entries: &[(Vendor, &str, bool, Option<&str>, &str)]) -> ProviderKeys {
        ProviderKeys::from_credentials(entries.iter().map(
            |(vendor, label, default, base, secret)| {
                (
                    CredentialEntry {
                        vendor: *vendor,
                        label: (*label).into(),
                        is_default: *default,
                        key: secret_key(*vendor, label).unwrap(),
                        base_url: base.map(str::to_owned),
                    },
                    (*secret).to_owned(),
                )
            },
        ))
    }

    fn key(auth: &StageAuth) -> Result<&str, &str> {
        auth.key.as_ref().map(Secret::expose).map_err(|e| *e)
    }

    #[test]
    fn openai_compatible_keys_go_only_to_their_own_base_url() {
        let keys = keys(&[
            (Vendor::Openai, "main", true, None, "sk-openai"),
            (
                Vendor::OpenaiCompatible,
                "vllm",
                true,
                Some("https://vllm.example.com/v1"),
                "sk-vllm",
            ),
            (
                Vendor::OpenaiCompatible,
                "other",
                false,
                Some("https://other.example.com/v1"),
                "sk-other",
            ),
        ]);
        let compatible = |label, base| {
            stage_auth(
                &keys,
                Vendor::OpenaiCompatible,
                label,
                base,
                "https://api.openai.com/v1",
                false,
                "m",
            )
        };
        // The agent names no URL: the credential's own.
        let auth = compatible(None, None);
        assert_eq!(
            (key(&auth), auth.base.as_str()),
            (Ok("sk-vllm"), "https://vllm.example.com/v1")
        );
        // The same URL: the key goes along.
        assert_eq!(
            key(&compatible(None, Some("https://vllm.example.com/v1/"))),
            Ok("sk-vllm")
        );
        // Another URL: the default key stays home, a named one is refused.
        let auth = compatible(None, Some("https://evil.example.com/v1"));
        assert_eq!(
            (key(&auth), auth.base.as_str()),
            (Ok(""), "https://evil.example.com/v1")
        );
        assert!(
            key(&compatible(
                Some("vllm"),
                Some("https://evil.example.com/v1")
            ))
            .is_err()
        );
        // A named credential with its own URL.
        let auth = compatible(Some("other"), None);
        assert_eq!(
            (key(&auth), auth.base.as_str()),
            (Ok("sk-other"), "https://other.example.com/v1")
        );
        // The OpenAI key is OpenAI's only.
        let openai = stage_auth(
            &keys,
            Vendor::Openai,
            None,
            None,
            "https://api.openai.com/v1",
            true,
            "OPENAI_API_KEY",
        );
        assert_eq!(key(&openai), Ok("sk-openai"));
        let named = stage_auth(
            &keys,
            Vendor::Openai,
            Some("gone"),
            None,
            "b",
            true,
            "OPENAI_API_KEY",
        );
        assert_eq!(key(&named), Err("OPENAI_API_KEY"));
        let groq = stage_auth(&keys, Vendor::Groq, None, None, "b", true, "GROQ_API_KEY");
        assert_eq!(key(&groq), Err("GROQ_API_KEY"));
    }
}
