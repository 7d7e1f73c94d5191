//! Carrier webhooks and the media path (prints figures; not a timed test):
//!
//! * inbound voice-webhook throughput and latency percentiles: signed Twilio form webhooks
//!   over real HTTP, each one routed, verified, metered, recorded and answered with TwiML,
//!   against the Postgres of `BENCH_DATABASE_URL` (as an ordinary role, so RLS applies) or
//!   SQLite when unset;
//! * per-frame overhead of the media proxy: ping-pong round trips of Twilio-sized media
//!   frames to a local echo runtime, directly and through `GET /media`.
//!
//! `cargo bench -p switchboard-gateway --bench voice` (env `BENCH_REQUESTS`, default 3000;
//! `BENCH_CONCURRENCY`, default 16; `BENCH_FRAMES`, default 3000).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::get;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use switchboard_carriers::signatures::twilio_signature;
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::store::Store;
use switchboard_gateway::{AppState, app};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const PUBLIC: &str = "https://gateway.bench";
const TOKEN: &str = "bench-twilio-token";

#[path = "support/mod.rs"]
mod support;
use support::{Wrapper, database, enterprise_tenant, env_usize, ms, percentile, serve};
async fn echo_runtime() -> anyhow::Result<SocketAddr> {
    let router = Router::new().route(
        "/media/twilio",
        get(|upgrade: WebSocketUpgrade| async move {
            upgrade.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if matches!(message, Message::Close(_)) || socket.send(message).await.is_err() {
                        break;
                    }
                }
            })
        }),
    );
    serve(router).await
}

async fn webhook_benchmark(addr: SocketAddr, backend: &str) -> anyhow::Result<()> {
    let total = env_usize("BENCH_REQUESTS", 3000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16).max(1);
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/v1/webhooks/twilio/voice");
    let signed_url = format!("{PUBLIC}/api/v1/webhooks/twilio/voice");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, url, signed_url) = (client.clone(), url.clone(), signed_url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker;
            while i < total {
                let params = vec![
                    ("CallSid".to_owned(), format!("CA{i:032}")),
                    ("From".to_owned(), "+15557770000".to_owned()),
                    ("To".to_owned(), "+15550100".to_owned()),
                ];
                let signature = twilio_signature(TOKEN, &signed_url, &params);
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("x-twilio-signature", signature)
                    .form(&params)
                    .send()
                    .await?;
                let ok =
                    response.status().is_success() && response.text().await?.contains("<Connect>");
                anyhow::ensure!(ok, "webhook {i} was not answered with <Connect>");
                latencies.push(t.elapsed());
                i += concurrency;
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "voice webhook ({backend}, {concurrency} clients, {total} calls): {:.0} webhooks/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        total as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0)),
    );
    Ok(())
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Median and p99 round trip of `frames` sequential media frames.
async fn ping_pong(ws: &mut Client, frames: usize) -> anyhow::Result<(Duration, Duration)> {
    let payload = "f".repeat(216); // 160 bytes of μ-law as base64 (20 ms)
    let mut rtts = Vec::with_capacity(frames);
    for i in 0..frames {
        let frame = json!({"event": "media", "sequenceNumber": i.to_string(), "streamSid": "MZbench",
            "media": {"track": "inbound", "chunk": i.to_string(), "timestamp": (i * 20).to_string(), "payload": payload}})
        .to_string();
        let t = Instant::now();
        ws.send(WsMessage::text(frame)).await?;
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(text))) if text.as_str().contains("\"media\"") => break,
                Some(Ok(_)) => continue,
                other => anyhow::bail!("stream ended: {other:?}"),
            }
        }
        rtts.push(t.elapsed());
    }
    rtts.sort();
    Ok((percentile(&rtts, 0.5), percentile(&rtts, 0.99)))
}

async fn media_benchmark(
    state: &AppState,
    addr: SocketAddr,
    runtime: SocketAddr,
    tenant: (&str, &str),
) -> anyhow::Result<()> {
    let frames = env_usize("BENCH_FRAMES", 3000);
    let (mut direct, _) =
        tokio_tungstenite::connect_async(format!("ws://{runtime}/media/twilio")).await?;
    let (direct_p50, direct_p99) = ping_pong(&mut direct, frames).await?;
    let token = state.call_tokens.issue(
        tenant.0,
        tenant.1,
        "bench-call",
        "twilio",
        chrono::Utc::now().timestamp(),
    );
    let (mut proxied, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/media")).await?;
    proxied
        .send(WsMessage::text(
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
        ))
        .await?;
    proxied
        .send(WsMessage::text(
            json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZbench",
                "start": {"streamSid": "MZbench", "callSid": "CAbench", "customParameters": {"callToken": token}}})
            .to_string(),
        ))
        .await?;
    let (proxy_p50, proxy_p99) = ping_pong(&mut proxied, frames).await?;
    println!(
        "media frame round trip ({frames} frames, 1 stream): direct p50 {:.3} ms p99 {:.3} ms; via proxy p50 {:.3} ms p99 {:.3} ms; proxy overhead per frame (both directions) p50 {:.3} ms",
        ms(direct_p50),
        ms(direct_p99),
        ms(proxy_p50),
        ms(proxy_p99),
        ms(proxy_p50.saturating_sub(direct_p50)),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (url, backend) = database(std::env::var("BENCH_DATABASE_URL").ok(), &dir).await?;
    let runtime = echo_runtime().await?;
    let config = Wrapper::try_parse_from([
        "gateway",
        "--database-url",
        &url,
        "--jwt-secret",
        "bench-secret-bench-secret-bench-secret-01",
        "--master-encryption-key",
        &"33".repeat(32),
        "--kubernetes",
        "false",
        "--public-url",
        PUBLIC,
        "--twilio-auth-token",
        TOKEN,
        "--runtime-url",
        &format!("ws://{runtime}"),
        "--database-max-connections",
        "16",
    ])?
    .config;
    let store = Store::connect(&url, 16).await?;
    let state = AppState::assemble(
        config,
        store,
        Arc::new(MemoryMailer::default()),
        KubeSync::disabled(),
    )
    .await?;
    let addr = serve(app(state.clone())).await?;
    // Unlimited plan, so the benchmark measures admission rather than refusals.
    let (tenant_id, slug) = enterprise_tenant(&state, addr, "+15550100", "twilio").await?;
    webhook_benchmark(addr, backend).await?;
    media_benchmark(&state, addr, runtime, (&tenant_id, &slug)).await?;
    Ok(())
}
