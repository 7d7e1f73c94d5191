//! Wire types the runtime sends to the gateway: call lifecycle, transcript turns, usage and
//! per-stage latencies.
//!
//! # Transport
//! The runtime `POST`s an [`EventBatch`] as JSON to `SWITCHBOARD_GATEWAY_EVENTS_URL`
//! (e.g. `http://gateway/internal/v1/events`) with `Authorization: Bearer
//! <SWITCHBOARD_INTERNAL_TOKEN>`. Any 2xx means "stored"; anything else (or a network error) is
//! retried with exponential backoff, so the same event may arrive more than once.
//!
//! # Idempotency
//! Every [`RuntimeEvent`] has a unique [`RuntimeEvent::id`] (a UUID chosen by the runtime once,
//! kept across retries). The gateway must dedupe on it (e.g. a unique index). Usage is reported
//! once per call as *totals* in a `usage` event, so a replayed event never double-bills.
//!
//! # Example
//! ```json
//! {"events":[{"id":"6f1c…","tenant":"acme","callId":"call-1","occurredAt":"2026-11-21T10:00:00Z",
//!   "type":"callStarted","carrier":"twilio","streamId":"MZ1","from":"+15550100","to":"+15550101"}]}
//! ```

use serde::{Deserialize, Serialize};

/// The body of one `POST` to the gateway's events endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EventBatch {
    /// Events in the order they happened (per call).
    pub events: Vec<RuntimeEvent>,
}

/// One event about one call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEvent {
    /// Unique id (UUID v4 string); the gateway dedupes on it.
    pub id: String,
    /// Tenant name (from the stream parameters, else the runtime's `SWITCHBOARD_TENANT`).
    pub tenant: String,
    /// The gateway's call id (the `callId` stream parameter; the carrier stream id if absent).
    pub call_id: String,
    /// When it happened, RFC 3339 in UTC.
    pub occurred_at: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of runtime events. Serialised with a `type` tag, camelCase.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EventKind {
    /// The media stream started and the runtime took the call.
    #[serde(rename_all = "camelCase")]
    CallStarted {
        /// `twilio` or `telnyx`.
        carrier: String,
        /// Carrier stream id (`streamSid` / `stream_id`).
        stream_id: String,
        /// Carrier call id (`callSid` / `call_control_id`), when sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carrier_call_id: Option<String>,
        /// Caller number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Dialled number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// Campaign name for outbound campaign calls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<String>,
        /// Contact id within the campaign.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact: Option<String>,
    },
    /// The call is over for the runtime (always sent, exactly once per started call).
    #[serde(rename_all = "camelCase")]
    CallEnded {
        /// Why it ended.
        reason: EndReason,
        /// Milliseconds from stream start to end.
        duration_ms: u64,
        /// Caller and agent turns in the call.
        turns: u32,
    },
    /// One turn of the conversation.
    #[serde(rename_all = "camelCase")]
    TranscriptTurn {
        /// 0-based position in the call.
        index: u32,
        /// Who spoke.
        role: Role,
        /// What was said (caller: the transcript; agent: what the agent meant to say).
        text: String,
        /// Agent turns: what the caller actually heard before interrupting (equal to `text`
        /// when not interrupted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heard_text: Option<String>,
        /// Agent turns: the caller spoke over the agent (barge-in).
        #[serde(default)]
        interrupted: bool,
        /// Milliseconds from stream start to the start of the turn.
        offset_ms: u64,
    },
    /// Totals of provider usage for the whole call (sent once, just before `callEnded`).
    #[serde(rename_all = "camelCase")]
    Usage {
        /// Seconds of caller audio sent to speech-to-text.
        stt_seconds: f64,
        /// Characters sent to text-to-speech.
        tts_characters: u64,
        /// Prompt tokens reported by the language model.
        llm_prompt_tokens: u64,
        /// Completion tokens reported by the language model.
        llm_completion_tokens: u64,
        /// Provider names, for pricing: `stt`, `llm`, `tts` as configured (`builtin`, `openai`, …).
        stt_provider: String,
        /// Language-model provider.
        llm_provider: String,
        /// Text-to-speech provider.
        tts_provider: String,
    },
    /// Latencies of one agent reply, each stage in milliseconds.
    #[serde(rename_all = "camelCase")]
    TurnLatency {
        /// Index of the agent's transcript turn.
        index: u32,
        /// End of the caller's speech → transcript ready.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stt_ms: Option<u64>,
        /// Request sent → first token from the language model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        llm_first_token_ms: Option<u64>,
        /// First sentence sent → first audio from text-to-speech.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tts_first_audio_ms: Option<u64>,
        /// End of the caller's speech (as detected) → first agent audio sent to the carrier.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voice_to_voice_ms: Option<u64>,
    },
    /// The agent asked to transfer the call; the gateway redirects it through the carrier.
    #[serde(rename_all = "camelCase")]
    TransferRequested {
        /// E.164 destination.
        to: String,
    },
    /// A survey answer of a campaign call.
    #[serde(rename_all = "camelCase")]
    SurveyAnswer {
        /// The question's `field`.
        field: String,
        /// The caller's words.
        raw: String,
        /// The structured value mapped by the language model (`null` when it could not).
        value: serde_json::Value,
    },
    /// A provider failed and the caller heard the spoken fallback.
    #[serde(rename_all = "camelCase")]
    ProviderError {
        /// `stt`, `llm` or `tts`.
        stage: String,
        /// Provider name.
        provider: String,
        /// Error text (never contains keys).
        message: String,
    },
}

