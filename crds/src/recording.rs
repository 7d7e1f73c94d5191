//! Call recording: the agent setting (`AgentSpec.recording`), the audio format the runtime
//! writes, and the internal upload the gateway stores — one contract for the gateway (API
//! validation, storage, playback), the operator (the CRD schema) and the runtime (recorder).
//!
//! Recording is off unless an agent turns it on; a number records when the agent it names does
//! (`PhoneNumber.spec.agent`, the number API's `agent`), so "per number" is "per agent". When on,
//! the agent speaks [`RecordingSpec::consent`] before anything else, both legs are recorded
//! (caller in, agent out, aligned on the call's clock) and, when the call ends, the runtime
//! `PUT`s one WAV file ([`SAMPLE_RATE`] Hz, 16-bit PCM, mono mixed or two channels: caller left,
//! agent right) to the gateway at [`upload_path`]. The gateway stores it in the tenant's own
//! S3-compatible bucket (an `s3` credential) or, in standalone mode without one, in its data
//! folder, and records it.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Sample rate of recordings (the carriers' G.711 rate; nothing is resampled).
pub const SAMPLE_RATE: u32 = 8000;
/// Bytes of one sample of one channel (16-bit PCM).
pub const SAMPLE_BYTES: u64 = 2;
/// Longest consent announcement, in characters.
pub const MAX_CONSENT_CHARS: usize = 500;
/// What the agent says when an agent turns recording on without its own text.
pub const DEFAULT_CONSENT: &str = "This call is recorded.";
/// Longest call the CRD allows (`AgentSpec.maxCallSeconds`), plus the runtime's grace after
/// the goodbye: the longest a recording can be.
pub const MAX_RECORDED_SECONDS: u64 = 14_400 + 60;
/// Content type of an upload and of a download.
pub const CONTENT_TYPE: &str = "audio/wav";
/// Size of the canonical WAV header the runtime writes (RIFF + fmt + data chunk headers).
pub const WAV_HEADER_BYTES: u64 = 44;

/// How the two legs are written.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecordingChannels {
    /// One channel: caller and agent mixed.
    Mixed,
    /// Two channels: the caller on the first (left), the agent on the second (right).
    #[default]
    Dual,
}

impl RecordingChannels {
    /// Channels in the WAV file.
    pub fn count(self) -> u16 {
        match self {
            RecordingChannels::Mixed => 1,
            RecordingChannels::Dual => 2,
        }
    }
}

/// Call recording of an agent (off unless `enabled`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSpec {
    /// Record this agent's calls.
    #[serde(default)]
    pub enabled: bool,
    /// `dual` (default): caller left, agent right; `mixed`: one channel with both.
    #[serde(default)]
    pub channels: RecordingChannels,
    /// Said by the agent before anything else on a recorded call (the caller's notice).
    #[serde(default = "default_consent")]
    #[schemars(length(min = 1, max = 500))]
    pub consent: String,
}

fn default_consent() -> String {
    DEFAULT_CONSENT.to_owned()
}

impl Default for RecordingSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            channels: RecordingChannels::default(),
            consent: default_consent(),
        }
    }
}

impl RecordingSpec {
    /// Checks what the CRD schema enforces, for specs that arrive by API; the error names the
    /// field under `recording`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let consent = self.consent.trim();
        if consent.is_empty() {
            return Err((
                "consent",
                "the consent announcement must not be empty".to_owned(),
            ));
        }
        if consent.chars().count() > MAX_CONSENT_CHARS {
            return Err(("consent", format!("at most {MAX_CONSENT_CHARS} characters")));
        }
        Ok(())
    }
}

/// Whether an agent records (a missing setting is off).
pub fn is_enabled(spec: Option<&RecordingSpec>) -> bool {
    spec.is_some_and(|r| r.enabled)
}

