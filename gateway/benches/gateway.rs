//! Gateway benchmark: starts the real server on 127.0.0.1 with a fresh database (SQLite in a
//! temp dir, or the Postgres of `BENCH_DATABASE_URL`), then measures over real HTTP:
//!
//! * login latency (dominated by argon2id verification, by design),
//! * authenticated `GET /api/v1/tenants/{tenant}` throughput and latency with an access
//!   token and with an API key, from concurrent keep-alive clients,
//! * that every API-key request was metered (the batched meter's stored count after its final
//!   flush equals the requests sent).
//!
//! Traffic goes to loopback only, for a bounded number of seconds (`BENCH_SECONDS`, default 5).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::store::{Scope, Store};
use switchboard_gateway::{AppState, Config, app};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    config: Config,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn start_server(
    database_url: &str,
) -> (SocketAddr, switchboard_gateway::usage::meter::Flusher) {
    let config = Wrapper::try_parse_from([
        "bench",
        "--database-url",
        database_url,
        "--jwt-secret",
        "bench-secret-bench-secret-bench-secret-00",
        "--master-encryption-key",
        &"22".repeat(32),
        "--kubernetes",
        "false",
        "--rate-limit-ip-per-minute",
        "100000000",
        "--rate-limit-api-key-per-minute",
        "100000000",
        "--rate-limit-login-per-minute",
        "100000",
        "--database-max-connections",
        "8",
    ])
    .expect("bench config")
    .config;
    let store = Store::connect(database_url, 8).await.expect("database");
    store.migrate().await.expect("migrations");
    let state = AppState::assemble(
        config,
        store,
        Arc::new(MemoryMailer::default()),
        KubeSync::disabled(),
    )
    .await
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    // As in `serve`: API-key requests are counted in memory and written every second.
    let meter = switchboard_gateway::workers::spawn_api_meter_flusher(&state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server");
    });
    (address, meter)
}

async fn post(client: &reqwest::Client, url: String, body: Value, token: Option<&str>) -> Value {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("json")
}

async fn throughput(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    concurrency: usize,
    seconds: u64,
) -> (f64, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| {
        let client = client.clone();
        let url = url.to_owned();
        let token = token.to_owned();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let response = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request");
                let status = response.status();
                let body = response.bytes().await.expect("body");
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                );
                latencies.push(t0.elapsed());
            }
            latencies
        })
    });
    let mut all = Vec::new();
    for worker in futures::future::join_all(workers).await {
        all.extend(worker.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    (all.len() as f64 / elapsed, all)
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let backend = if database_url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let (address, meter) = start_server(&database_url).await;
    let base = format!("http://{address}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    println!(
        "switchboard-gateway benchmark: backend {backend}, {} CPU(s), {concurrency} concurrent clients, {seconds} s per phase",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
    let signup = post(&client, format!("{base}/api/v1/auth/signup"),
        json!({"email": email, "password": "benchmark passphrase 1", "name": "Bench", "company": "Bench Co"}), None).await;
    let access = signup["tokens"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let slug = signup["tenant"]["slug"].as_str().expect("slug").to_owned();
    let key = post(
        &client,
        format!("{base}/api/v1/tenants/{slug}/api-keys"),
        json!({"name": "bench", "scopes": ["read"]}),
        Some(&access),
    )
    .await;
    let api_key = key["key"].as_str().expect("key").to_owned();
    // API-key requests count against the plan's monthly limit (1,000 on free): lift it.
    let tenant_id = signup["tenant"]["id"]
        .as_str()
        .expect("tenant id")
        .to_owned();
    let side = Store::connect(&database_url, 1).await.expect("database");
    let mut tx = side
        .write(&Scope::tenant(&tenant_id))
        .await
        .expect("transaction");
    sqlx::query("UPDATE tenants SET plan = 'enterprise' WHERE id = $1")
        .bind(&tenant_id)
        .execute(&mut *tx)
        .await
        .expect("plan");
    tx.commit().await.expect("commit");

    // Raw argon2id cost, then login end to end.
    let t0 = Instant::now();
    let hash =
        switchboard_gateway::passwords::hash_password("benchmark passphrase 1").expect("hash");
    let hash_time = t0.elapsed();
    let t0 = Instant::now();
    assert!(switchboard_gateway::passwords::verify_password(
        "benchmark passphrase 1",
        &hash
    ));
    let verify_time = t0.elapsed();
    println!(
        "argon2id (m=19 MiB, t=2, p=1): hash {:.1} ms, verify {:.1} ms",
        ms(hash_time),
        ms(verify_time)
    );
    let mut logins = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        post(
            &client,
            format!("{base}/api/v1/auth/login"),
            json!({"email": email, "password": "benchmark passphrase 1"}),
            None,
        )
        .await;
        logins.push(t0.elapsed());
    }
    logins.sort();
    println!(
        "login latency (20 sequential): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        ms(percentile(&logins, 0.5)),
        ms(percentile(&logins, 0.95)),
        ms(logins[logins.len() - 1])
    );

    let url = format!("{base}/api/v1/tenants/{slug}");
    let mut api_key_requests = 0;
    for (name, token) in [
        ("access token (JWT + session check)", access.as_str()),
        ("API key", api_key.as_str()),
    ] {
        let (rate, latencies) = throughput(&client, &url, token, concurrency, seconds).await;
        println!(
            "GET /api/v1/tenants/{{tenant}} with {name}: {rate:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} requests)",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            latencies.len()
        );
        if token == api_key {
            api_key_requests = latencies.len();
        }
    }

    // Every API-key request is metered: stop the meter (it flushes what is left, as on a
    // graceful shutdown) and compare the stored count with what the clients sent.
    meter.finish().await;
    let mut tx = side
        .read(&Scope::tenant(&tenant_id))
        .await
        .expect("transaction");
    // Summed here: Postgres' SUM of BIGINT is NUMERIC, which sqlx's Any driver cannot decode.
    let months: Vec<i64> =
        sqlx::query_scalar("SELECT api_requests FROM usage_counters WHERE tenant_id = $1")
            .bind(&tenant_id)
            .fetch_all(&mut *tx)
            .await
            .expect("usage");
    let stored: i64 = months.iter().sum();
    tx.commit().await.expect("commit");
    println!(
        "API-key requests metered: {stored} stored of {api_key_requests} sent ({})",
        if usize::try_from(stored).ok() == Some(api_key_requests) {
            "all counted"
        } else {
            "MISMATCH"
        }
    );
}
