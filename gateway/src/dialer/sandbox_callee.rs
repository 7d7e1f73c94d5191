//! The sandbox's speaking callee (`SWITCHBOARD_SANDBOX_CARRIER`, Kubernetes mode): the person
//! a sandbox campaign call reaches, played the way Twilio plays a callee.
//!
//! 1. The carrier "picks up": it POSTs the call's answer URL (the voice webhook with the
//!    attempt id), signed over the public URL like every sandbox webhook, and reads the
//!    TwiML's `<Connect><Stream>` and its `<Parameter>`s.
//! 2. It opens the media stream and sends `connected` and `start`, then a 20 ms μ-law frame
//!    every 20 ms: line silence while the agent speaks (marks echoed, as Twilio does once the
//!    audio before them has played), then [`ANSWER`] in the runtime's builtin voice once the
//!    agent has been quiet for [`AGENT_DONE`], then silence until the agent has answered and
//!    gone quiet again (or [`HOLD`] is over), and hangs up (`stop`).
//!
//! The public URL (behind the ingress) is not necessarily reachable from inside the gateway,
//! so requests go to the gateway's own listener on loopback instead ([`Reach`]); signatures
//! stay over the public URL, which is what the gateway verifies. The sandbox ends the call
//! and posts the `completed` status callback once this returns
//! ([`switchboard_carriers::sandbox::Callee`]).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Map, Value, json};
use switchboard_carriers::sandbox::{Callee, PickedUpCall};
use switchboard_carriers::signatures::TWILIO_SIGNATURE_HEADER;
use switchboard_runtime::codec::G711;
use switchboard_runtime::providers::tts::{BUILTIN_RATE, builtin_voice};
use tokio_tungstenite::tungstenite::Message;

/// What the callee says once the agent has finished speaking.
pub const ANSWER: &str = "Yes, I would give you a four out of five.";
/// The agent counts as done speaking after this long without its audio.
pub const AGENT_DONE: Duration = Duration::from_millis(800);
/// The longest the callee waits for the agent to start and finish its greeting.
pub const GREETING_WAIT: Duration = Duration::from_secs(10);
/// The longest the callee stays on the line.
pub const HOLD: Duration = Duration::from_secs(30);
/// Line silence after the answer, so the agent's end-of-turn detection fires before the
/// callee starts waiting for its reply.
const AFTER_ANSWER: Duration = Duration::from_millis(1500);
/// One telephone frame: 20 ms at 8 kHz.
const FRAME: Duration = Duration::from_millis(20);
const FRAME_SAMPLES: usize = 160;
/// How long one webhook request or the WebSocket handshake may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

// The builtin voice is telephone-rate audio: its samples go on the line unchanged.
const _: () = assert!(BUILTIN_RATE == 8_000);

/// Where the callee's requests go: URLs under the public base are sent to the gateway's own
/// listener instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    /// `host[:port][/path]` of the public URL (scheme stripped).
    public_authority: String,
    /// `host:port` of the gateway's listener as reachable from this process.
    local: String,
}

impl Reach {
    /// Requests under `public_base` (any of http, https, ws, wss) go to `listen` (an
    /// unspecified address becomes loopback).
    pub fn new(public_base: &str, listen: SocketAddr) -> Self {
        let public_authority = public_base
            .split_once("://")
            .map_or(public_base, |(_, rest)| rest)
            .trim_end_matches('/')
            .to_owned();
        let ip = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Self {
            public_authority,
            local: SocketAddr::new(ip, listen.port()).to_string(),
        }
    }

    /// `url` rewritten to the local listener (plain `http`/`ws`: loopback needs no TLS);
    /// other URLs unchanged.
    pub fn local(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        let Some(path) = rest.strip_prefix(self.public_authority.as_str()) else {
            return url.to_owned();
        };
        if !(path.is_empty() || path.starts_with(['/', '?'])) {
            return url.to_owned(); // another host sharing the prefix
        }
        let scheme = match scheme {
            "https" | "http" => "http",
            "wss" | "ws" => "ws",
            _ => return url.to_owned(),
        };
        format!("{scheme}://{}{path}", self.local)
    }
}

/// The callee the Kubernetes-mode sandbox carrier hands its calls to.
#[derive(Clone, Debug)]
pub struct SpeakingCallee {
    reach: Reach,
    http: reqwest::Client,
}

