//! Campaign dialer benchmark (prints figures; not a timed test).
//!
//! Registers one campaign of `BENCH_CONTACTS` contacts (default 10,000) over the internal
//! API, then runs dialer passes with an injected clock (60 s per pass, so pacing of 1,000
//! calls per minute is the only brake) against the sandbox carrier until every contact is
//! final. Between passes the carrier ends every call through the real status-webhook path
//! (80 % answered, 20 % no answer, retried once). Only the passes are timed.
//!
//! Prints dialer decisions per second (contacts claimed + attempts settled), pass latency,
//! and database load: transactions per decision from the dialer's own count, and on Postgres
//! the server's committed transactions and rows read/written for the whole run.
//!
//! `cargo bench -p switchboard-gateway --bench dialer` (SQLite), or with
//! `BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test` (Postgres, RLS-bound role).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use switchboard_carriers::{Carrier, PurchaseRequest, SandboxCarrier, WebhookConfig};
use switchboard_crds::CampaignPhase;
use switchboard_gateway::calls::CallStatus;
use switchboard_gateway::calls::lifecycle::{StatusUpdate, apply_status};
use switchboard_gateway::campaigns::progress_of;
use switchboard_gateway::dialer::clock::ManualClock;
use switchboard_gateway::dialer::{Dialer, PassReport};
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::store::tenants;
use switchboard_gateway::store::{Backend, Store};
use switchboard_gateway::{AppState, app};

#[path = "support/mod.rs"]
mod support;
use support::{Wrapper, database, enterprise_tenant, env_usize, ms, percentile, serve};

const PUBLIC: &str = "https://gateway.bench";
const INTERNAL: &str = "bench-internal-token";
const FROM: &str = "+15550100";

