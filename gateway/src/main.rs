//! `switchboard-gateway`: the public control plane.
//!
//! `switchboard-gateway` (or `serve`) runs the server; `switchboard-gateway migrate` applies
//! the database migrations and exits; `switchboard-gateway rekey` re-encrypts stored secrets
//! under the current master key; `switchboard-gateway standalone` runs the whole platform
//! on one host (SQLite, sandbox carrier, embedded runtime).

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard_gateway::store::Store;
use switchboard_gateway::{AppState, Config};
use switchboard_telemetry::{LogFormat, init_logging, serve_observability, shutdown_signal};

/// Command-line and environment configuration.
#[derive(Parser, Debug)]
#[command(name = "switchboard-gateway", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log format: text or json.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Re-encrypt every stored secret under the current master key (`MASTER_ENCRYPTION_KEY`),
    /// reading those sealed under a key of `MASTER_ENCRYPTION_PREVIOUS_KEYS`, and exit. The
    /// gateway also does this at start and hourly; afterwards the former keys can be removed.
    Rekey,
    /// Run the whole platform on this host: SQLite and generated secrets in ./.switchboard,
    /// the sandbox carrier and an embedded voice runtime (no Kubernetes).
    Standalone(switchboard_gateway::standalone::StandaloneArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format, "info");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(&cli.config).await,
        Command::Rekey => rekey(&cli.config).await,
        Command::Serve => serve(cli.config).await,
        Command::Standalone(args) => standalone(&args, cli.config).await,
    }
}

async fn standalone(
    args: &switchboard_gateway::standalone::StandaloneArgs,
    config: Config,
) -> anyhow::Result<()> {
    let running = switchboard_gateway::standalone::start(args, config)
        .await
        .context("cannot start standalone mode")?;
    println!("{}", running.next_steps());
    running.run_until(shutdown_signal()).await;
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url, 1)
        .await
        .context("cannot connect to the database")?;
    store.migrate().await.context("migrations failed")?;
    tracing::info!(backend = ?store.backend(), "migrations applied");
    Ok(())
}

async fn rekey(config: &Config) -> anyhow::Result<()> {
    let secrets = config
        .resolve_secrets()
        .context("cannot read the master keys")?;
    let keyring =
        switchboard_gateway::crypto::Keyring::new(&secrets.master_key, &secrets.master_previous);
    let store = Store::connect(&config.database_url, 1)
        .await
        .context("cannot connect to the database")?;
    let done = switchboard_gateway::lifecycle::rekey::rekey_all(&store, &keyring)
        .await
        .context("re-encryption failed")?;
    println!(
        "re-encrypted under key {}: {} provider credentials, {} webhook secrets, {} idempotent answers; {} unreadable (sealed under a key not configured)",
        keyring.current_key_id(),
        done.provider_credentials,
        done.webhook_endpoints,
        done.idempotent_answers,
        done.unreadable
    );
    if done.unreadable > 0 {
        anyhow::bail!("some secrets are sealed under a master key that is not configured");
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = AppState::from_config(config)
        .await
        .context("cannot start the gateway")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listen, backend = ?state.store.backend(), "gateway listening");
    // The metrics port stops after the public server has drained.
    let metrics_stop = tokio_util::sync::CancellationToken::new();
    let (_, metrics_server) = serve_observability(
        state.config.metrics_listen,
        state.registry.clone(),
        switchboard_gateway::http::readiness(&state),
        metrics_stop.clone().cancelled_owned(),
    )
    .await
    .with_context(|| format!("cannot listen on {}", state.config.metrics_listen))?;
    let workers = switchboard_gateway::workers::start(&state);
    // On SIGTERM: readiness false, no new calls, proxied calls kept until they end or
    // SWITCHBOARD_DRAIN_SECONDS pass, then the HTTP server closes (see `drain`).
    let served = switchboard_gateway::http::server::serve_draining(
        state.clone(),
        listener,
        shutdown_signal(),
    )
    .await
    .context("server failed");
    // The server has drained its requests: the meter writes the counts of the last interval.
    let written = workers.stop().await;
    metrics_stop.cancel();
    if let Ok(Err(error)) = metrics_server.await {
        tracing::warn!(%error, "metrics server failed");
    }
    tracing::info!(
        api_requests = written,
        "API request counts written on shutdown"
    );
    served
}
