//! Test harness: a runtime on 127.0.0.1:0, a local gateway collecting events, and a fake
//! carrier speaking Twilio's or Telnyx' media-stream JSON over a real WebSocket.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_crds::events::{EventBatch, EventKind, RuntimeEvent};
use switchboard_crds::tenant::AgentSpec;
use switchboard_runtime::codec::G711;
use switchboard_runtime::{
    AgentSnapshot, ConfigStore, EventSink, Metrics, ProviderKeys, RuntimeConfig, RuntimeState,
    Secret, router,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "internal-test-token";

pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A local gateway that stores the events it receives (only with the right bearer token).
#[derive(Clone, Default)]
pub struct Gateway {
    pub events: Arc<Mutex<Vec<RuntimeEvent>>>,
    pub unauthorised: Arc<Mutex<u32>>,
}

impl Gateway {
    pub async fn start() -> (Self, String) {
        let gateway = Gateway::default();
        let state = gateway.clone();
        let app = axum::Router::new().route(
            "/internal/v1/events",
            post(move |headers: HeaderMap, Json(batch): Json<EventBatch>| {
                let state = state.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    if auth != format!("Bearer {TOKEN}") {
                        *state.unauthorised.lock().unwrap() += 1;
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    state.events.lock().unwrap().extend(batch.events);
                    axum::http::StatusCode::ACCEPTED
                }
            }),
        );
        let addr = serve(app).await;
        (gateway, format!("http://{addr}/internal/v1/events"))
    }

    pub fn all(&self) -> Vec<RuntimeEvent> {
        self.events.lock().unwrap().clone()
    }

    pub async fn wait_for(
        &self,
        what: &str,
        predicate: impl Fn(&[RuntimeEvent]) -> bool,
    ) -> Vec<RuntimeEvent> {
        for _ in 0..300 {
            let events = self.all();
            if predicate(&events) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}; events: {:#?}", self.all());
    }

    /// Every event received once the call's `callEnded` has arrived.
    pub async fn wait_for_call_end(&self) -> Vec<RuntimeEvent> {
        self.wait_for("call ended", |e| {
            e.iter()
                .any(|e| matches!(e.kind, EventKind::CallEnded { .. }))
        })
        .await
    }
}

pub fn transcript(events: &[RuntimeEvent]) -> Vec<(String, String, Option<String>, bool)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TranscriptTurn {
                role,
                text,
                heard_text,
                interrupted,
                ..
            } => Some((
                format!("{role:?}"),
                text.clone(),
                heard_text.clone(),
                *interrupted,
            )),
            _ => None,
        })
        .collect()
}

pub struct Runtime {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    pub state: RuntimeState,
}

pub async fn start_runtime(
    agent: AgentSpec,
    keys: ProviderKeys,
    tweak: impl FnOnce(&mut RuntimeConfig),
) -> Runtime {
    start_runtime_with(
        AgentSnapshot {
            agent,
            keys,
            ..AgentSnapshot::default()
        },
        tweak,
    )
    .await
}

pub async fn start_runtime_with(
    snapshot: AgentSnapshot,
    tweak: impl FnOnce(&mut RuntimeConfig),
) -> Runtime {
    let (gateway, url) = Gateway::start().await;
    let metrics = Metrics::new("test").unwrap();
    let (events, _task) = EventSink::spawn(
        Some(url),
        Some(Secret::new(TOKEN)),
        metrics.clone(),
        CancellationToken::new(),
    );
    let mut config = RuntimeConfig {
        tenant: "acme".into(),
        provider_timeout: Duration::from_secs(3),
        // Provider stand-ins listen on 127.0.0.1.
        outbound_allow_private: true,
        ..RuntimeConfig::default()
    };
    tweak(&mut config);
    let store = Arc::new(ConfigStore::new(snapshot));
    let state = RuntimeState::new(config, store, metrics, events);
    let addr = serve(router(state.clone())).await;
    Runtime {
        addr,
        gateway,
        state,
    }
}

/// Carrier dialects.
#[derive(Clone, Copy, Debug)]
pub enum Dialect {
    Twilio,
    Telnyx,
}

type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// A fake carrier: sends frames like Twilio/Telnyx, records what the runtime sends back and
/// acknowledges marks the way the carriers do once audio has "played".
pub struct FakeCarrier {
    pub dialect: Dialect,
    sink: Arc<tokio::sync::Mutex<Sink>>,
    pub received: Arc<Mutex<Vec<Value>>>,
    pub closed: Arc<Mutex<bool>>,
    chunk: u64,
}