/// Server-side counters of the bench database (Postgres only).
async fn pg_counters(store: &Store) -> anyhow::Result<Option<(i64, i64, i64)>> {
    if store.backend() != Backend::Postgres {
        return Ok(None);
    }
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT xact_commit::BIGINT, (tup_returned + tup_fetched)::BIGINT, \
         (tup_inserted + tup_updated + tup_deleted)::BIGINT \
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(Some(row))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let contacts = env_usize("BENCH_CONTACTS", 10_000);
    let dir = tempfile::tempdir()?;
    let (url, backend) = database(std::env::var("BENCH_DATABASE_URL").ok(), &dir).await?;
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
        "--internal-token",
        INTERNAL,
        "--database-max-connections",
        "16",
    ])?
    .config;
    let store = Store::connect(&url, 16).await?;
    let mut state = AppState::assemble(
        config,
        store,
        Arc::new(MemoryMailer::default()),
        KubeSync::disabled(),
    )
    .await?;
    let sandbox = SandboxCarrier::in_memory();
    sandbox
        .buy(&PurchaseRequest {
            e164: FROM.into(),
            tag: "bench".into(),
            webhooks: WebhookConfig {
                voice_url: format!("{PUBLIC}/api/v1/webhooks/twilio/voice"),
                status_callback_url: None,
            },
        })
        .await?;
    state.sandbox = Some(sandbox.clone());
    let addr = serve(app(state.clone())).await?;
    let http = reqwest::Client::new();
    let (tenant_id, slug) = enterprise_tenant(&state, addr, FROM, "sandbox").await?;

    let mut csv = String::from("phone,name\n");
    for i in 0..contacts {
        csv.push_str(&format!("+1555{:07},Contact {i}\n", 2_000_000 + i));
    }
    let registered = Instant::now();
    let reply = http
        .put(format!(
            "http://{addr}/internal/v1/tenants/{slug}/campaigns/bench"
        ))
        .bearer_auth(INTERNAL)
        .json(&json!({"namespace": "bench", "uid": "bench-uid", "generation": 1,
            "fromNumber": FROM, "contactsCsv": csv,
            "spec": {"fromNumber": "bench", "contacts": {"uploaded": true},
                "schedule": {"timeZone": "UTC", "windowStart": "00:00", "windowEnd": "23:59", "days": []},
                "pacing": {"maxConcurrent": 500, "callsPerMinute": 1000},
                "retry": {"maxAttempts": 2, "backoffSeconds": 60, "retryOn": ["no-answer"]}}}))
        .send()
        .await?;
    anyhow::ensure!(
        reply.status().is_success(),
        "registration failed: {}",
        reply.text().await?
    );
    let registration = registered.elapsed();
    // Postgres plans against statistics; a database in service has them (autovacuum), a
    // bench that fills tables from empty does not, so it analyzes as autovacuum would.
    let admin = std::env::var("BENCH_DATABASE_URL").ok();
    let analyze = || async {
        match &admin {
            Some(admin) => {
                support::analyze(
                    admin,
                    &url,
                    &["campaign_contacts", "campaign_attempts", "calls"],
                )
                .await
            }
            None => Ok(()),
        }
    };
    analyze().await?;

    let clock = ManualClock::starting_at(1_767_600_000_000);
    let dialer = Dialer::new(state.clone(), Arc::new(clock.clone()));
    let tenant = tenants::load(&state.store, &tenant_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("tenant vanished"))?;
    let before = pg_counters(&state.store).await?;
    let mut total = PassReport::default();
    let mut pass_times = Vec::new();
    let mut ended = 0usize;
    let started = Instant::now();
    for pass in 0..10_000 {
        if pass % 10 == 5 {
            analyze().await?;
        }
        let t = Instant::now();
        let report = dialer.pass().await?;
        pass_times.push(t.elapsed());
        total.claimed += report.claimed;
        total.settled += report.settled;
        total.placed += report.placed;
        total.transactions += report.transactions;
        for call in sandbox.calls().into_iter().filter(|c| c.ended_at.is_none()) {
            sandbox.complete_call(&call.id);
            ended += 1;
            let answered = !ended.is_multiple_of(5);
            let update = StatusUpdate {
                status: if answered {
                    CallStatus::Completed
                } else {
                    CallStatus::NoAnswer
                },
                duration_seconds: Some(if answered { 45 } else { 0 }),
            };
            apply_status(&state, &tenant, "sandbox", &call.id, &update).await?;
        }
        let finished = progress_of(&state.store, &tenant_id, "bench")
            .await?
            .is_some_and(|p| p.phase == CampaignPhase::Completed);
        if finished {
            break;
        }
        clock.advance_ms(60_000);
    }
    let wall = started.elapsed();
    let after = pg_counters(&state.store).await?;
    let busy: Duration = pass_times.iter().sum();
    pass_times.sort();
    let decisions = total.decisions();
    println!(
        "dialer ({backend}, {contacts} contacts): registration {:.0} ms; {} passes, {} calls placed, {decisions} decisions in {:.2} s of passes ({:.2} s wall incl. call endings)",
        ms(registration),
        pass_times.len(),
        total.placed,
        busy.as_secs_f64(),
        wall.as_secs_f64(),
    );
    println!(
        "dialer throughput: {:.0} decisions/s; pass p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        decisions as f64 / busy.as_secs_f64(),
        ms(percentile(&pass_times, 0.50)),
        ms(percentile(&pass_times, 0.99)),
        ms(percentile(&pass_times, 1.0)),
    );
    println!(
        "database load (dialer): {} transactions, {:.2} per decision, {:.0} transactions/s while passing",
        total.transactions,
        total.transactions as f64 / decisions.max(1) as f64,
        total.transactions as f64 / busy.as_secs_f64(),
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "database load (Postgres server, whole run incl. status webhooks): {} commits, {} rows read, {} rows written; {:.1} rows written per decision",
            a.0 - b.0,
            a.1 - b.1,
            a.2 - b.2,
            (a.2 - b.2) as f64 / decisions.max(1) as f64,
        );
    }
    let per_contact = sandbox.calls().len() as f64 / contacts as f64;
    println!(
        "calls per contact {per_contact:.2} (expected ~1.2 with 20 % no-answer retried once); max concurrent at the carrier {}",
        sandbox.max_concurrent_calls()
    );
    Ok(())
}