/// Who spoke a transcript turn.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The person on the phone.
    Caller,
    /// The AI agent.
    Agent,
}

/// Why a call ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    /// The carrier sent `stop` or closed the socket (usually the caller hung up).
    CallerHangup,
    /// The agent ended the call (end-call tool).
    AgentHangup,
    /// Handed over to a transfer number.
    Transferred,
    /// The tenant's maximum call length was reached.
    MaxDuration,
    /// Providers kept failing; the agent apologised and hung up.
    ProviderFailure,
    /// No media from the carrier for too long.
    MediaTimeout,
    /// The runtime shut down and the drain deadline passed.
    Shutdown,
    /// The stream was unusable (bad start, unsupported codec).
    ProtocolError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_flat_with_a_type_tag() {
        let event = RuntimeEvent {
            id: "e1".into(),
            tenant: "acme".into(),
            call_id: "call-1".into(),
            occurred_at: "2026-11-21T10:00:00Z".into(),
            kind: EventKind::CallEnded {
                reason: EndReason::CallerHangup,
                duration_ms: 1200,
                turns: 3,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":"e1","tenant":"acme","callId":"call-1",
                "occurredAt":"2026-11-21T10:00:00Z","type":"callEnded",
                "reason":"callerHangup","durationMs":1200,"turns":3})
        );
        let back: RuntimeEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn batch_round_trips() {
        let batch = EventBatch {
            events: vec![RuntimeEvent {
                id: "e2".into(),
                tenant: "acme".into(),
                call_id: "c".into(),
                occurred_at: "2026-11-21T10:00:00Z".into(),
                kind: EventKind::Usage {
                    stt_seconds: 1.5,
                    tts_characters: 42,
                    llm_prompt_tokens: 10,
                    llm_completion_tokens: 5,
                    stt_provider: "builtin".into(),
                    llm_provider: "builtin".into(),
                    tts_provider: "builtin".into(),
                },
            }],
        };
        let text = serde_json::to_string(&batch).unwrap();
        assert!(text.contains("\"type\":\"usage\""));
        assert!(text.contains("\"ttsCharacters\":42"));
        assert_eq!(serde_json::from_str::<EventBatch>(&text).unwrap(), batch);
    }
}
