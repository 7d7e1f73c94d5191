//! How a tenant's stored provider credentials reach its runtime: the keys of the
//! `provider-keys` Secret, its index, and which credential each stage of an agent uses.
//!
//! The gateway writes every stored credential (vendor + label) under [`secret_key`] and a
//! non-secret index [`INDEX_KEY`] listing them ([`CredentialEntry`]: vendor, label, whether
//! it is the vendor's default, its key, and for `openai-compatible` its base URL). The
//! runtime reads the index and resolves each stage of the call's agent with
//! [`select`]: the credential the stage names by label (`llm.credential`, …), else the
//! vendor's default credential. The default credential of `groq`, `openai`, `deepgram` and
//! `elevenlabs` is also written under its well-known name (`OPENAI_API_KEY`, …,
//! [`Vendor::well_known_key`]), which a Secret written by hand (`providerSecretRef`) uses.
//!
//! `openai-compatible` is a vendor of its own, bound to its base URL: its key is sent only to
//! the base URL stored with it ([`CredentialEntry::base_url`]), never with an OpenAI stage
//! and never to another URL; an OpenAI key is never sent to an `openai-compatible` stage.

use serde::{Deserialize, Serialize};

use crate::tenant::{LlmProvider, SttProvider, TtsProvider};

/// Key of the `provider-keys` Secret holding the JSON index (a list of [`CredentialEntry`]).
pub const INDEX_KEY: &str = "credentials.json";
/// Longest Secret key Kubernetes accepts.
pub const MAX_SECRET_KEY: usize = 253;

/// Vendors of provider (STT/LLM/TTS) credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vendor {
    /// Groq.
    Groq,
    /// OpenAI.
    Openai,
    /// A server speaking the OpenAI API at the credential's own base URL.
    OpenaiCompatible,
    /// Deepgram.
    Deepgram,
    /// ElevenLabs.
    Elevenlabs,
}

impl Vendor {
    /// Every vendor.
    pub const ALL: [Vendor; 5] = [
        Vendor::Groq,
        Vendor::Openai,
        Vendor::OpenaiCompatible,
        Vendor::Deepgram,
        Vendor::Elevenlabs,
    ];

    /// The wire name (`groq`, `openai`, `openai-compatible`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Groq => "groq",
            Vendor::Openai => "openai",
            Vendor::OpenaiCompatible => "openai-compatible",
            Vendor::Deepgram => "deepgram",
            Vendor::Elevenlabs => "elevenlabs",
        }
    }

    /// The vendor called `name`, if it is a provider vendor.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == name)
    }

    /// The well-known Secret key of the vendor's default credential; `None` for
    /// `openai-compatible`, whose key is bound to a base URL and so needs the index.
    pub fn well_known_key(self) -> Option<&'static str> {
        match self {
            Vendor::Groq => Some("GROQ_API_KEY"),
            Vendor::Openai => Some("OPENAI_API_KEY"),
            Vendor::OpenaiCompatible => None,
            Vendor::Deepgram => Some("DEEPGRAM_API_KEY"),
            Vendor::Elevenlabs => Some("ELEVENLABS_API_KEY"),
        }
    }
}

/// The Secret key of the credential `label` of `vendor`: `<vendor>.<label>`, the label kept
/// where it is lowercase letters, digits and `-`, every other byte written `_XX` (hex), so
/// distinct labels never share a key. `None` when the key would exceed [`MAX_SECRET_KEY`]
/// (labels of more than ~60 non-ASCII characters); the gateway refuses such labels.
pub fn secret_key(vendor: Vendor, label: &str) -> Option<String> {
    let mut key = format!("{}.", vendor.as_str());
    for byte in label.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' {
            key.push(char::from(byte));
        } else {
            key.push_str(&format!("_{byte:02X}"));
        }
    }
    (key.len() <= MAX_SECRET_KEY).then_some(key)
}

/// One credential in the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialEntry {
    /// Vendor.
    pub vendor: Vendor,
    /// Label, unique per vendor in the tenant.
    pub label: String,
    /// Whether it is the vendor's default credential.
    #[serde(default)]
    pub is_default: bool,
    /// The Secret key holding the secret ([`secret_key`]).
    pub key: String,
    /// `openai-compatible`: the only base URL the key may be sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// The credential a stage uses: the one labelled `label` of `vendor`, else (no label named)
