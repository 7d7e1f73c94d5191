//! The gateway under write load with cancelling clients, then a restart (prints figures; not a
//! timed test). Issue 15's acceptance benchmark.
//!
//! `BENCH_CONNECTIONS` clients (default 64) share a pool of `BENCH_POOL` database connections
//! (default 16) and for `BENCH_SECONDS` (default 10) send, in turn: a PBX CDR (basic auth), a
//! signed inbound Twilio voice webhook, and an API-key read of the call list. Every
//! `BENCH_CANCEL_EVERY`-th request of one client in four (default 5) is abandoned after 1 ms,
//! which drops the request mid-way as a client hanging up does. Then the gateway is stopped,
//! its pool closed, a new one started on the same database, and every acknowledged CDR and
//! call is looked up. Runs on SQLite, and on Postgres too when `BENCH_DATABASE_URL` is set.
//!
//! `cargo bench -p switchboard-gateway --bench load`

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use serde_json::{Value, json};
use switchboard_carriers::signatures::twilio_signature;
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::store::calls;
use switchboard_gateway::store::{Scope, Store, now_ms, token_hash};
use switchboard_gateway::{AppState, Config, app};

#[path = "support/mod.rs"]
mod support;
use support::{Wrapper, database, enterprise_tenant, env_usize, ms, percentile};

const PUBLIC: &str = "https://gateway.bench";
const TOKEN: &str = "bench-twilio-token";
const NUMBER: &str = "+15550100";
const CDR_USER: &str = "pbx";
const CDR_PASSWORD: &str = "bench-cdr-password-0123456789abcdef";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Cdr,
    Voice,
    Read,
}

const KINDS: [Kind; 3] = [Kind::Cdr, Kind::Voice, Kind::Read];

#[derive(Default)]
struct ClientResult {
    latencies: [Vec<Duration>; 3],
    errors: [usize; 3],
    cancelled: usize,
    acked_cdrs: Vec<String>,
    acked_calls: Vec<String>,
    first_error: Option<String>,
}

fn config(url: &str, pool: usize) -> anyhow::Result<Config> {
    Ok(Wrapper::try_parse_from([
        "gateway",
        "--database-url",
        url,
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
        "ws://127.0.0.1:9",
        "--database-max-connections",
        &pool.to_string(),
        "--rate-limit-ip-per-minute",
        "100000000",
        "--rate-limit-api-key-per-minute",
        "100000000",
        "--dialer",
        "false",
    ])?
    .config)
}

async fn start(
    url: &str,
    pool: usize,
) -> anyhow::Result<(AppState, SocketAddr, tokio::task::JoinHandle<()>)> {
    let store = Store::connect(url, pool as u32).await?;
    let state = AppState::assemble(
        config(url, pool)?,
        store,
        Arc::new(MemoryMailer::default()),
        KubeSync::disabled(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = app(state.clone());
    // The gateway's own server loop, as `switchboard-gateway serve` runs it.
    let server = tokio::spawn(async move {
        let _ = switchboard_gateway::http::server::serve(
            listener,
            router,
            Duration::from_secs(10),
            std::future::pending(),
        )
        .await;
    });
    Ok((state, addr, server))
}

/// A CDR credential and a read-scoped API key for the tenant.
async fn credentials(
    state: &AppState,
    addr: SocketAddr,
    tenant_id: &str,
    slug: &str,
) -> anyhow::Result<String> {
    let mut tx = state.store.write(&Scope::tenant(tenant_id)).await?;
    calls::set_cdr_credential(
        &mut tx,
        tenant_id,
        CDR_USER,
        &token_hash(CDR_PASSWORD),
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"email": "bench-twilio@example.com", "password": "correct horse battery staple"}))
        .send()
        .await?
        .json()
        .await?;
    let access = login["accessToken"]
        .as_str()
        .or_else(|| login["tokens"]["accessToken"].as_str())
        .ok_or_else(|| anyhow::anyhow!("login failed: {login}"))?;
    let key: Value = client
        .post(format!("http://{addr}/api/v1/tenants/{slug}/api-keys"))
        .bearer_auth(access)
        .json(&json!({"name": "bench", "scopes": ["read"]}))
        .send()
        .await?
        .json()
        .await?;
    key["key"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no API key: {key}"))
}

async fn one_request(
    client: &reqwest::Client,
    addr: SocketAddr,
    slug: &str,
    api_key: &str,
    kind: Kind,
    id: &str,
) -> Result<(), String> {
    let response = match kind {
        Kind::Cdr => {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{CDR_USER}:{CDR_PASSWORD}"));
            client
                .post(format!("http://{addr}/api/v1/webhooks/cdr/{slug}"))
                .header("authorization", format!("Basic {auth}"))
                .json(
                    &json!({"id": id, "from": "+15557770000", "to": NUMBER, "direction": "inbound",
                    "start": "2026-11-20T09:00:00Z", "answer": "2026-11-20T09:00:05Z",
                    "end": "2026-11-20T09:02:05Z", "disposition": "answered"}),
                )
                .send()
                .await
        }
        Kind::Voice => {
            let params = vec![
                ("CallSid".to_owned(), id.to_owned()),
                ("From".to_owned(), "+15557770000".to_owned()),
                ("To".to_owned(), NUMBER.to_owned()),
            ];
            let signature = twilio_signature(
                TOKEN,
                &format!("{PUBLIC}/api/v1/webhooks/twilio/voice"),
                &params,
            );
            client
                .post(format!("http://{addr}/api/v1/webhooks/twilio/voice"))
                .header("x-twilio-signature", signature)
                .form(&params)
                .send()
                .await
        }
        Kind::Read => {
            client
                .get(format!("http://{addr}/api/v1/tenants/{slug}/calls?limit=5"))
                .bearer_auth(api_key)
                .send()
                .await
        }
    }
    .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    let ok = status.is_success()
        && match kind {
            Kind::Cdr => text.contains("\"stored\":1"),
            Kind::Voice => text.contains("<Connect>"),
            Kind::Read => text.contains("\"items\""),
        };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{kind:?} {status}: {}",
            text.chars().take(200).collect::<String>()
        ))
    }
}

