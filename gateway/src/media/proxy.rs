//! The media proxy: the only way into a tenant's runtime (the WebSocket entry `GET /media` is
//! `http::media`, which hands the upgraded socket to [`serve`]).
//!
//! The carrier opens the WebSocket, sends `connected` and then `start`, whose custom
//! parameters (Twilio `customParameters.callToken`; Telnyx `custom_parameters.callToken` or
//! the base64 `client_state`) carry the call token. Nothing goes upstream until that token
//! verifies and the tenant has a free media slot; a bad or expired token closes the socket
//! with 1008 (policy violation) before any upstream connection is opened, and so does a token
//! whose call already had its stream (one stream per token). Until then the proxy buffers at
//! most [`MAX_FRAMES_BEFORE_START`] messages of at most `SWITCHBOARD_MEDIA_MAX_MESSAGE_BYTES`.
//!
//! Then the gateway dials the tenant's runtime (tokio-tungstenite), replays the frames it
//! has read so far — with the `start` message's stream parameters (`tenant`, `callId`, and a
//! campaign call's `campaign` and `contact`) set from the verified token and the call record,
//! so the runtime gets them on every carrier (Telnyx sends none of its own) and nobody can
//! pick another call's script — and pumps frames both ways in order. Each direction awaits its send
//! before reading the next frame, so a slow side slows the other down (back-pressure through
//! TCP) instead of growing a buffer. A close from either side is passed on with its code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{self, CloseFrame as AxumCloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, protocol::CloseFrame as TsCloseFrame};

use switchboard_carriers::telnyx::decode_client_state;

use super::call_token::{CallClaims, CallTokens};
use super::gate::{MediaGate, MediaPermit};
use crate::config::Config;
use crate::drain::Drain;
use crate::metrics::BusinessMetrics;
use crate::store::calls;
use crate::store::{Scope, Store};

/// What the proxy needs of the gateway (cheap to clone; one per stream).
#[derive(Clone)]
pub struct MediaContext {
    /// The database (the call record names a campaign call's script).
    pub store: Store,
    /// The configuration (runtime URL, Kubernetes mode, tenant naming).
    pub config: Arc<Config>,
    /// Verifies the stream's call token.
    pub call_tokens: CallTokens,
    /// The tenant's concurrent-stream limit.
    pub media_gate: Arc<MediaGate>,
    /// `switchboard_media_streams_active`.
    pub metrics: BusinessMetrics,
    /// Counts the stream for the drain on SIGTERM, and cuts it at the drain deadline.
    pub drain: Drain,
    /// Runtime endpoints whose address is fixed in advance.
    pub runtime_addresses: RuntimeAddresses,
}

/// Addresses for runtime endpoints (`host:port` → socket address) that bypass DNS, like
/// curl's `--resolve`: the end-to-end tests run each tenant's runtime on loopback under the
/// endpoint name the operator published (`switchboard_crds::naming`), so the gateway still
/// derives the name itself. Empty in production, where the cluster's DNS answers.
#[derive(Clone, Debug, Default)]
pub struct RuntimeAddresses(Arc<std::sync::RwLock<HashMap<String, SocketAddr>>>);

impl RuntimeAddresses {
    /// Sends connections for `host_port` (`voice-runtime.tenant-acme.svc.cluster.local:8080`)
    /// to `address`.
    pub fn insert(&self, host_port: impl Into<String>, address: SocketAddr) {
        if let Ok(mut map) = self.0.write() {
            map.insert(host_port.into(), address);
        }
    }

    /// The fixed address of `url`'s `host:port`, if any.
    fn lookup(&self, url: &str) -> Option<SocketAddr> {
        let rest = url.split_once("://")?.1;
        let host_port = rest.split('/').next()?;
        self.0.read().ok()?.get(host_port).copied()
    }
}

/// Dials the runtime's WebSocket at `url` (through [`RuntimeAddresses`] when it names one).
async fn connect_runtime(
    addresses: &RuntimeAddresses,
    url: &str,
) -> Result<Upstream, tungstenite::Error> {
    match addresses.lookup(url) {
        Some(address) => {
            let stream = tokio::net::TcpStream::connect(address).await?;
            let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
            Ok(tokio_tungstenite::client_async(url, stream).await?.0)
        }
        None => Ok(tokio_tungstenite::connect_async(url).await?.0),
    }
}

/// Close code: policy violation (bad or missing call token).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: try again later (tenant at its concurrent-call limit).
pub const CLOSE_TRY_LATER: u16 = 1013;
/// Close code: internal error (runtime unreachable).
pub const CLOSE_ERROR: u16 = 1011;