/// the vendor's default. A label naming no credential gives `None`: the stage fails rather
/// than silently spending another key.
pub fn select<'a>(
    index: &'a [CredentialEntry],
    vendor: Vendor,
    label: Option<&str>,
) -> Option<&'a CredentialEntry> {
    let mut of_vendor = index.iter().filter(|c| c.vendor == vendor);
    match label {
        Some(label) => of_vendor.find(|c| c.label == label),
        None => of_vendor.find(|c| c.is_default),
    }
}

/// Whether two base URLs name the same endpoint (trailing `/` ignored, scheme and host
/// case-insensitive).
pub fn same_base_url(a: &str, b: &str) -> bool {
    fn normal(url: &str) -> String {
        let url = url.trim().trim_end_matches('/');
        match url.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                format!(
                    "{}://{}/{}",
                    scheme.to_ascii_lowercase(),
                    host.to_ascii_lowercase(),
                    path
                )
            }
            None => url.to_owned(),
        }
    }
    normal(a) == normal(b)
}

impl LlmProvider {
    /// The vendor whose credential this provider uses (`None`: builtin, no key).
    pub fn vendor(self) -> Option<Vendor> {
        match self {
            LlmProvider::Builtin => None,
            LlmProvider::Groq => Some(Vendor::Groq),
            LlmProvider::Openai => Some(Vendor::Openai),
            LlmProvider::OpenaiCompatible => Some(Vendor::OpenaiCompatible),
        }
    }
}

impl SttProvider {
    /// The vendor whose credential this provider uses (`None`: builtin, no key).
    pub fn vendor(self) -> Option<Vendor> {
        match self {
            SttProvider::Builtin => None,
            SttProvider::Deepgram => Some(Vendor::Deepgram),
            SttProvider::Openai => Some(Vendor::Openai),
            SttProvider::OpenaiCompatible => Some(Vendor::OpenaiCompatible),
        }
    }
}

impl TtsProvider {
    /// The vendor whose credential this provider uses (`None`: builtin, no key).
    pub fn vendor(self) -> Option<Vendor> {
        match self {
            TtsProvider::Builtin => None,
            TtsProvider::Openai => Some(Vendor::Openai),
            TtsProvider::OpenaiCompatible => Some(Vendor::OpenaiCompatible),
            TtsProvider::Deepgram => Some(Vendor::Deepgram),
            TtsProvider::Elevenlabs => Some(Vendor::Elevenlabs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_readable_injective_and_valid_secret_keys() {
        assert_eq!(
            secret_key(Vendor::Openai, "production").as_deref(),
            Some("openai.production")
        );
        assert_eq!(
            secret_key(Vendor::OpenaiCompatible, "local-vllm").as_deref(),
            Some("openai-compatible.local-vllm")
        );
        let a = secret_key(Vendor::Groq, "Team A").unwrap();
        let b = secret_key(Vendor::Groq, "team_a").unwrap();
        let c = secret_key(Vendor::Groq, "team-a").unwrap();
        assert_eq!(a, "groq._54eam_20_41");
        assert!(a != b && b != c && a != c);
        for key in [&a, &b, &c] {
            assert!(
                key.bytes()
                    .all(|x| x.is_ascii_alphanumeric() || b"-._".contains(&x))
            );
        }
        assert!(secret_key(Vendor::Openai, &"é".repeat(64)).is_none());
        assert!(secret_key(Vendor::Openai, &"x".repeat(64)).is_some());
    }

    #[test]
    fn stages_get_the_named_label_or_the_vendors_default() {
        let entry = |vendor, label: &str, is_default| CredentialEntry {
            vendor,
            label: label.into(),
            is_default,
            key: secret_key(vendor, label).unwrap(),
            base_url: None,
        };
        let index = [
            entry(Vendor::Openai, "main", true),
            entry(Vendor::Openai, "backup", false),
            entry(Vendor::Groq, "only", false),
        ];
        assert_eq!(select(&index, Vendor::Openai, None).unwrap().label, "main");
        assert_eq!(
            select(&index, Vendor::Openai, Some("backup"))
                .unwrap()
                .label,
            "backup"
        );
        assert!(select(&index, Vendor::Openai, Some("nope")).is_none());
        assert!(select(&index, Vendor::Groq, None).is_none(), "no default");
        assert!(select(&index, Vendor::OpenaiCompatible, None).is_none());
        assert!(same_base_url(
            "HTTP://Vllm.example.com/v1/",
            "http://vllm.example.com/v1"
        ));
        assert!(!same_base_url(
            "http://vllm.example.com/v1",
            "http://evil.example.com/v1"
        ));
    }
}