impl SpeakingCallee {
    /// A callee reaching the gateway's webhooks and media entry through `reach`.
    pub fn new(reach: Reach) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { reach, http })
    }

    async fn converse(&self, picked: PickedUpCall) -> Result<(), CalleeError> {
        let call = &picked.call;
        let params = vec![
            ("CallSid".to_owned(), picked.call_id.clone()),
            ("AccountSid".to_owned(), "ACsandbox".to_owned()),
            ("From".to_owned(), call.from.clone()),
            ("To".to_owned(), call.to.clone()),
            ("Direction".to_owned(), "outbound-api".to_owned()),
            ("CallStatus".to_owned(), "in-progress".to_owned()),
        ];
        let signature = picked.sandbox.sign_webhook(&call.answer_url, &params);
        let response = self
            .http
            .post(self.reach.local(&call.answer_url))
            .header(TWILIO_SIGNATURE_HEADER, signature)
            .form(&params)
            .send()
            .await?;
        let status = response.status();
        let twiml = response.text().await?;
        if !status.is_success() {
            return Err(CalleeError::Refused(format!("answer URL said {status}")));
        }
        let Some(stream) = stream_of(&twiml) else {
            return Err(CalleeError::Refused(
                "the TwiML connects no media stream".to_owned(),
            ));
        };
        let url = self.reach.local(&stream.url);
        let (socket, _) =
            tokio::time::timeout(REQUEST_TIMEOUT, tokio_tungstenite::connect_async(url))
                .await
                .map_err(|_| CalleeError::Media("handshake timed out".to_owned()))?
                .map_err(|e| CalleeError::Media(e.to_string()))?;
        let stream_sid = format!("MZ{}", picked.call_id);
        talk(socket, &stream_sid, &picked.call_id, &stream.parameters).await
    }
}

impl Callee for SpeakingCallee {
    fn pick_up(&self, call: PickedUpCall) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let callee = self.clone();
        Box::pin(async move {
            let id = call.call_id.clone();
            if let Err(error) = callee.converse(call).await {
                tracing::warn!(call = %id, %error, "sandbox callee hung up early");
            }
        })
    }
}

/// Why a simulated conversation ended early.
#[derive(Debug, thiserror::Error)]
enum CalleeError {
    #[error("answer URL: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Refused(String),
    #[error("media stream: {0}")]
    Media(String),
}

/// A `<Connect><Stream>` of the answer.
#[derive(Debug, PartialEq, Eq)]
struct StreamTarget {
    url: String,
    parameters: Vec<(String, String)>,
}

/// The stream URL and `<Parameter>`s of TwiML the gateway wrote (its own, so attribute
/// values in double quotes with XML escapes).
fn stream_of(twiml: &str) -> Option<StreamTarget> {
    let start = twiml.find("<Stream ")?;
    let tag_end = start + twiml[start..].find('>')?;
    let url = attribute(&twiml[start..tag_end], "url")?;
    let body_end = twiml[start..]
        .find("</Stream>")
        .map_or(twiml.len(), |end| start + end);
    let parameters = twiml[tag_end..body_end]
        .split("<Parameter")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            Some((attribute(tag, "name")?, attribute(tag, "value")?))
        })
        .collect();
    Some(StreamTarget { url, parameters })
}

