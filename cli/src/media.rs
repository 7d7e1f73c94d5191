//! Twilio Media Streams as Twilio speaks them (twilio.com/docs/voice/media-streams/
//! websocket-messages): the messages a carrier sends (`connected`, `start`, `media`, `mark`,
//! `stop`) and the ones the application sends back (`media`, `mark`, `clear`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The identifiers of one simulated stream, and its message counters.
#[derive(Clone, Debug)]
pub struct StreamWriter {
    /// `MZ…`: the stream id, echoed by the application on every message.
    pub stream_sid: String,
    /// `CA…`: the call.
    pub call_sid: String,
    /// `AC…`: the account.
    pub account_sid: String,
    sequence: u64,
    chunk: u64,
}

impl StreamWriter {
    /// A writer for a new stream of call `call_sid` on account `account_sid`.
    pub fn new(stream_sid: String, call_sid: String, account_sid: String) -> Self {
        Self {
            stream_sid,
            call_sid,
            account_sid,
            sequence: 0,
            chunk: 0,
        }
    }

    /// `sequenceNumber` is a string counting from "1" over every message after `connected`.
    fn next_sequence(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    /// The first message: `connected`.
    pub fn connected(&self) -> String {
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
    }

    /// `start`, with the TwiML `<Parameter>`s as `customParameters`.
    pub fn start(&mut self, parameters: &[(String, String)]) -> String {
        let custom: Map<String, Value> = parameters
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({
            "event": "start",
            "sequenceNumber": self.next_sequence(),
            "start": {
                "accountSid": self.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": custom,
            },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }

    /// One `media` message of caller audio; `timestamp_ms` counts from the stream's start.
    pub fn media(&mut self, mulaw: &[u8], timestamp_ms: u64) -> String {
        self.chunk += 1;
        json!({
            "event": "media",
            "sequenceNumber": self.next_sequence(),
            "media": {
                "track": "inbound",
                "chunk": self.chunk.to_string(),
                "timestamp": timestamp_ms.to_string(),
                "payload": BASE64.encode(mulaw),
            },
            "streamSid": self.stream_sid,
        })
        .to_string()
    }

    /// The echo of a `mark` once the audio queued before it has played.
    pub fn mark(&mut self, name: &str) -> String {
        json!({
            "event": "mark",
            "sequenceNumber": self.next_sequence(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        })
        .to_string()
    }

    /// The last message: the caller hung up.
    pub fn stop(&mut self) -> String {
        json!({
            "event": "stop",
            "sequenceNumber": self.next_sequence(),
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            "streamSid": self.stream_sid,
        })
        .to_string()
    }
}

/// A message from the application (the gateway / runtime) to the carrier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    /// Agent audio, μ-law 8 kHz.
    Media {
        /// Decoded payload.
        payload: Vec<u8>,
        /// The `streamSid` it named, if any.
        stream_sid: Option<String>,
    },
    /// Tell me when everything queued before this has played.
    Mark {
        /// Its name.
        name: String,
    },
    /// Drop all queued audio (barge-in).
    Clear,
    /// Text (a transcript line), if the server sends any; not part of Twilio's protocol.
    Text {
        /// Who spoke, when given (`agent`, `caller`).
        role: Option<String>,
        /// The words.
        text: String,
    },
    /// Any other event, by name.
    Other(String),
}

/// Why a message from the server could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Not JSON of the expected shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The audio payload is not base64.
    #[error("media payload is not base64")]
    BadPayload,
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
    #[serde(rename = "streamSid")]
    stream_sid: Option<String>,
    #[serde(default)]
    media: Option<MediaBody>,
    #[serde(default)]
    mark: Option<MarkBody>,
}

#[derive(Deserialize)]
struct MediaBody {
    payload: String,
}

#[derive(Deserialize)]
struct MarkBody {
    name: String,
}

/// Reads one text frame from the server.
pub fn parse_server(text: &str) -> Result<ServerMessage, MediaError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| MediaError::Malformed(e.to_string()))?;
    let envelope: Envelope =
        serde_json::from_value(value.clone()).map_err(|e| MediaError::Malformed(e.to_string()))?;
    match envelope.event.as_str() {
        "media" => {
            let body = envelope
                .media
                .ok_or_else(|| MediaError::Malformed("media without `media`".into()))?;
            let payload = BASE64
                .decode(body.payload.as_bytes())
                .map_err(|_| MediaError::BadPayload)?;
            Ok(ServerMessage::Media {
                payload,
                stream_sid: envelope.stream_sid,
            })
        }
        "mark" => {
            let mark = envelope
                .mark
                .ok_or_else(|| MediaError::Malformed("mark without `mark`".into()))?;
            Ok(ServerMessage::Mark { name: mark.name })
        }
        "clear" => Ok(ServerMessage::Clear),
        other => {
            Ok(text_in(&value, other).unwrap_or_else(|| ServerMessage::Other(other.to_owned())))
        }
    }
}

