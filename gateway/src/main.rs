//! `switchboard-gateway`: the public control plane.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use switchboard_telemetry::{
    LogFormat, ReadinessCheck, init_logging, observability_router, shutdown_signal,
};

/// Command-line and environment configuration.
#[derive(Parser, Debug)]
#[command(name = "switchboard-gateway", version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// Log format: text or json.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format, "info");
    let ready: ReadinessCheck = Arc::new(|| Box::pin(async { Ok(()) }));
    let app = observability_router(prometheus::Registry::new(), ready);
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    tracing::info!(address = %cli.listen, "gateway listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")
}