async fn run(backend: &str, url: &str) -> anyhow::Result<()> {
    let connections = env_usize("BENCH_CONNECTIONS", 64).max(1);
    let pool = env_usize("BENCH_POOL", 16).max(1);
    let seconds = env_usize("BENCH_SECONDS", 10) as u64;
    let cancel_every = env_usize("BENCH_CANCEL_EVERY", 5).max(1);
    let (state, addr, server) = start(url, pool).await?;
    let (tenant_id, slug) = enterprise_tenant(&state, addr, NUMBER, "twilio").await?;
    let api_key = credentials(&state, addr, &tenant_id, &slug).await?;
    let load_before = load_average();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (slug, api_key) = (slug.clone(), api_key.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let canceller = c % 4 == 0;
            let mut result = ClientResult::default();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let kind = KINDS[(c + i) % 3];
                let id = format!(
                    "{}-{c}-{i}",
                    match kind {
                        Kind::Cdr => "pbx",
                        Kind::Voice => "CA",
                        Kind::Read => "r",
                    }
                );
                let request = one_request(&client, addr, &slug, &api_key, kind, &id);
                if canceller && i % cancel_every == cancel_every - 1 {
                    // Hang up after 1 ms: the request is dropped wherever it is.
                    if tokio::time::timeout(Duration::from_millis(1), request)
                        .await
                        .is_err()
                    {
                        result.cancelled += 1;
                    }
                    i += 1;
                    continue;
                }
                let t = Instant::now();
                match request.await {
                    Ok(()) => {
                        result.latencies[kind as usize].push(t.elapsed());
                        match kind {
                            Kind::Cdr => result.acked_cdrs.push(id),
                            Kind::Voice => result.acked_calls.push(id),
                            Kind::Read => {}
                        }
                    }
                    Err(error) => {
                        result.errors[kind as usize] += 1;
                        result.first_error.get_or_insert(error);
                    }
                }
                i += 1;
            }
            result
        }));
    }
    let mut total = ClientResult::default();
    for task in tasks {
        let r = task.await?;
        for k in 0..3 {
            total.latencies[k].extend(r.latencies[k].iter().copied());
            total.errors[k] += r.errors[k];
        }
        total.cancelled += r.cancelled;
        total.acked_cdrs.extend(r.acked_cdrs);
        total.acked_calls.extend(r.acked_calls);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    let elapsed = started.elapsed();
    let load_after = load_average();
    let ready = reqwest::get(format!("http://{addr}/readyz"))
        .await?
        .status();

    // Restart: stop serving, close the pool, start again on the same database.
    server.abort();
    state.store.pool().close().await;
    drop(state);
    let (state, _addr, server) = start(url, pool).await?;
    let mut tx = state.store.read(&Scope::tenant(&tenant_id)).await?;
    let stored: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT carrier_call_id FROM calls WHERE tenant_id = $1")
            .bind(&tenant_id)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    let stored: HashSet<String> = stored.into_iter().filter_map(|(id,)| id).collect();
    let lost_cdrs = total
        .acked_cdrs
        .iter()
        .filter(|id| !stored.contains(*id))
        .count();
    let lost_calls = total
        .acked_calls
        .iter()
        .filter(|id| !stored.contains(*id))
        .count();
    server.abort();

    println!(
        "load ({backend}, {connections} connections, pool {pool}, {seconds} s, {} CPU(s)): {} cancelled mid-request, /readyz after load {ready}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        total.cancelled,
    );
    // The machine may be shared: the 1-minute load average before and after the run says how
    // much else was running.
    println!("  load average (1 min): {load_before} before, {load_after} after");
    for kind in KINDS {
        let k = kind as usize;
        let mut latencies = std::mem::take(&mut total.latencies[k]);
        latencies.sort();
        println!(
            "  {:<22} {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} ok, {} errors)",
            match kind {
                Kind::Cdr => "CDR ingest",
                Kind::Voice => "inbound voice webhook",
                Kind::Read => "API-key read",
            },
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            latencies.len(),
            total.errors[k],
        );
    }
    println!(
        "  after restart: {} of {} acknowledged CDRs and {} of {} acknowledged calls stored ({} lost)",
        total.acked_cdrs.len() - lost_cdrs,
        total.acked_cdrs.len(),
        total.acked_calls.len() - lost_calls,
        total.acked_calls.len(),
        lost_cdrs + lost_calls,
    );
    if let Some(error) = total.first_error {
        println!("  first error: {error}");
    }
    Ok(())
}

/// The 1-minute load average (Linux; "?" elsewhere).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (url, backend) = database(None, &dir).await?;
    run(backend, &url).await?;
    if let Ok(admin) = std::env::var("BENCH_DATABASE_URL") {
        let (url, backend) = database(Some(admin), &dir).await?;
        run(backend, &url).await?;
    } else {
        println!("BENCH_DATABASE_URL unset: Postgres not measured");
    }
    Ok(())
}
