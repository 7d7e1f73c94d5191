//! Carrier media-stream wire formats (Twilio Media Streams, Telnyx media streaming) mapped to
//! one internal frame type, so the call pipeline never knows which carrier it talks to.
//!
//! Parsing never panics: bad JSON, bad base64, oversized payloads and unknown events become
//! [`FrameError`] or [`Inbound::Ignored`], and the call decides whether to carry on.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::codec::G711;

/// Largest decoded audio payload accepted in one inbound `media` frame (2 s of 8 kHz G.711).
/// Carriers send 20 ms (160 bytes); anything far larger is a broken or hostile peer.
pub const MAX_MEDIA_PAYLOAD: usize = 16_000;

/// Which carrier's dialect a WebSocket speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// Twilio Media Streams (`streamSid`, camelCase).
    Twilio,
    /// Telnyx media streaming (`stream_id`, snake_case).
    Telnyx,
}

impl Carrier {
    /// The carrier's wire name, used in events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Twilio => "twilio",
            Carrier::Telnyx => "telnyx",
        }
    }
}

/// The identifiers the gateway passes as stream parameters (`<Parameter>` / `custom_parameters`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallParams {
    /// The gateway's signed call token (already validated by the gateway; kept opaque here).
    pub call_token: Option<String>,
    /// Tenant name.
    pub tenant: Option<String>,
    /// The gateway's call id, used in every event.
    pub call_id: Option<String>,
    /// Caller number (E.164).
    pub from: Option<String>,
    /// Dialled number (E.164).
    pub to: Option<String>,
    /// Campaign name for outbound campaign calls.
    pub campaign: Option<String>,
    /// Contact id within the campaign.
    pub contact: Option<String>,
    /// The agent a test call tests (set by the gateway from the signed call token;
    /// `switchboard_crds::agents`).
    pub agent: Option<String>,
}

/// A stream's `start` message, carrier-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamStart {
    /// Carrier stream id (Twilio `streamSid`, Telnyx `stream_id`); echoed on outbound frames.
    pub stream_id: String,
    /// Carrier call id (Twilio `callSid`, Telnyx `call_control_id`).
    pub carrier_call_id: Option<String>,
    /// Companding law of the audio in both directions.
    pub codec: G711,
    /// The gateway's parameters.
    pub params: CallParams,
}

/// One inbound carrier message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// The socket is up (first message).
    Connected,
    /// Stream metadata; audio follows. Boxed: it is once per call and far larger than the
    /// `Media` frames that make up nearly every message.
    Start(Box<StreamStart>),
    /// 20 ms (usually) of caller audio, still G.711-encoded.
    Media {
        /// Decoded from base64, still companded.
        payload: Vec<u8>,
        /// Carrier chunk counter, when present.
        chunk: Option<u64>,
    },
    /// The carrier played everything queued before a mark we sent.
    Mark {
        /// The name we gave it.
        name: String,
    },
    /// The caller pressed a key.
    Dtmf {
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
    },
    /// The carrier reports an error on the stream.
    CarrierError {
        /// Human-readable description.
        message: String,
    },
    /// The stream ended.
    Stop,
    /// A message we do not act on (unknown event, outbound-track media, …).
    Ignored,
}

/// Why an inbound message could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("malformed frame: {0}")]
    Json(String),
    /// The `media.payload` is not base64.
    #[error("media payload is not valid base64")]
    Base64,
    /// The payload exceeds [`MAX_MEDIA_PAYLOAD`].
    #[error("media payload of {0} bytes exceeds the limit")]
    Oversized(usize),
    /// A required field is missing.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// The stream announces audio we cannot handle.
    #[error("unsupported media format {0}")]
    UnsupportedFormat(String),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, alias = "streamSid", alias = "stream_id")]
    stream_id: Option<String>,
    #[serde(default)]
    start: Option<StartBody>,
    #[serde(default, borrow)]
    media: Option<MediaBody<'a>>,
    #[serde(default)]
    mark: Option<MarkBody>,
    #[serde(default)]
    dtmf: Option<DtmfBody>,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct StartBody {
    #[serde(default, alias = "streamSid", alias = "stream_id")]
    stream_id: Option<String>,
    #[serde(default, alias = "callSid", alias = "call_control_id")]
    call_id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default, alias = "customParameters", alias = "custom_parameters")]
    custom: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, alias = "mediaFormat", alias = "media_format")]
    format: Option<FormatBody>,
}