/// Frames the carrier may send before `start` (Twilio and Telnyx send one: `connected`).
pub const MAX_FRAMES_BEFORE_START: usize = 4;
/// How long the carrier has to send `start`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dialling the runtime may take.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The call token inside a `start` message, if this is one.
pub fn token_from_start(frame: &Value) -> Option<String> {
    if frame.get("event").and_then(Value::as_str) != Some("start") {
        return None;
    }
    let start = frame.get("start")?;
    for params in ["customParameters", "custom_parameters"] {
        if let Some(token) = start
            .get(params)
            .and_then(|p| p.get("callToken"))
            .and_then(Value::as_str)
        {
            return Some(token.to_owned());
        }
    }
    start
        .get("client_state")
        .and_then(Value::as_str)
        .and_then(decode_client_state)
}

/// Sets the stream parameters of a `start` frame to the gateway's own values, in the key the
/// carrier's format uses (`customParameters` for Twilio, `custom_parameters` for Telnyx).
/// `params` replace what the carrier sent; `campaign`, `contact`, `from`, `to` and `agent` are
/// dropped unless given.
pub fn with_stream_parameters(mut frame: Value, carrier: &str, params: &[(&str, &str)]) -> Value {
    let Some(start) = frame.get_mut("start").and_then(Value::as_object_mut) else {
        return frame;
    };
    let key = if start.contains_key("customParameters") {
        "customParameters"
    } else if start.contains_key("custom_parameters") || carrier == "telnyx" {
        "custom_parameters"
    } else {
        "customParameters"
    };
    let custom = start
        .entry(key)
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !custom.is_object() {
        *custom = Value::Object(serde_json::Map::new());
    }
    if let Some(custom) = custom.as_object_mut() {
        for name in ["campaign", "contact", "from", "to", "agent"] {
            custom.remove(name);
        }
        for (name, value) in params {
            custom.insert((*name).to_owned(), Value::String((*value).to_owned()));
        }
    }
    frame
}

/// The replayed frames with the `start` frame's parameters set (see
/// [`with_stream_parameters`]).
fn authoritative_replay(
    replay: Vec<Message>,
    carrier: &str,
    params: &[(&str, &str)],
) -> Vec<Message> {
    replay
        .into_iter()
        .map(|message| {
            let Message::Text(text) = &message else {
                return message;
            };
            match serde_json::from_str::<Value>(text.as_str()) {
                Ok(frame) if frame.get("event").and_then(Value::as_str) == Some("start") => {
                    let frame = with_stream_parameters(frame, carrier, params);
                    Message::Text(frame.to_string().into())
                }
                _ => message,
            }
        })
        .collect()
}

/// The stream parameters the runtime must see for a verified call.
async fn call_parameters(state: &MediaContext, claims: &CallClaims) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("tenant", claims.slug.clone()),
        ("callId", claims.call_id.clone()),
    ];
    // A test call's agent, from the signed token: nobody else can name one.
    if let Some(agent) = &claims.agent {
        params.push(("agent", agent.clone()));
    }
    let call = match call_record(state, claims).await {
        Ok(call) => call,
        Err(error) => {
            // The stream still connects; the runtime just gets no campaign script.
            tracing::warn!(%error, call_id = %claims.call_id, "cannot read the call record for its stream parameters");
            None
        }
    };
    if let Some(call) = call {
        // The numbers as the carrier's signed webhook gave them: the runtime picks the agent
        // by the tenant's own number on the call (`switchboard_crds::agents`).
        if let Some(from) = call.from_number {
            params.push(("from", from));
        }
        if let Some(to) = call.to_number {
            params.push(("to", to));
        }
        if let (Some(campaign), Some(contact)) = (call.campaign, call.contact) {
            params.push(("campaign", campaign));
            params.push(("contact", contact));
        }
    }
    params
}