impl FakeCarrier {
    pub async fn connect(addr: SocketAddr, dialect: Dialect) -> Self {
        let path = match dialect {
            Dialect::Twilio => "twilio",
            Dialect::Telnyx => "telnyx",
        };
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/media/{path}"))
            .await
            .unwrap();
        let (sink, mut stream) = socket.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let received = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(false));
        let (echo_sink, log, closed_flag) = (sink.clone(), received.clone(), closed.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["event"] == "mark" {
                    let echo = json!({"event": "mark", "sequenceNumber": "9", "streamSid": "MZ1", "mark": value["mark"]});
                    let _ = echo_sink
                        .lock()
                        .await
                        .send(Message::text(echo.to_string()))
                        .await;
                }
                log.lock().unwrap().push(value);
            }
            *closed_flag.lock().unwrap() = true;
        });
        Self {
            dialect,
            sink,
            received,
            closed,
            chunk: 0,
        }
    }

    pub async fn send_json(&self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    /// Sends a text frame; a socket the runtime already closed is not an error here (tests
    /// check hang-ups through events and `closed`).
    pub async fn send_text(&self, text: String) {
        let _ = self.sink.lock().await.send(Message::text(text)).await;
    }

    pub async fn start(&self, params: Value) {
        match self.dialect {
            Dialect::Twilio => {
                self.send_json(json!({"event":"connected","protocol":"Call","version":"1.0.0"}))
                    .await;
                self.send_json(json!({"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":params},"streamSid":"MZ1"})).await;
            }
            Dialect::Telnyx => {
                self.send_json(json!({"event":"connected","version":"1.0.0"}))
                    .await;
                self.send_json(json!({"event":"start","sequence_number":"1","stream_id":"32DE","start":{"call_control_id":"v3:1","from":"+15550100","to":"+15550101","custom_parameters":params,"media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}})).await;
            }
        }
    }

    /// Sends audio as 20 ms μ-law frames, `pace` apart.
    pub async fn send_audio(&mut self, pcm: &[i16], pace: Duration) {
        for frame in pcm.chunks(160) {
            let mut bytes = Vec::new();
            G711::Mulaw.encode_into(frame, &mut bytes);
            self.chunk += 1;
            let payload = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let message = match self.dialect {
                Dialect::Twilio => {
                    json!({"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":self.chunk.to_string(),"timestamp":"0","payload":payload},"streamSid":"MZ1"})
                }
                Dialect::Telnyx => {
                    json!({"event":"media","sequence_number":"2","media":{"track":"inbound","chunk":self.chunk.to_string(),"timestamp":"0","payload":payload},"stream_id":"32DE"})
                }
            };
            self.send_json(message).await;
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
        }
    }

    pub async fn stop(&self) {
        self.send_json(json!({"event":"stop","sequenceNumber":"99","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"})).await;
    }

    pub fn messages(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    pub fn media_frames(&self) -> usize {
        self.messages()
            .iter()
            .filter(|m| m["event"] == "media")
            .count()
    }

    pub async fn wait_for(&self, what: &str, predicate: impl Fn(&[Value]) -> bool) {
        for _ in 0..300 {
            if predicate(&self.messages()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "timed out waiting for {what}; got {} messages",
            self.messages().len()
        );
    }
}

pub fn params() -> Value {
    json!({"callToken":"tok","tenant":"acme","callId":"call-1","from":"+15550100","to":"+15550101"})
}

pub fn speech(seconds: f32) -> Vec<i16> {
    switchboard_runtime::vad::signals::speech_like((8000.0 * seconds) as usize, 0, 8000.0)
}

/// Words as a caller says them (`espeak-ng` through the telephone band, -24 dBFS speech): the
/// neural VAD believes real speech more than the synthetic [`speech`] signal, so tests that
/// need the caller to interrupt use words.
pub fn words(text: &str) -> Vec<i16> {
    switchboard_runtime::eval::corpus::spoken("en-us", 175, text, -24.0)
        .unwrap_or_else(|error| panic!("cannot synthesise the caller: {error}"))
}

pub fn silence(seconds: f32) -> Vec<i16> {
    switchboard_runtime::vad::signals::noise((8000.0 * seconds) as usize, 3, 20.0)
}

pub fn builtin_agent() -> AgentSpec {
    AgentSpec {
        greeting: "Hello! How can I help you today?".into(),
        end_of_turn_silence_ms: 300,
        ..AgentSpec::default()
    }
}