#[derive(Deserialize)]
struct FormatBody {
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default, alias = "sampleRate", alias = "sample_rate")]
    sample_rate: Option<u32>,
}

#[derive(Deserialize)]
struct MediaBody<'a> {
    #[serde(default, borrow)]
    track: Option<Cow<'a, str>>,
    #[serde(default)]
    chunk: Option<NumberOrString>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Text(String),
}

impl NumberOrString {
    fn value(&self) -> Option<u64> {
        match self {
            NumberOrString::Number(n) => Some(*n),
            NumberOrString::Text(s) => s.parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

#[derive(Deserialize)]
struct DtmfBody {
    digit: String,
}

/// Parses one inbound text frame of either carrier.
///
/// The two dialects differ only in field names (`streamSid`/`stream_id`, camelCase/snake_case),
/// so one parser with aliases serves both.
pub fn parse_inbound(text: &str) -> Result<Inbound, FrameError> {
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| FrameError::Json(e.to_string()))?;
    match envelope.event.as_ref() {
        "connected" => Ok(Inbound::Connected),
        "start" => parse_start(envelope.stream_id, envelope.start)
            .map(|start| Inbound::Start(Box::new(start))),
        "media" => parse_media(envelope.media.ok_or(FrameError::Missing("media"))?),
        "mark" => Ok(Inbound::Mark {
            name: envelope.mark.ok_or(FrameError::Missing("mark"))?.name,
        }),
        "dtmf" => {
            let dtmf = envelope.dtmf.ok_or(FrameError::Missing("dtmf"))?;
            let digit = dtmf
                .digit
                .chars()
                .next()
                .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
                .ok_or(FrameError::Missing("dtmf.digit"))?;
            Ok(Inbound::Dtmf { digit })
        }
        "stop" => Ok(Inbound::Stop),
        "error" => Ok(Inbound::CarrierError {
            message: envelope
                .payload
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unspecified".into()),
        }),
        _ => Ok(Inbound::Ignored),
    }
}

fn parse_media(media: MediaBody<'_>) -> Result<Inbound, FrameError> {
    // Only the caller's side matters; with `both_tracks` the carrier also sends ours back.
    if let Some(track) = media.track.as_deref()
        && !track.starts_with("inbound")
    {
        return Ok(Inbound::Ignored);
    }
    // Base64 expands 3 bytes to 4 characters: reject before decoding anything huge.
    if media.payload.len() / 4 * 3 > MAX_MEDIA_PAYLOAD {
        return Err(FrameError::Oversized(media.payload.len() / 4 * 3));
    }
    let payload = BASE64
        .decode(media.payload.as_bytes())
        .map_err(|_| FrameError::Base64)?;
    Ok(Inbound::Media {
        payload,
        chunk: media.chunk.as_ref().and_then(NumberOrString::value),
    })
}

fn parse_start(
    outer_stream_id: Option<String>,
    start: Option<StartBody>,
) -> Result<StreamStart, FrameError> {
    let start = start.ok_or(FrameError::Missing("start"))?;
    let stream_id = outer_stream_id
        .or(start.stream_id)
        .ok_or(FrameError::Missing("stream id"))?;
    let codec = codec_of(start.format.as_ref())?;
    let custom = start.custom.unwrap_or_default();
    let param = |name: &str| -> Option<String> {
        match custom.get(name)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let params = CallParams {
        call_token: param("callToken"),
        tenant: param("tenant"),
        call_id: param("callId"),
        from: param("from").or(start.from),
        to: param("to").or(start.to),
        campaign: param("campaign"),
        contact: param("contact"),
        agent: param("agent"),
    };
    Ok(StreamStart {
        stream_id,
        carrier_call_id: start.call_id,
        codec,
        params,
    })
}

fn codec_of(format: Option<&FormatBody>) -> Result<G711, FrameError> {
    let Some(format) = format else {
        return Ok(G711::Mulaw);
    };
    if let Some(rate) = format.sample_rate
        && rate != 8000
    {
        return Err(FrameError::UnsupportedFormat(format!("{rate} Hz")));
    }
    match format
        .encoding
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("audio/x-mulaw" | "pcmu" | "mulaw" | "ulaw") => Ok(G711::Mulaw),
        Some("audio/x-alaw" | "pcma" | "alaw") => Ok(G711::Alaw),
        Some(other) => Err(FrameError::UnsupportedFormat(other.to_owned())),
    }
}

/// One message to send to the carrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound<'a> {
    /// G.711 audio in the stream's codec.
    Media(&'a [u8]),
    /// Ask to be told when everything queued so far has played.
    Mark(&'a str),
    /// Drop every queued outbound sample (barge-in).
    Clear,
}

/// Serialises an outbound message in the carrier's dialect.
pub fn encode_outbound(carrier: Carrier, stream_id: &str, message: Outbound<'_>) -> String {
    // Hand-built: the only free-form strings (stream id, mark name) go through serde_json, and
    // this runs 50 times a second per call.
    let sid = serde_json::to_string(stream_id).unwrap_or_else(|_| "\"\"".into());
    let stream_field = match carrier {
        Carrier::Twilio => format!(",\"streamSid\":{sid}"),
        // Telnyx identifies the stream by the socket; Pipecat and Telnyx' examples omit it.
        Carrier::Telnyx => String::new(),
    };
    match message {
        Outbound::Media(bytes) => format!(
            "{{\"event\":\"media\"{stream_field},\"media\":{{\"payload\":\"{}\"}}}}",
            BASE64.encode(bytes)
        ),
        Outbound::Mark(name) => format!(
            "{{\"event\":\"mark\"{stream_field},\"mark\":{{\"name\":{}}}}}",
            serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into())
        ),
        Outbound::Clear => format!("{{\"event\":\"clear\"{stream_field}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TWILIO_START: &str = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"callToken":"tok","tenant":"acme","callId":"call-1","from":"+15550100","to":"+15550101","campaign":"spring"}},"streamSid":"MZ1"}"#;
    const TELNYX_START: &str = r#"{"event":"start","sequence_number":"1","stream_id":"32DE","start":{"user_id":"u","call_control_id":"v3:abc","call_session_id":"s","from":"+15550100","to":"+15550101","tags":[],"client_state":"","custom_parameters":{"callToken":"tok","tenant":"acme","callId":"call-2"},"media_format":{"encoding":"PCMA","sample_rate":8000,"channels":1}}}"#;

    #[test]
    fn twilio_start_carries_parameters() {
        let Inbound::Start(start) = parse_inbound(TWILIO_START).unwrap() else {
            panic!("not a start")
        };
        assert_eq!(start.stream_id, "MZ1");
        assert_eq!(start.carrier_call_id.as_deref(), Some("CA1"));
        assert_eq!(start.codec, G711::Mulaw);
        assert_eq!(start.params.tenant.as_deref(), Some("acme"));
        assert_eq!(start.params.call_id.as_deref(), Some("call-1"));
        assert_eq!(start.params.campaign.as_deref(), Some("spring"));
        assert_eq!(start.params.from.as_deref(), Some("+15550100"));
    }

    #[test]
    fn telnyx_start_carries_parameters_and_codec() {
        let Inbound::Start(start) = parse_inbound(TELNYX_START).unwrap() else {
            panic!("not a start")
        };
        assert_eq!(start.stream_id, "32DE");
        assert_eq!(start.carrier_call_id.as_deref(), Some("v3:abc"));
        assert_eq!(start.codec, G711::Alaw);
        assert_eq!(start.params.call_id.as_deref(), Some("call-2"));
        // Falls back to the start message's own numbers.
        assert_eq!(start.params.to.as_deref(), Some("+15550101"));
    }

    #[test]
    fn media_mark_dtmf_stop_of_both_carriers() {
        let twilio = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"AAEC"},"streamSid":"MZ1"}"#;
        assert_eq!(
            parse_inbound(twilio).unwrap(),
            Inbound::Media {
                payload: vec![0, 1, 2],
                chunk: Some(1)
            }
        );
        let telnyx = r#"{"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"/w=="},"stream_id":"32DE"}"#;
        assert_eq!(
            parse_inbound(telnyx).unwrap(),
            Inbound::Media {
                payload: vec![0xFF],
                chunk: Some(2)
            }
        );
        let outbound_track = r#"{"event":"media","media":{"track":"outbound","payload":"AAEC"}}"#;
        assert_eq!(parse_inbound(outbound_track).unwrap(), Inbound::Ignored);
        let mark =
            r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"t1s0"}}"#;
        assert_eq!(
            parse_inbound(mark).unwrap(),
            Inbound::Mark {
                name: "t1s0".into()
            }
        );
        let dtmf = r##"{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"#"}}"##;
        assert_eq!(parse_inbound(dtmf).unwrap(), Inbound::Dtmf { digit: '#' });
        let stop = r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}"#;
        assert_eq!(parse_inbound(stop).unwrap(), Inbound::Stop);
        assert_eq!(
            parse_inbound(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(),
            Inbound::Connected
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_inbound("not json"),
            Err(FrameError::Json(_))
        ));
        assert_eq!(
            parse_inbound(r#"{"event":"media","media":{"payload":"@@@"}}"#),
            Err(FrameError::Base64)
        );
        let huge = format!(
            r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
            "A".repeat(40_000)
        );
        assert!(matches!(
            parse_inbound(&huge),
            Err(FrameError::Oversized(_))
        ));
        assert_eq!(parse_inbound(r#"{"event":"wat"}"#), Ok(Inbound::Ignored));
        assert!(matches!(
            parse_inbound(
                r#"{"event":"start","start":{"streamSid":"x","mediaFormat":{"encoding":"L16","sampleRate":16000}}}"#
            ),
            Err(FrameError::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn outbound_frames_follow_each_dialect() {
        let twilio: serde_json::Value = serde_json::from_str(&encode_outbound(
            Carrier::Twilio,
            "MZ1",
            Outbound::Media(&[0, 1, 2]),
        ))
        .unwrap();
        assert_eq!(
            twilio,
            serde_json::json!({"event":"media","streamSid":"MZ1","media":{"payload":"AAEC"}})
        );
        let mark: serde_json::Value = serde_json::from_str(&encode_outbound(
            Carrier::Twilio,
            "MZ1",
            Outbound::Mark("a\"b"),
        ))
        .unwrap();
        assert_eq!(mark["mark"]["name"], "a\"b");
        let clear: serde_json::Value =
            serde_json::from_str(&encode_outbound(Carrier::Telnyx, "32DE", Outbound::Clear))
                .unwrap();
        assert_eq!(clear, serde_json::json!({"event":"clear"}));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = parse_inbound(&text);
        }

        #[test]
        fn arbitrary_media_payloads_never_panic(payload in "[A-Za-z0-9+/=@ ]{0,300}", event in prop::sample::select(vec!["media", "start", "mark", "dtmf", "stop", "x"])) {
            let frame = format!(r#"{{"event":"{event}","media":{{"payload":"{payload}"}},"mark":{{"name":"{payload}"}},"dtmf":{{"digit":"{payload}"}}}}"#);
            let _ = parse_inbound(&frame);
        }

        #[test]
        fn media_round_trips_through_the_wire(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let text = encode_outbound(Carrier::Twilio, "MZ", Outbound::Media(&bytes));
            // Our outbound media parses as inbound media with the same bytes (no track: inbound).
            let parsed = parse_inbound(&text).unwrap();
            prop_assert_eq!(parsed, Inbound::Media { payload: bytes, chunk: None });
        }
    }
}