async fn claim_stream(
    state: &MediaContext,
    claims: &CallClaims,
) -> Result<bool, crate::store::StoreError> {
    let mut tx = state.store.write(&Scope::tenant(&claims.tenant_id)).await?;
    let claimed = calls::claim_media_stream(
        &mut tx,
        &claims.tenant_id,
        &claims.call_id,
        crate::store::now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

async fn call_record(
    state: &MediaContext,
    claims: &CallClaims,
) -> Result<Option<calls::CallRow>, crate::store::StoreError> {
    let mut tx = state.store.read(&Scope::tenant(&claims.tenant_id)).await?;
    let call = calls::get(&mut tx, &claims.tenant_id, &claims.call_id).await?;
    tx.commit().await?;
    Ok(call)
}

/// The runtime WebSocket URL for a call: the configured standalone runtime, or in Kubernetes
/// the tenant's runtime endpoint (`switchboard_crds::naming`, the operator's
/// `status.runtimeEndpoint`) over `ws://`. The path names the carrier's frame format.
pub fn upstream_url(config: &Config, claims: &CallClaims) -> Option<String> {
    let format = if claims.carrier == "telnyx" {
        "telnyx"
    } else {
        "twilio"
    };
    if let Some(base) = &config.voice.runtime_url {
        return Some(format!("{}/media/{format}", base.trim_end_matches('/')));
    }
    if config.kubernetes {
        let endpoint = config.tenant_naming().runtime_endpoint(&claims.slug);
        let endpoint = endpoint
            .strip_prefix("http://")
            .map_or_else(|| endpoint.clone(), |rest| format!("ws://{rest}"));
        return Some(format!("{endpoint}/media/{format}"));
    }
    None
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = AxumCloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// Reads frames until `start`; returns them (to replay upstream) and the token.
async fn read_until_start(socket: &mut WebSocket) -> Option<(Vec<Message>, String)> {
    let mut seen = Vec::new();
    while seen.len() < MAX_FRAMES_BEFORE_START {
        let message = tokio::time::timeout(START_TIMEOUT, socket.recv())
            .await
            .ok()??
            .ok()?;
        let Message::Text(text) = &message else {
            return None;
        };
        let frame: Value = serde_json::from_str(text.as_str()).ok()?;
        let token = token_from_start(&frame);
        let is_start = frame.get("event").and_then(Value::as_str) == Some("start");
        seen.push(message);
        if is_start {
            return token.map(|t| (seen, t));
        }
    }
    None
}

/// Serves one carrier media WebSocket: reads until `start`, verifies its call token, takes a
/// media slot of the tenant, dials the runtime and pumps frames both ways until either side
/// closes.
pub async fn serve(state: MediaContext, mut socket: WebSocket) {
    let Some((replay, token)) = read_until_start(&mut socket).await else {
        return close(socket, CLOSE_POLICY, "call token missing").await;
    };
    let now = chrono::Utc::now().timestamp();
    let claims = match state.call_tokens.verify(&token, now) {
        Ok(claims) => claims,
        Err(error) => {
            tracing::warn!(%error, "media stream refused");
            return close(socket, CLOSE_POLICY, "invalid call token").await;
        }
    };
    let Some(permit) = state.media_gate.try_enter(&claims.tenant_id) else {
        tracing::info!(tenant = %claims.slug, "media stream refused: concurrent-call limit");
        return close(socket, CLOSE_TRY_LATER, "too many concurrent calls").await;
    };
    // One stream per call token: a token replayed within its lifetime (by whoever saw it)
    // opens nothing. Claimed in the database so that every gateway replica agrees.
    match claim_stream(&state, &claims).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(tenant = %claims.slug, call_id = %claims.call_id, "media stream refused: call token already used");
            return close(socket, CLOSE_POLICY, "call token already used").await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot claim the media stream");
            return close(socket, CLOSE_ERROR, "try again").await;
        }
    }
    let Some(url) = upstream_url(&state.config, &claims) else {
        tracing::error!("no runtime configured (set SWITCHBOARD_RUNTIME_URL in standalone mode)");
        return close(socket, CLOSE_ERROR, "runtime unavailable").await;
    };
    let upstream = match tokio::time::timeout(
        UPSTREAM_CONNECT_TIMEOUT,
        connect_runtime(&state.runtime_addresses, &url),
    )
    .await
    {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(error)) => {
            tracing::warn!(%error, tenant = %claims.slug, "cannot reach the runtime");
            return close(socket, CLOSE_ERROR, "runtime unavailable").await;
        }
        Err(_) => {
            tracing::warn!(tenant = %claims.slug, "runtime connect timed out");
            return close(socket, CLOSE_ERROR, "runtime unavailable").await;
        }
    };
    let params = call_parameters(&state, &claims).await;
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let replay = authoritative_replay(replay, &claims.carrier, &params);
    tracing::info!(tenant = %claims.slug, call_id = %claims.call_id, "media stream connected");
    state.metrics.media_streams.inc();
    let counted = state.drain.stream();
    pump(socket, upstream, replay, permit, state.drain.expired()).await;
    drop(counted);
    state.metrics.media_streams.dec();
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Close code: going away (the gateway's drain deadline passed with the call still up).
pub const CLOSE_GOING_AWAY: u16 = 1001;

async fn pump(
    carrier: WebSocket,
    upstream: Upstream,
    replay: Vec<Message>,
    _permit: MediaPermit,
    drain_expired: tokio_util::sync::CancellationToken,
) {
    let (mut carrier_tx, mut carrier_rx) = carrier.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    for message in replay {
        if let Some(message) = to_tungstenite(message)
            && upstream_tx.send(message).await.is_err()
        {
            return;
        }
    }
    let inbound = async {
        while let Some(Ok(message)) = carrier_rx.next().await {
            let closing = matches!(message, Message::Close(_));
            let Some(message) = to_tungstenite(message) else {
                continue;
            };
            if upstream_tx.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = upstream_tx.close().await;
    };
    let outbound = async {
        while let Some(Ok(message)) = upstream_rx.next().await {
            let closing = matches!(message, tungstenite::Message::Close(_));
            let Some(message) = from_tungstenite(message) else {
                continue;
            };
            if carrier_tx.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = carrier_tx.close().await;
    };
    // When one side ends, the other is closed and finishes too. A drain that reaches its
    // deadline ends the call (the sockets close when the pump returns).
    tokio::select! {
        () = inbound => {}
        () = outbound => {}
        () = drain_expired.cancelled() => {
            tracing::warn!(code = CLOSE_GOING_AWAY, "drain deadline reached: media stream closed");
        }
    }
}

/// Carrier frame → runtime frame (text stays text, without copying the payload).
fn to_tungstenite(message: Message) -> Option<tungstenite::Message> {
    Some(match message {
        Message::Text(text) => {
            let bytes: Bytes = text.into();
            tungstenite::Message::Text(tungstenite::Utf8Bytes::try_from(bytes).ok()?)
        }
        Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
        Message::Ping(bytes) => tungstenite::Message::Ping(bytes),
        Message::Pong(bytes) => tungstenite::Message::Pong(bytes),
        Message::Close(frame) => tungstenite::Message::Close(frame.map(|f| TsCloseFrame {
            code: f.code.into(),
            reason: tungstenite::Utf8Bytes::from(f.reason.as_str()),
        })),
    })
}

/// Runtime frame → carrier frame.
fn from_tungstenite(message: tungstenite::Message) -> Option<Message> {
    Some(match message {
        tungstenite::Message::Text(text) => {
            let bytes: Bytes = text.into();
            Message::Text(ws::Utf8Bytes::try_from(bytes).ok()?)
        }
        tungstenite::Message::Binary(bytes) => Message::Binary(bytes),
        tungstenite::Message::Ping(bytes) => Message::Ping(bytes),
        tungstenite::Message::Pong(bytes) => Message::Pong(bytes),
        tungstenite::Message::Close(frame) => Message::Close(frame.map(|f| AxumCloseFrame {
            code: f.code.into(),
            reason: ws::Utf8Bytes::from(f.reason.as_str()),
        })),
        tungstenite::Message::Frame(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_twilio_and_telnyx_start_messages() {
        let twilio =
            serde_json::json!({"event":"start","start":{"customParameters":{"callToken":"t1"}}});
        assert_eq!(token_from_start(&twilio).as_deref(), Some("t1"));
        let telnyx = serde_json::json!({"event":"start","start":{"client_state":
            switchboard_carriers::telnyx::encode_client_state("t2")}});
        assert_eq!(token_from_start(&telnyx).as_deref(), Some("t2"));
        assert_eq!(
            token_from_start(&serde_json::json!({"event":"media"})),
            None
        );
    }

    #[test]
    fn start_frames_carry_the_gateways_parameters() {
        let twilio = serde_json::json!({"event": "start", "start": {"customParameters":
            {"callToken": "t", "campaign": "forged", "callId": "x", "agent": "forged"}}});
        let out = with_stream_parameters(twilio, "twilio", &[("callId", "c1"), ("tenant", "acme")]);
        let custom = &out["start"]["customParameters"];
        assert_eq!(custom["callId"], "c1");
        assert_eq!(custom["tenant"], "acme");
        assert_eq!(custom["callToken"], "t");
        assert!(
            custom.get("campaign").is_none(),
            "only the gateway names a campaign"
        );
        assert!(
            custom.get("agent").is_none(),
            "only the gateway names a test call's agent"
        );
        let telnyx = serde_json::json!({"event": "start", "start": {"client_state": "dA=="}});
        let out = with_stream_parameters(
            telnyx,
            "telnyx",
            &[("callId", "c2"), ("campaign", "spring"), ("contact", "ann")],
        );
        assert_eq!(out["start"]["custom_parameters"]["campaign"], "spring");
        assert_eq!(out["start"]["custom_parameters"]["contact"], "ann");
        assert_eq!(out["start"]["client_state"], "dA==");
    }
}
