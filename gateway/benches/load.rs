//! The gateway under write load with cancelling clients, then a restart (prints figures; not a
//! timed test). Issue 15's acceptance benchmark.
//!
//! `BENCH_CONNECTIONS` clients (default 64) on a pool of `BENCH_POOL` database connections
//! (default 16), for `BENCH_SECONDS` (default 10) per phase. Three kinds of request: a PBX CDR
//! (basic auth), a signed inbound Twilio voice webhook, and an API-key read of the call list.
//! `--kind` (or `BENCH_KIND`) picks what runs:
//!
//! - `each` (default): one phase per kind, one after the other, every client sending that kind
//!   only, so each kind's figures are its own (a slow kind does not pace a fast one);
//! - `cdr`, `voice` or `read`: that kind alone;
//! - `mixed`: the three at once, each client sending one kind (a third of the clients each).
//!
//! Every `BENCH_CANCEL_EVERY`-th request of one client in four (default 5) is abandoned after
//! 1 ms: the client closes its connection wherever the request is, as a client hanging up
//! does. After the phases the gateway is stopped, its pool closed, a new one started on the
//! same database, and every acknowledged CDR and call is looked up.
//!
//! `--backend` (or `BENCH_BACKEND`): `sqlite`, `postgres` or `both` (default: SQLite, and
//! Postgres too when `BENCH_DATABASE_URL` is set, which Postgres needs).
//!
//! Figures per kind: req/s, p50/p99, errors, and the CPU each request cost, which a shared
//! machine disturbs far less than req/s: the gateway's threads, the load generator's (its own
//! runtime, threads named `loadgen`) and the Postgres server processes of the bench's role.
//! The load generator speaks plain HTTP/1.1 with keep-alive over its own sockets (no client
//! library), so it takes as little of the machine as it can.
//!
//! `cargo bench -p switchboard-gateway --bench load -- --kind cdr --backend postgres`

use std::collections::{HashMap, HashSet};
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

#[path = "support/mod.rs"]
mod support;
use support::{ROLE, Wrapper, database, enterprise_tenant, env_usize, ms, percentile};

const PUBLIC: &str = "https://gateway.bench";
const TOKEN: &str = "bench-twilio-token";
const NUMBER: &str = "+15550100";
const CDR_USER: &str = "pbx";
const CDR_PASSWORD: &str = "bench-cdr-password-0123456789abcdef";
/// Thread-name prefix of the load generator's runtime (its CPU is counted apart).
const LOADGEN: &str = "loadgen";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Cdr,
    Voice,
    Read,
}

const KINDS: [Kind; 3] = [Kind::Cdr, Kind::Voice, Kind::Read];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Cdr => "CDR ingest",
            Kind::Voice => "inbound voice webhook",
            Kind::Read => "API-key read",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Kind::Cdr => "pbx",
            Kind::Voice => "CA",
            Kind::Read => "r",
        }
    }
}

/// What runs: phases, each a list of the kinds its clients send (client `c` sends
/// `kinds[c % kinds.len()]`).
fn phases(kind: &str) -> anyhow::Result<Vec<Vec<Kind>>> {
    Ok(match kind {
        "each" => KINDS.iter().map(|k| vec![*k]).collect(),
        "cdr" => vec![vec![Kind::Cdr]],
        "voice" => vec![vec![Kind::Voice]],
        "read" => vec![vec![Kind::Read]],
        "mixed" => vec![KINDS.to_vec()],
        other => anyhow::bail!("--kind {other}: expected each, cdr, voice, read or mixed"),
    })
}

/// `--name value` or `--name=value` from the command line (cargo adds `--bench`), else the
/// environment variable, else `default`.
fn option(name: &str, env: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    for (i, arg) in args.iter().enumerate() {
        if *arg == flag
            && let Some(value) = args.get(i + 1)
        {
            return value.clone();
        }
        if let Some(value) = arg.strip_prefix(&format!("{flag}=")) {
            return value.to_owned();
        }
    }
    std::env::var(env).unwrap_or_else(|_| default.to_owned())
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

/// One keep-alive HTTP/1.1 connection of the load generator.
struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
}

/// Where the header block of a response ends, if it has arrived.
fn header_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

impl Connection {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Hangs up (the next request opens a new connection).
    fn close(&mut self) {
        self.stream = None;
        self.buffer.clear();
    }

