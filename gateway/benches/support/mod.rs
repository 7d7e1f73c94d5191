//! What the gateway's benchmarks share: configuration parsing, a database for the app
//! (SQLite in a temp dir, or a fresh Postgres schema used through an ordinary RLS-bound
//! role), a local HTTP server and percentile arithmetic.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use sqlx::Executor;
use switchboard_gateway::store::numbers::{self, NumberRow};
use switchboard_gateway::store::{Scope, Store, system};
use switchboard_gateway::{AppState, Config};

pub const ROLE: &str = "switchboard_gateway_bench_app";

#[derive(Parser)]
pub struct Wrapper {
    #[command(flatten)]
    pub config: Config,
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A database URL for the app: SQLite in a temp dir, or a fresh Postgres schema used
/// through an ordinary (RLS-bound) role.
pub async fn database(
    admin: Option<String>,
    dir: &tempfile::TempDir,
) -> anyhow::Result<(String, &'static str)> {
    let Some(admin_url) = admin else {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        Store::connect(&url, 1).await?.migrate().await?;
        return Ok((url, "sqlite"));
    };
    sqlx::any::install_default_drivers();
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::AnyPool::connect(&admin_url).await?;
    pool.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await?;
    pool.execute(
        format!(
            "DO $$ BEGIN CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
        .as_str(),
    )
    .await?;
    let with = |user: Option<&str>| {
        let (scheme, rest) = admin_url
            .split_once("://")
            .unwrap_or(("postgres", &admin_url));
        let rest = match (user, rest.split_once('@')) {
            (Some(u), Some((_, host))) => format!("{u}@{host}"),
            (Some(u), None) => format!("{u}@{rest}"),
            (None, _) => rest.to_owned(),
        };
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("{scheme}://{rest}{sep}options[search_path]={schema}")
    };
    Store::connect(&with(None), 1).await?.migrate().await?;
    pool.execute(
        format!(
            "GRANT USAGE ON SCHEMA {schema} TO {ROLE}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {ROLE}"
        )
        .as_str(),
    )
    .await?;
    Ok((with(Some(ROLE)), "postgres"))
}

pub async fn serve(router: Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok(addr)
}

/// Refreshes the planner's statistics of `tables` in the bench schema of `app_url` (as the
/// admin of `admin_url`), as autovacuum would have on a database in service: a bench that
/// fills tables from empty would otherwise run on plans made for empty tables.
pub async fn analyze(admin_url: &str, app_url: &str, tables: &[&str]) -> anyhow::Result<()> {
    let schema = app_url
        .rsplit_once("options[search_path]=")
        .map(|(_, schema)| schema)
        .ok_or_else(|| anyhow::anyhow!("not a bench schema URL"))?;
    let pool = sqlx::AnyPool::connect(admin_url).await?;
    for table in tables {
        pool.execute(format!("ANALYZE {schema}.{table}").as_str())
            .await?;
    }
    pool.close().await;
    Ok(())
}

/// Signs a tenant up over HTTP at `addr`, moves it to the unlimited `enterprise` plan (with
/// campaigns) and routes `e164` to it on `carrier`'s platform account. Returns (id, slug).
pub async fn enterprise_tenant(
    state: &AppState,
    addr: SocketAddr,
    e164: &str,
    carrier: &str,
) -> anyhow::Result<(String, String)> {
    let signup = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/auth/signup"))
        .json(
            &serde_json::json!({"email": format!("bench-{carrier}@example.com"),
            "password": "correct horse battery staple", "name": "Bench", "company": "Bench Co"}),
        )
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    let text = |field: &str| {
        signup["tenant"][field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("signup failed: {signup}"))
    };
    let (tenant_id, slug) = (text("id")?, text("slug")?);
    let mut tx = state.store.write(&Scope::tenant(&tenant_id)).await?;
    sqlx::query("UPDATE tenants SET plan = 'enterprise' WHERE id = $1")
        .bind(&tenant_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut tx = system::write(&state.store).await?;
    numbers::upsert(
        &mut tx,
        &NumberRow {
            e164: e164.into(),
            tenant_id: tenant_id.clone(),
            carrier: carrier.into(),
            account: "platform".into(),
            agent: None,
            updated_at: 0,
        },
    )
    .await?;
    tx.commit().await?;
    state.numbers.reload(&state.store).await?;
    Ok((tenant_id, slug))
}
