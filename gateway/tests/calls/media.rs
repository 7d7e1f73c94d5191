//! The media proxy over real WebSockets, with a local runtime stand-in that echoes frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use switchboard_gateway::media::claims::{CLOCK_MARGIN, prune_expired};
use switchboard_gateway::store::{Scope, calls};

use crate::harness::{apps, sqlite_app};

/// A runtime that echoes every text frame; counts the connections it accepted.
async fn echo_runtime() -> (String, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let router = Router::new().route(
        "/media/twilio",
        get(move |upgrade: WebSocketUpgrade| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                upgrade.on_upgrade(|mut socket| async move {
                    while let Some(Ok(message)) = socket.recv().await {
                        if let Message::Close(_) = message {
                            break;
                        }
                        if socket.send(message).await.is_err() {
                            break;
                        }
                    }
                })
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("ws://{addr}"), accepted)
}

fn start_frame(token: &str) -> String {
    json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"callToken": token, "callId": "c1", "tenant": "acme"}}})
    .to_string()
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(addr: std::net::SocketAddr, token: &str) -> Client {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/media"))
        .await
        .unwrap();
    ws.send(WsMessage::text(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
    ))
    .await
    .unwrap();
    ws.send(WsMessage::text(start_frame(token))).await.unwrap();
    ws
}

async fn close_code(ws: &mut Client) -> Option<u16> {
    let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .ok()??;
    match next {
        Ok(WsMessage::Close(Some(frame))) => Some(u16::from(frame.code)),
        _ => None,
    }
}

#[tokio::test]
async fn frames_flow_both_ways_in_order_and_bad_tokens_never_reach_the_runtime() {
    let (runtime, accepted) = echo_runtime().await;
    let app = sqlite_app(&[
        "--runtime-url".into(),
        runtime,
        "--max-concurrent-calls".into(),
        "1".into(),
    ])
    .await;
    let tenant = app.signup("media@example.com", "Media Inc").await;
    let addr = app.serve().await;
    let now = chrono::Utc::now().timestamp();
    let tokens = &app.state.call_tokens;

    // Invalid and expired tokens: closed with 1008 before any upstream connection.
    let mut forged = open(addr, "e30.bm90LWEtbWFj").await;
    assert_eq!(close_code(&mut forged).await, Some(1008));
    let expired = tokens.issue(&tenant.id, &tenant.slug, "c0", "twilio", now - 3_600);
    let mut late = open(addr, &expired).await;
    assert_eq!(close_code(&mut late).await, Some(1008));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the runtime must not be dialled for bad tokens"
    );

    // A valid token: connected + start are replayed, then 200 media frames round-trip in order.
    let token = tokens.issue(&tenant.id, &tenant.slug, "c1", "twilio", now);
    let mut ws = open(addr, &token).await;
    for i in 0..200 {
        let frame = json!({"event": "media", "sequenceNumber": (i + 2).to_string(), "streamSid": "MZ1",
            "media": {"track": "inbound", "chunk": (i + 1).to_string(), "timestamp": (i * 20).to_string(), "payload": "//79/fz7"}});
        ws.send(WsMessage::text(frame.to_string())).await.unwrap();
    }
    let mut events = Vec::new();
    while events.len() < 202 {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let WsMessage::Text(text) = message {
            events.push(serde_json::from_str::<Value>(text.as_str()).unwrap());
        }
    }
    assert_eq!(events[0]["event"], "connected");
    assert_eq!(events[1]["event"], "start");
    for (i, event) in events[2..].iter().enumerate() {
        assert_eq!(
            event["media"]["chunk"],
            (i + 1).to_string(),
            "frame {i} out of order"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // The tenant's one media slot is taken: a second call is told to try later.
    let second = tokens.issue(&tenant.id, &tenant.slug, "c2", "twilio", now);
    let mut busy = open(addr, &second).await;
    assert_eq!(close_code(&mut busy).await, Some(1013));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // Closing the carrier side frees the slot.
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    drop(ws);
    let mut freed = false;
    for _ in 0..50 {
        if app.state.media_gate.active(&tenant.id) == 0 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "media slot was not released");
    app.finish().await;
}

/// Issue 15 item 1: a carrier message above `SWITCHBOARD_MEDIA_MAX_MESSAGE_BYTES` ends the
/// socket while it is read, before the call token is looked at; nothing is dialled, even when a
/// valid `start` follows. (Before: up to 16 MiB frames were buffered, then the stream opened.)
#[tokio::test]
async fn oversized_frames_end_the_socket_before_the_token_is_checked() {
    let (runtime, accepted) = echo_runtime().await;
    let app = sqlite_app(&[
        "--runtime-url".into(),
        runtime,
        "--media-max-message-bytes".into(),
        "8192".into(),
    ])
    .await;
    let tenant = app.signup("big@example.com", "Big Frames").await;
    let addr = app.serve().await;
    let now = chrono::Utc::now().timestamp();
    let token = app
        .state
        .call_tokens
        .issue(&tenant.id, &tenant.slug, "c-big", "twilio", now);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/media"))
        .await
        .unwrap();
    let padded = json!({"event": "connected", "pad": "x".repeat(64 * 1024)}).to_string();
    ws.send(WsMessage::text(padded)).await.unwrap();
    // The server may already have dropped the socket; the start then fails to send.
    let _ = ws.send(WsMessage::text(start_frame(&token))).await;
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return true,
                Some(Ok(WsMessage::Text(_))) => return false,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true), "the oversized socket must end, unanswered");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing may be dialled");
    // A normal stream still works on the same gateway.
    let fresh = app
        .state
        .call_tokens
        .issue(&tenant.id, &tenant.slug, "c-ok", "twilio", now);
    let mut ok = open(addr, &fresh).await;
    let first = tokio::time::timeout(Duration::from_secs(5), ok.next())
        .await
        .unwrap();
    assert!(matches!(first, Some(Ok(WsMessage::Text(_)))), "{first:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    app.finish().await;
}