    /// Sends `request` and reads the response: status and body.
    async fn send(&mut self, request: &[u8]) -> Result<(u16, String), String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            self.stream = Some(stream);
            self.buffer.clear();
        }
        let result = self.exchange(request).await;
        if result.is_err() {
            self.close();
        }
        result
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, String), String> {
        let stream = self.stream.as_mut().ok_or("not connected")?;
        stream.write_all(request).await.map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 8192];
        let head = loop {
            if let Some(end) = header_end(&self.buffer) {
                break end;
            }
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before the response".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        };
        let text = std::str::from_utf8(&self.buffer[..head]).map_err(|e| e.to_string())?;
        let mut lines = text.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or("malformed status line")?;
        let mut length = None;
        let mut close = false;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("connection")
                    && value.trim().eq_ignore_ascii_case("close")
                {
                    close = true;
                }
            }
        }
        let length = length.ok_or("response without content-length")?;
        while self.buffer.len() < head + length {
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed inside the body".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&self.buffer[head..head + length]).into_owned();
        self.buffer.drain(..head + length);
        if close {
            self.close();
        }
        Ok((status, body))
    }
}

/// The bytes of one request of `kind` with record id `id`.
fn request_bytes(slug: &str, api_key: &str, kind: Kind, id: &str) -> Vec<u8> {
    let (method, path, headers, body) = match kind {
        Kind::Cdr => {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{CDR_USER}:{CDR_PASSWORD}"));
            let body =
                json!({"id": id, "from": "+15557770000", "to": NUMBER, "direction": "inbound",
                "start": "2026-11-20T09:00:00Z", "answer": "2026-11-20T09:00:05Z",
                "end": "2026-11-20T09:02:05Z", "disposition": "answered"})
                .to_string();
            (
                "POST",
                format!("/api/v1/webhooks/cdr/{slug}"),
                format!("authorization: Basic {auth}\r\ncontent-type: application/json\r\n"),
                body,
            )
        }
        Kind::Voice => {
            let params = vec![
                ("CallSid".to_owned(), id.to_owned()),
                ("From".to_owned(), "+15557770000".to_owned()),
                ("To".to_owned(), NUMBER.to_owned()),
            ];
            let path = "/api/v1/webhooks/twilio/voice";
            let signature = twilio_signature(TOKEN, &format!("{PUBLIC}{path}"), &params);
            let body = serde_urlencoded::to_string(&params).unwrap_or_default();
            (
                "POST",
                path.to_owned(),
                format!(
                    "x-twilio-signature: {signature}\r\ncontent-type: application/x-www-form-urlencoded\r\n"
                ),
                body,
            )
        }
        Kind::Read => (
            "GET",
            format!("/api/v1/tenants/{slug}/calls?limit=5"),
            format!("authorization: Bearer {api_key}\r\n"),
            String::new(),
        ),
    };
    format!(
        "{method} {path} HTTP/1.1\r\nhost: gateway.bench\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn check(kind: Kind, status: u16, body: &str) -> Result<(), String> {
    let ok = status == 200
        && match kind {
            Kind::Cdr => body.contains("\"stored\":1"),
            Kind::Voice => body.contains("<Connect>"),
            Kind::Read => body.contains("\"items\""),
        };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{kind:?} {status}: {}",
            body.chars().take(200).collect::<String>()
        ))
    }
}

#[derive(Default)]
struct KindResult {
    latencies: Vec<Duration>,
    errors: usize,
    cancelled: usize,
    acked: Vec<String>,
    first_error: Option<String>,
}

impl KindResult {
    fn merge(&mut self, other: KindResult) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.cancelled += other.cancelled;
        self.acked.extend(other.acked);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// What one client sends.
struct ClientPlan {
    addr: SocketAddr,
    slug: Arc<str>,
    api_key: Arc<str>,
    kind: Kind,
    /// Makes its record ids unique across clients and phases.
    tag: String,
    /// Whether it abandons every `cancel_every`-th request.
    canceller: bool,
    cancel_every: usize,
    deadline: Instant,
}

/// One client: sends its kind until the deadline (abandoning some requests if a canceller).
async fn client(plan: ClientPlan) -> KindResult {
    let ClientPlan {
        addr,
        slug,
        api_key,
        kind,
        tag,
        canceller,
        cancel_every,
        deadline,
    } = plan;
    let mut connection = Connection::new(addr);
    let mut result = KindResult::default();
    let mut i = 0usize;
    while Instant::now() < deadline {
        let id = format!("{}-{tag}-{i}", kind.id_prefix());
        let request = request_bytes(&slug, &api_key, kind, &id);
        if canceller && i % cancel_every == cancel_every - 1 {
            // Hang up after 1 ms: the request is dropped wherever it is.
            let answered =
                tokio::time::timeout(Duration::from_millis(1), connection.send(&request)).await;
            if answered.is_err() {
                connection.close();
                result.cancelled += 1;
            }
            i += 1;
            continue;
        }
        let t = Instant::now();
        match connection
            .send(&request)
            .await
            .and_then(|(status, body)| check(kind, status, &body))
        {
            Ok(()) => {
                result.latencies.push(t.elapsed());
                if kind != Kind::Read {
                    result.acked.push(id);
                }
            }
            Err(error) => {
                result.errors += 1;
                result.first_error.get_or_insert(error);
            }
        }
        i += 1;
    }
    result
}

/// CPU seconds used so far: the whole process, the load generator's threads, and the
/// Postgres backends serving the bench's role (pid → seconds).
struct CpuSample {
    process: f64,
    loadgen: f64,
    postgres: HashMap<u32, f64>,
}

/// utime + stime of a `/proc/.../stat` line, in seconds (the kernel counts in USER_HZ, 100).
fn stat_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn cpu_sample() -> CpuSample {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let process = read("/proc/self/stat")
        .as_deref()
        .and_then(stat_seconds)
        .unwrap_or(0.0);
    let mut loadgen = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let dir = task.path();
            let named = std::fs::read_to_string(dir.join("comm"))
                .is_ok_and(|name| name.starts_with(LOADGEN));
            if named {
                loadgen += std::fs::read_to_string(dir.join("stat"))
                    .ok()
                    .as_deref()
                    .and_then(stat_seconds)
                    .unwrap_or(0.0);
            }
        }
    }
    let mut postgres = HashMap::new();
    if let Ok(processes) = std::fs::read_dir("/proc") {
        for process in processes.flatten() {
            let Some(pid) = process
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            // A backend's title names its role: "postgres: 15/main: <role> <db> <peer> …".
            let ours = std::fs::read(process.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(ROLE));
            if ours
                && let Some(seconds) = std::fs::read_to_string(process.path().join("stat"))
                    .ok()
                    .as_deref()
                    .and_then(stat_seconds)
            {
                postgres.insert(pid, seconds);
            }
        }
    }
    CpuSample {
        process,
        loadgen,
        postgres,
    }
}