/// The unescaped value of `name="…"` in `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let from = tag.find(&marker)? + marker.len();
    let value = &tag[from..from + tag[from..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Where the callee is in the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the agent's greeting to end.
    Listening,
    /// Saying [`ANSWER`] (frame index).
    Answering(usize),
    /// Waiting for the agent's reply to end.
    Waiting,
}

/// The media half of the call: Twilio's messages, in real time.
async fn talk<S>(
    socket: tokio_tungstenite::WebSocketStream<S>,
    stream_sid: &str,
    call_sid: &str,
    parameters: &[(String, String)],
) -> Result<(), CalleeError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = socket.split();
    let media_error = |e: tokio_tungstenite::tungstenite::Error| CalleeError::Media(e.to_string());
    let mut sequence = 0u64;
    let mut next = || {
        sequence += 1;
        sequence.to_string()
    };
    let custom: Map<String, Value> = parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let opening = [
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json!({"event": "start", "sequenceNumber": next(), "streamSid": stream_sid,
            "start": {"accountSid": "ACsandbox", "streamSid": stream_sid, "callSid": call_sid,
                "tracks": ["inbound"], "customParameters": custom,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
    ];
    for message in opening {
        tx.send(Message::Text(message.to_string().into()))
            .await
            .map_err(media_error)?;
    }

    let answer = mulaw_frames(&builtin_voice(ANSWER));
    let after_answer = (AFTER_ANSWER.as_millis() / FRAME.as_millis()) as usize;
    let silence = vec![G711::Mulaw.silence(); FRAME_SAMPLES];
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(FRAME);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut phase = Phase::Listening;
    // When the agent's audio was last heard (None: not since the phase began).
    let mut agent_heard: Option<tokio::time::Instant> = None;
    let mut chunk = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = tokio::time::Instant::now();
                if now - started > HOLD {
                    break;
                }
                let agent_done = agent_heard.is_some_and(|at| now - at >= AGENT_DONE);
                phase = match phase {
                    Phase::Listening if agent_done || now - started > GREETING_WAIT => {
                        Phase::Answering(0)
                    }
                    Phase::Answering(i) if i >= answer.len() + after_answer => {
                        agent_heard = None;
                        Phase::Waiting
                    }
                    Phase::Waiting if agent_done => break,
                    phase => phase,
                };
                let frame = match phase {
                    Phase::Answering(i) => answer.get(i).unwrap_or(&silence),
                    _ => &silence,
                };
                if let Phase::Answering(i) = phase {
                    phase = Phase::Answering(i + 1);
                }
                chunk += 1;
                let media = json!({"event": "media", "sequenceNumber": next(), "streamSid": stream_sid,
                    "media": {"track": "inbound", "chunk": chunk.to_string(),
                        "timestamp": (chunk * 20).to_string(), "payload": BASE64.encode(frame)}});
                tx.send(Message::Text(media.to_string().into())).await.map_err(media_error)?;
            }
            message = rx.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => return Ok(()), // the agent hung up
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(media_error(e)),
                };
                let Ok(event) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match event["event"].as_str() {
                    Some("media") if !matches!(phase, Phase::Answering(_)) => {
                        agent_heard = Some(tokio::time::Instant::now());
                    }
                    Some("mark") => {
                        // Played at once: the line plays the agent's audio as it comes.
                        let echo = json!({"event": "mark", "sequenceNumber": next(),
                            "streamSid": stream_sid, "mark": event["mark"].clone()});
                        tx.send(Message::Text(echo.to_string().into())).await.map_err(media_error)?;
                    }
                    _ => {}
                }
            }
        }
    }
    let stop = json!({"event": "stop", "sequenceNumber": next(), "streamSid": stream_sid,
        "stop": {"accountSid": "ACsandbox", "callSid": call_sid}});
    tx.send(Message::Text(stop.to_string().into()))
        .await
        .map_err(media_error)?;
    let _ = tx.close().await;
    Ok(())
}

/// 20 ms μ-law frames of 8 kHz samples; the last one padded with silence.
fn mulaw_frames(samples: &[i16]) -> Vec<Vec<u8>> {
    samples
        .chunks(FRAME_SAMPLES)
        .map(|chunk| {
            let mut frame = Vec::with_capacity(FRAME_SAMPLES);
            G711::Mulaw.encode_into(chunk, &mut frame);
            frame.resize(FRAME_SAMPLES, G711::Mulaw.silence());
            frame
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_reached_on_the_local_listener() {
        let reach = Reach::new(
            "https://voice.example.com/",
            "0.0.0.0:8080".parse().unwrap(),
        );
        assert_eq!(
            reach.local("https://voice.example.com/api/v1/webhooks/twilio/voice?attempt=a1"),
            "http://127.0.0.1:8080/api/v1/webhooks/twilio/voice?attempt=a1"
        );
        assert_eq!(
            reach.local("wss://voice.example.com/media"),
            "ws://127.0.0.1:8080/media"
        );
        // Anything else is left alone, including a host that merely shares the prefix.
        assert_eq!(
            reach.local("https://voice.example.com.evil/media"),
            "https://voice.example.com.evil/media"
        );
        assert_eq!(
            reach.local("https://other.example/x"),
            "https://other.example/x"
        );
        let v6 = Reach::new("http://gw", "[::]:9000".parse().unwrap());
        assert_eq!(v6.local("ws://gw/media"), "ws://[::1]:9000/media");
    }

    #[test]
    fn the_stream_and_its_parameters_are_read_from_the_gateways_twiml() {
        let twiml = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://gw.example/media"><Parameter name="callToken" value="a&amp;b"/><Parameter name="campaign" value="survey"/></Stream></Connect></Response>"#;
        assert_eq!(
            stream_of(twiml),
            Some(StreamTarget {
                url: "wss://gw.example/media".into(),
                parameters: vec![
                    ("callToken".into(), "a&b".into()),
                    ("campaign".into(), "survey".into())
                ],
            })
        );
        assert_eq!(stream_of("<Response><Hangup/></Response>"), None);
    }

    #[test]
    fn the_answer_is_audible_speech_length() {
        let frames = mulaw_frames(&builtin_voice(ANSWER));
        // Well over a second of speech: long enough for any voice-activity detector.
        assert!(frames.len() * 20 > 1500, "{} frames", frames.len());
        assert!(frames.iter().all(|f| f.len() == FRAME_SAMPLES));
    }
}