/// The most bytes a recording of `channels` channels can have ([`MAX_RECORDED_SECONDS`]):
/// the upload limit of the gateway and the recorder's own bound.
pub fn max_bytes(channels: u16) -> u64 {
    WAV_HEADER_BYTES
        + MAX_RECORDED_SECONDS * u64::from(SAMPLE_RATE) * SAMPLE_BYTES * u64::from(channels)
}

/// Whether `call_id` may appear in an upload path and an object key as is: 1-128 ASCII
/// letters, digits, `-`, `_` or `.` (not starting with `.`). The gateway's call ids and the
/// carriers' stream ids are.
pub fn is_safe_call_id(call_id: &str) -> bool {
    !call_id.is_empty()
        && call_id.len() <= 128
        && !call_id.starts_with('.')
        && call_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The internal upload route of one call's recording, relative to the internal API root
/// (`/internal/v1`): `PUT /internal/v1/tenants/{tenant}/calls/{callId}/recording` with the WAV
/// file as the body ([`CONTENT_TYPE`]), authenticated like the events. The runtime derives the
/// root from its events URL ([`upload_url`]).
pub fn upload_path(tenant: &str, call_id: &str) -> String {
    format!("/tenants/{tenant}/calls/{call_id}/recording")
}

/// The upload URL of a call's recording given the runtime's events URL
/// (`…/internal/v1/events`); `None` when that URL does not end in `/events` or the names are
/// not safe in a path.
pub fn upload_url(events_url: &str, tenant: &str, call_id: &str) -> Option<String> {
    let root = events_url.trim_end_matches('/').strip_suffix("/events")?;
    // Tenant names are DNS labels, which are safe path segments too.
    (is_safe_call_id(tenant) && is_safe_call_id(call_id))
        .then(|| format!("{root}{}", upload_path(tenant, call_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_consent_is_bounded() {
        assert!(!is_enabled(None));
        assert!(!is_enabled(Some(&RecordingSpec::default())));
        let spec: RecordingSpec = serde_json::from_str(r#"{"enabled": true}"#).unwrap();
        assert!(is_enabled(Some(&spec)));
        assert_eq!(spec.channels, RecordingChannels::Dual);
        assert_eq!(spec.consent, DEFAULT_CONSENT);
        assert_eq!(spec.validate(), Ok(()));
        let mixed: RecordingSpec = serde_json::from_str(
            r#"{"enabled": true, "channels": "mixed", "consent": "Recorded."}"#,
        )
        .unwrap();
        assert_eq!(mixed.channels.count(), 1);
        assert!(serde_json::from_str::<RecordingSpec>(r#"{"channels": "stereo"}"#).is_err());
        let empty = RecordingSpec {
            consent: "  ".into(),
            ..RecordingSpec::default()
        };
        assert_eq!(empty.validate().unwrap_err().0, "consent");
        let long = RecordingSpec {
            consent: "x".repeat(MAX_CONSENT_CHARS + 1),
            ..RecordingSpec::default()
        };
        assert_eq!(long.validate().unwrap_err().0, "consent");
    }

    #[test]
    fn upload_url_follows_the_events_url_and_refuses_unsafe_names() {
        assert_eq!(
            upload_url("http://gw:8081/internal/v1/events", "acme", "c-1").as_deref(),
            Some("http://gw:8081/internal/v1/tenants/acme/calls/c-1/recording")
        );
        assert_eq!(upload_url("http://gw/elsewhere", "acme", "c-1"), None);
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(!is_safe_call_id(bad), "{bad}");
            assert_eq!(
                upload_url("http://gw/internal/v1/events", "acme", bad),
                None
            );
        }
        assert_eq!(
            upload_url("http://gw/internal/v1/events", "Acme/..", "c"),
            None
        );
    }

    #[test]
    fn the_size_bound_covers_the_longest_call() {
        // Four hours and a minute of two 16-bit channels at 8 kHz, plus the header.
        assert_eq!(max_bytes(2), 44 + 14_460 * 8000 * 2 * 2);
        assert!(max_bytes(1) < max_bytes(2));
    }
}