/// CPU seconds between two samples: (gateway, load generator, Postgres). Backends that
/// started in between count from zero.
fn cpu_between(before: &CpuSample, after: &CpuSample) -> (f64, f64, f64) {
    let loadgen = after.loadgen - before.loadgen;
    let gateway = after.process - before.process - loadgen;
    let postgres = after
        .postgres
        .iter()
        .map(|(pid, seconds)| seconds - before.postgres.get(pid).copied().unwrap_or(0.0))
        .sum();
    (gateway, loadgen, postgres)
}

/// The 1-minute load average (Linux; "?" elsewhere).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

struct Settings {
    connections: usize,
    pool: usize,
    seconds: u64,
    cancel_every: usize,
}

/// One phase: `settings.connections` clients, client `c` sending `kinds[c % kinds.len()]`.
/// Prints the figures; returns the acknowledged record ids and the error count.
fn phase(
    load: &Runtime,
    settings: &Settings,
    addr: SocketAddr,
    slug: &str,
    api_key: &str,
    kinds: &[Kind],
    number: usize,
) -> anyhow::Result<(Vec<String>, usize)> {
    let slug: Arc<str> = slug.into();
    let api_key: Arc<str> = api_key.into();
    let load_before = load_average();
    let cpu_before = cpu_sample();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let results: Vec<(Kind, KindResult)> = load.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..settings.connections {
            let kind = kinds[c % kinds.len()];
            tasks.push((
                kind,
                tokio::spawn(client(ClientPlan {
                    addr,
                    slug: slug.clone(),
                    api_key: api_key.clone(),
                    kind,
                    tag: format!("{number}-{c}"),
                    canceller: c % 4 == 0,
                    cancel_every: settings.cancel_every,
                    deadline,
                })),
            ));
        }
        let mut results = Vec::new();
        for (kind, task) in tasks {
            results.push((kind, task.await?));
        }
        Ok::<_, anyhow::Error>(results)
    })?;
    let elapsed = started.elapsed();
    let (gateway_cpu, loadgen_cpu, postgres_cpu) = cpu_between(&cpu_before, &cpu_sample());
    let mut by_kind: Vec<(Kind, KindResult)> = Vec::new();
    for (kind, result) in results {
        match by_kind.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, total)) => total.merge(result),
            None => by_kind.push((kind, result)),
        }
    }
    let completed: usize = by_kind
        .iter()
        .map(|(_, r)| r.latencies.len() + r.errors + r.cancelled)
        .sum::<usize>()
        .max(1);
    let per_request = |seconds: f64| seconds * 1e6 / completed as f64;
    // No Postgres processes of the bench's role on SQLite: nothing to print (not "-0 µs").
    let postgres = if postgres_cpu > 0.0 {
        format!(", Postgres {:.0} µs", per_request(postgres_cpu))
    } else {
        String::new()
    };
    println!(
        "  {} ({} clients, {:.1} s, load average {load_before} → {}): CPU per request: gateway {:.0} µs, load generator {:.0} µs{postgres}",
        kinds
            .iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join("+"),
        settings.connections,
        elapsed.as_secs_f64(),
        load_average(),
        per_request(gateway_cpu),
        per_request(loadgen_cpu),
    );
    let mut acked = Vec::new();
    let mut errors = 0;
    for (kind, mut result) in by_kind {
        result.latencies.sort();
        println!(
            "    {:<22} {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} ok, {} errors, {} cancelled)",
            kind.label(),
            result.latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(percentile(&result.latencies, 0.50)),
            ms(percentile(&result.latencies, 0.99)),
            result.latencies.len(),
            result.errors,
            result.cancelled,
        );
        if let Some(error) = result.first_error {
            println!("      first error: {error}");
        }
        errors += result.errors;
        acked.extend(result.acked);
    }
    Ok((acked, errors))
}