/// Issue 15 item 7: a call token opens one media stream; replaying it, while the first stream
/// is open or after it ended, is refused with 1008 and never reaches the runtime.
#[tokio::test]
async fn a_call_token_opens_one_media_stream() {
    let (runtime, accepted) = echo_runtime().await;
    let app = sqlite_app(&["--runtime-url".into(), runtime]).await;
    let tenant = app.signup("once@example.com", "Once Only").await;
    let addr = app.serve().await;
    let now = chrono::Utc::now().timestamp();
    let token = app
        .state
        .call_tokens
        .issue(&tenant.id, &tenant.slug, "c-once", "twilio", now);
    let mut first = open(addr, &token).await;
    let echoed = tokio::time::timeout(Duration::from_secs(5), first.next())
        .await
        .unwrap();
    assert!(matches!(echoed, Some(Ok(WsMessage::Text(_)))), "{echoed:?}");
    let mut replay = open(addr, &token).await;
    assert_eq!(close_code(&mut replay).await, Some(1008));
    first.close(None).await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut later = open(addr, &token).await;
    assert_eq!(close_code(&mut later).await, Some(1008));
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one stream per token");
    app.finish().await;
}

/// Issue 15 (migration 0015's table): claims whose call token has expired are deleted by the
/// pruning worker's pass, across tenants; claims whose token may still be used are kept, so a
/// replay within the token's lifetime is still refused. Both backends (RLS: the pass runs in a
/// system transaction and sees every tenant's claims).
#[tokio::test]
async fn expired_media_stream_claims_are_pruned() {
    for app in apps("expired_media_stream_claims_are_pruned", &[]).await {
        let store = &app.state.store;
        let ttl = 600i64;
        let now = chrono::Utc::now().timestamp_millis();
        let margin = CLOCK_MARGIN.as_millis() as i64;
        let expired_at = now - ttl * 1000 - margin - 1_000;
        let live_at = now - ttl * 1000 - margin + 60_000;
        let a = app.signup("claims-a@example.com", "Claims A").await;
        let b = app.signup("claims-b@example.com", "Claims B").await;
        let claim = |tenant: String, call: &'static str, at: i64| async move {
            let mut tx = store.write(&Scope::tenant(&tenant)).await.unwrap();
            let claimed = calls::claim_media_stream(&mut tx, &tenant, call, at)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            claimed
        };
        assert!(claim(a.id.clone(), "old-a", expired_at).await);
        assert!(claim(b.id.clone(), "old-b", expired_at).await);
        assert!(claim(a.id.clone(), "live-a", live_at).await);
        assert!(claim(b.id.clone(), "now-b", now).await);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM media_stream_claims").await,
            4
        );

        let deleted = prune_expired(store, ttl, now).await.unwrap();
        println!("{}: pruned {deleted}", app.backend);
        assert_eq!(deleted, 2, "{}", app.backend);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM media_stream_claims").await,
            2
        );
        // Claims of tokens that may still be used still refuse a second stream.
        assert!(!claim(a.id.clone(), "live-a", now).await);
        assert!(!claim(b.id.clone(), "now-b", now).await);
        // A second pass finds nothing more.
        assert_eq!(prune_expired(store, ttl, now).await.unwrap(), 0);
        app.finish().await;
    }
}