/// A transcript line in a non-Twilio event: a `text` (or `transcript`) string at the top
/// level or inside the object named after the event.
fn text_in(value: &Value, event: &str) -> Option<ServerMessage> {
    let holders = [Some(value), value.get(event)];
    holders.into_iter().flatten().find_map(|holder| {
        let text = ["text", "transcript"]
            .iter()
            .find_map(|key| holder.get(*key).and_then(Value::as_str))?;
        let role = ["role", "speaker"]
            .iter()
            .find_map(|key| holder.get(*key).and_then(Value::as_str))
            .map(str::to_owned);
        Some(ServerMessage::Text {
            role,
            text: text.to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_messages_follow_twilio_shapes() {
        let mut writer = StreamWriter::new("MZ1".into(), "CA1".into(), "AC1".into());
        let connected: Value = serde_json::from_str(&writer.connected()).unwrap();
        assert_eq!(connected["event"], "connected");
        let start: Value =
            serde_json::from_str(&writer.start(&[("callToken".into(), "t".into())])).unwrap();
        assert_eq!(start["sequenceNumber"], "1");
        assert_eq!(start["start"]["customParameters"]["callToken"], "t");
        assert_eq!(start["start"]["mediaFormat"]["sampleRate"], 8000);
        let media: Value = serde_json::from_str(&writer.media(&[0xFF; 160], 20)).unwrap();
        assert_eq!(media["sequenceNumber"], "2");
        assert_eq!(media["media"]["chunk"], "1");
        assert_eq!(media["media"]["timestamp"], "20");
        assert_eq!(
            BASE64
                .decode(media["media"]["payload"].as_str().unwrap())
                .unwrap()
                .len(),
            160
        );
        let mark: Value = serde_json::from_str(&writer.mark("m1")).unwrap();
        assert_eq!(
            (
                mark["sequenceNumber"].as_str(),
                mark["mark"]["name"].as_str()
            ),
            (Some("3"), Some("m1"))
        );
        let stop: Value = serde_json::from_str(&writer.stop()).unwrap();
        assert_eq!(stop["stop"]["callSid"], "CA1");
    }

    #[test]
    fn server_messages_are_read() {
        assert_eq!(
            parse_server(r#"{"event":"media","streamSid":"MZ1","media":{"payload":"/w=="}}"#)
                .unwrap(),
            ServerMessage::Media {
                payload: vec![0xFF],
                stream_sid: Some("MZ1".into())
            }
        );
        assert_eq!(
            parse_server(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"t1"}}"#).unwrap(),
            ServerMessage::Mark { name: "t1".into() }
        );
        assert_eq!(
            parse_server(r#"{"event":"clear","streamSid":"MZ1"}"#).unwrap(),
            ServerMessage::Clear
        );
        assert_eq!(
            parse_server(r#"{"event":"transcript","transcript":{"role":"agent","text":"Hi"}}"#)
                .unwrap(),
            ServerMessage::Text {
                role: Some("agent".into()),
                text: "Hi".into()
            }
        );
        assert!(parse_server(r#"{"event":"media","media":{"payload":"%%"}}"#).is_err());
        assert!(parse_server("nope").is_err());
    }
}
