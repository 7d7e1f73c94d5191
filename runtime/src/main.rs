//! `switchboard-runtime`: serves carrier media streams for one tenant.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::Parser;
use switchboard_runtime::{
    ConfigSource, ConfigStore, Credential, EventSink, Metrics, RuntimeConfig, RuntimeState, Secret,
    router,
};
use switchboard_telemetry::{
    LogFormat, health_router, init_logging, serve_observability, shutdown_signal,
};
use tokio_util::sync::CancellationToken;

/// Command-line and environment configuration.
#[derive(Parser, Debug)]
#[command(name = "switchboard-runtime", version, about)]
struct Cli {
    /// Address of the media WebSockets, `/healthz` and `/readyz`.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// Address of `/metrics` (and `/healthz`, `/readyz`): a port of its own, never the media
    /// port, so a NetworkPolicy can admit the monitoring namespace to it alone.
    #[arg(
        long,
        env = "SWITCHBOARD_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    metrics_listen: std::net::SocketAddr,
    /// Log format: text or json.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// Tenant name (metric label; default tenant of events).
    #[arg(long, env = "SWITCHBOARD_TENANT", default_value = "default")]
    tenant: String,
    /// Calls this pod takes at once; more are refused with 503.
    #[arg(long, env = "SWITCHBOARD_MAX_CONCURRENT_CALLS", default_value_t = 50)]
    max_concurrent_calls: usize,
    /// Directory of the agent ConfigMap (`agent.json`, optional `campaigns.json`).
    #[arg(
        long,
        env = "SWITCHBOARD_AGENT_CONFIG_DIR",
        default_value = "/etc/switchboard/agent"
    )]
    agent_config_dir: PathBuf,
    /// Directory of the provider keys Secret (one file per key).
    #[arg(
        long,
        env = "SWITCHBOARD_PROVIDER_KEYS_DIR",
        default_value = "/etc/switchboard/keys"
    )]
    provider_keys_dir: PathBuf,
    /// Gateway endpoint receiving call events; unset disables delivery.
    #[arg(long, env = "SWITCHBOARD_GATEWAY_EVENTS_URL")]
    gateway_events_url: Option<String>,
    /// Bearer token for the gateway's internal endpoints (fixed for the process's life).
    #[arg(long, env = "SWITCHBOARD_INTERNAL_TOKEN", hide_env_values = true)]
    internal_token: Option<String>,
    /// File holding the bearer token (the mounted `runtime-credential` Secret), re-read on
    /// every delivery so a rotated credential is used without a restart; takes precedence
    /// over `SWITCHBOARD_INTERNAL_TOKEN`.
    #[arg(long, env = "SWITCHBOARD_INTERNAL_TOKEN_FILE")]
    internal_token_file: Option<PathBuf>,
    /// Milliseconds a provider may take (first token, first audio, transcript).
    #[arg(long, env = "SWITCHBOARD_PROVIDER_TIMEOUT_MS", default_value_t = 8000)]
    provider_timeout_ms: u64,
    /// Let provider base URLs reach loopback, private, link-local and cluster addresses
    /// (development only; off keeps a tenant's agent from calling inside the cluster).
    #[arg(long, env = "SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    outbound_allow_private: bool,
    /// Seconds live calls get to finish after SIGTERM (keep below the pod's grace period).
    #[arg(long, env = "SWITCHBOARD_DRAIN_SECONDS", default_value_t = 540)]
    drain_seconds: u64,
    /// Seconds between checks of the mounted configuration.
    #[arg(long, env = "SWITCHBOARD_CONFIG_POLL_SECONDS", default_value_t = 3)]
    config_poll_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format, "info");

    let source = ConfigSource {
        agent_dir: cli.agent_config_dir.clone(),
        keys_dir: cli.provider_keys_dir.clone(),
    };
    let snapshot = source.load().unwrap_or_else(|error| {
        tracing::error!(%error, "cannot load agent configuration; using builtin defaults");
        Default::default()
    });
    let store = Arc::new(ConfigStore::new(snapshot));
    let background = CancellationToken::new();
    let reloader = store.clone().spawn_reloader(
        source,
        Duration::from_secs(cli.config_poll_seconds.max(1)),
        background.clone(),
    );

    let metrics = Metrics::new(&cli.tenant).context("cannot register metrics")?;
    let credential = match &cli.internal_token_file {
        Some(path) => Some(Credential::File(path.clone())),
        None => cli
            .internal_token
            .clone()
            .map(Secret::new)
            .map(Credential::Fixed),
    };
    let (events, delivery) = EventSink::spawn_with_credential(
        cli.gateway_events_url.clone(),
        credential,
        metrics.clone(),
        background.clone(),
    );
    let config = RuntimeConfig {
        tenant: cli.tenant.clone(),
        max_concurrent_calls: cli.max_concurrent_calls.max(1),
        events_url: cli.gateway_events_url.clone(),
        internal_token: cli.internal_token.map(Secret::new),
        provider_timeout: Duration::from_millis(cli.provider_timeout_ms.max(100)),
        outbound_allow_private: cli.outbound_allow_private,
        ..RuntimeConfig::default()
    };
    let state = RuntimeState::new(config, store, metrics.clone(), events);
    let app = router(state.clone()).merge(health_router(state.readiness()));
    // The metrics port outlives the media server: it is stopped once the drain is over, so
    // the last calls' figures can still be scraped while they finish.
    let metrics_stop = CancellationToken::new();
    let (_, metrics_server) = serve_observability(
        cli.metrics_listen,
        metrics.registry.clone(),
        state.readiness(),
        metrics_stop.clone().cancelled_owned(),
    )
    .await
    .with_context(|| format!("cannot listen on {}", cli.metrics_listen))?;

    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    // Media frames are small and latency-critical: no Nagle delay on any socket.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    tracing::info!(address = %cli.listen, tenant = %cli.tenant, "runtime listening");
    let drain_deadline = Duration::from_secs(cli.drain_seconds);
    let drain_state = state.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Keep serving /healthz and /readyz (now failing) while calls finish.
            let graceful = drain_state.drain(drain_deadline).await;
            tracing::info!(graceful, "drain complete");
        })
        .await
        .context("server failed")?;
    metrics_stop.cancel();
    if let Ok(Err(error)) = metrics_server.await {
        tracing::warn!(%error, "metrics server failed");
    }

    // Flush events: the delivery task ends once every sender (held by the state) is gone.
    background.cancel();
    drop(state);
    let _ = reloader.await;
    if tokio::time::timeout(Duration::from_secs(15), delivery)
        .await
        .is_err()
    {
        tracing::warn!("some events could not be delivered before exit");
    }
    Ok(())
}