fn run(
    gateway: &Runtime,
    load: &Runtime,
    backend: &str,
    url: &str,
    phases: &[Vec<Kind>],
) -> anyhow::Result<()> {
    let settings = Settings {
        connections: env_usize("BENCH_CONNECTIONS", 64).max(1),
        pool: env_usize("BENCH_POOL", 16).max(1),
        seconds: env_usize("BENCH_SECONDS", 10) as u64,
        cancel_every: env_usize("BENCH_CANCEL_EVERY", 5).max(1),
    };
    let (state, addr, server, tenant_id, slug, api_key) = gateway.block_on(async {
        let (state, addr, server) = start(url, settings.pool).await?;
        let (tenant_id, slug) = enterprise_tenant(&state, addr, NUMBER, "twilio").await?;
        let api_key = credentials(&state, addr, &tenant_id, &slug).await?;
        Ok::<_, anyhow::Error>((state, addr, server, tenant_id, slug, api_key))
    })?;
    println!(
        "load ({backend}, {} connections, pool {}, {} s per phase, {} CPU(s), one client in four hangs up on every {}th request after 1 ms):",
        settings.connections,
        settings.pool,
        settings.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        settings.cancel_every,
    );
    let mut acked = Vec::new();
    let mut errors = 0;
    for (number, kinds) in phases.iter().enumerate() {
        let (ids, phase_errors) = phase(load, &settings, addr, &slug, &api_key, kinds, number)?;
        acked.extend(ids);
        errors += phase_errors;
    }
    let ready = load.block_on(async {
        let mut connection = Connection::new(addr);
        connection
            .send(b"GET /readyz HTTP/1.1\r\nhost: gateway.bench\r\ncontent-length: 0\r\n\r\n")
            .await
            .map(|(status, _)| status.to_string())
            .unwrap_or_else(|error| error)
    });

    // Restart: stop serving, close the pool, start again on the same database.
    let stored: HashSet<String> = gateway.block_on(async {
        server.abort();
        state.store.pool().close().await;
        drop(state);
        let (state, _addr, server) = start(url, settings.pool).await?;
        let mut tx = state.store.read(&Scope::tenant(&tenant_id)).await?;
        let stored: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT carrier_call_id FROM calls WHERE tenant_id = $1")
                .bind(&tenant_id)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        server.abort();
        state.store.pool().close().await;
        Ok::<_, anyhow::Error>(stored.into_iter().filter_map(|(id,)| id).collect())
    })?;
    let lost = acked.iter().filter(|id| !stored.contains(*id)).count();
    println!(
        "  /readyz after load: {ready}; {errors} errors; after restart {} of {} acknowledged records stored ({lost} lost)",
        acked.len() - lost,
        acked.len(),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let phases = phases(&option("kind", "BENCH_KIND", "each"))?;
    let postgres_url = std::env::var("BENCH_DATABASE_URL").ok();
    let default_backend = if postgres_url.is_some() {
        "both"
    } else {
        "sqlite"
    };
    let backend = option("backend", "BENCH_BACKEND", default_backend);
    let (sqlite, postgres) = match backend.as_str() {
        "sqlite" => (true, false),
        "postgres" => (false, true),
        "both" => (true, true),
        other => anyhow::bail!("--backend {other}: expected sqlite, postgres or both"),
    };
    // The gateway and the load generator on runtimes of their own, so that the CPU of each
    // can be told apart (by thread name).
    let gateway = tokio::runtime::Builder::new_multi_thread()
        .thread_name("gateway")
        .enable_all()
        .build()?;
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_usize("BENCH_LOAD_THREADS", 2).max(1))
        .thread_name(LOADGEN)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    if sqlite {
        let (url, name) = gateway.block_on(database(None, &dir))?;
        run(&gateway, &load, name, &url, &phases)?;
    }
    if postgres {
        match postgres_url {
            Some(admin) => {
                let (url, name) = gateway.block_on(database(Some(admin), &dir))?;
                run(&gateway, &load, name, &url, &phases)?;
            }
            None => println!("BENCH_DATABASE_URL unset: Postgres not measured"),
        }
    }
    Ok(())
}
