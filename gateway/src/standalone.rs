//! Standalone mode (`switchboard-gateway standalone`): the whole platform on one host.
//!
//! One process runs the gateway on SQLite, the sandbox carrier and the voice runtime
//! (embedded: its router served on a loopback port, reached by the gateway's media proxy as
//! in Kubernetes). Everything lives in one data folder (`./.switchboard` by default):
//!
//! | file | what |
//! | --- | --- |
//! | `switchboard.db` | the SQLite database |
//! | `secrets/` | generated once (0700 folder, 0600 files), so tokens survive restarts |
//! | `sandbox.json` | the sandbox carrier's numbers |
//! | `agent/agent.json`, `keys/` | optional agent and provider keys for the runtime |
//! | `mail-outbox/` | e-mails the gateway would send |
//!
//! Each tenant's calls get that tenant's agents (default and named, picked by the number
//! called or the campaign), its numbers' agents and its stored provider keys, read from the
//! database ([`crate::embedded_agents`]), as in Kubernetes mode. Without any, the runtime uses
//! `agent/agent.json` or its builtin offline providers (an echo agent that greets and repeats
//! each utterance), so a simulated call works with no keys at all.
//! Campaign calls the dialer places through the sandbox are picked up by simulated contacts
//! who stay on the line for [`SIMULATED_TALK`] and hang up (no media), so a campaign runs to
//! the end and its results, usage and webhooks can be looked at.
//! Flags and environment variables still win over everything generated here.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use switchboard_carriers::SandboxCarrier;
use switchboard_carriers::sandbox::SimulatedContacts;
use switchboard_runtime::{
    ConfigSource, ConfigStore, EventSink, Metrics, RuntimeConfig, RuntimeState, Secret,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DEFAULT_DATABASE_URL};
use crate::state::{AppState, StartupError};

/// The gateway's default listen address, replaced by loopback in standalone mode.
const SERVE_DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// `serve`'s default metrics address; standalone keeps metrics on loopback instead.
const SERVE_DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9090";
/// The gateway's default public URL, replaced by the real address in standalone mode.
const SERVE_DEFAULT_PUBLIC_URL: &str = "http://localhost:8080";
/// The gateway's default mail folder, moved into the data folder in standalone mode.
const SERVE_DEFAULT_MAIL_OUTBOX: &str = "mail-outbox";
/// Live calls get this long to finish on shutdown.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);
/// How long a simulated contact of the sandbox stays on a campaign call.
pub const SIMULATED_TALK: Duration = Duration::from_secs(5);

/// How often the runtime re-reads `agent/` and `keys/`.
const AGENT_POLL: Duration = Duration::from_secs(3);

/// Standalone settings (the gateway's own flags apply too).
#[derive(Args, Debug, Clone)]
pub struct StandaloneArgs {
    /// Folder holding the database, generated secrets, sandbox numbers and agent files.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = ".switchboard")]
    pub data_dir: PathBuf,
    /// Address of the embedded runtime (keep it on loopback: runtimes are never public).
    #[arg(
        long,
        env = "SWITCHBOARD_RUNTIME_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    pub runtime_listen: SocketAddr,
}

/// Why standalone mode cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The data folder or a secret file cannot be used.
    #[error("cannot use {path}: {source}")]
    Files {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A port cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The gateway cannot start.
    #[error(transparent)]
    Gateway(#[from] StartupError),
    /// The sandbox carrier's state file is unusable.
    #[error("sandbox carrier: {0}")]
    Sandbox(#[from] switchboard_carriers::CarrierError),
    /// The runtime's metrics cannot be registered.
    #[error("runtime metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

fn files_error(path: &Path) -> impl FnOnce(std::io::Error) -> StandaloneError + '_ {
    move |source| StandaloneError::Files {
        path: path.to_owned(),
        source,
    }
}

/// Secrets of a standalone installation, generated on first start and kept in
/// `<data>/secrets/`.
#[derive(Clone)]
pub struct StandaloneSecrets {
    /// `JWT_SECRET`.
    pub jwt_secret: String,
    /// `MASTER_ENCRYPTION_KEY` (hex).
    pub master_key: String,
    /// `SWITCHBOARD_SANDBOX_AUTH_TOKEN`: the sandbox carrier signs webhooks with it.
    pub sandbox_auth_token: String,
    /// `SWITCHBOARD_INTERNAL_TOKEN`: the embedded runtime reports call events with it.
    pub internal_token: String,
}

impl std::fmt::Debug for StandaloneSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandaloneSecrets(***)")
    }
}

/// File (under `<data>/secrets/`) of the sandbox auth token, for `export …=$(cat …)`.
pub const SANDBOX_TOKEN_FILE: &str = "sandbox-auth-token";

impl StandaloneSecrets {
    /// Reads the secrets from `dir`, generating (and saving, 0600) each one that is missing.
    pub fn load_or_generate(dir: &Path) -> Result<Self, StandaloneError> {
        create_private_dir(dir)?;
        Ok(Self {
            jwt_secret: secret_file(dir, "jwt-secret", || hex::encode(random_bytes()))?,
            master_key: secret_file(dir, "master-key", || hex::encode(random_bytes()))?,
            sandbox_auth_token: secret_file(dir, SANDBOX_TOKEN_FILE, || {
                hex::encode(random_bytes())
            })?,
            internal_token: secret_file(dir, "internal-token", || hex::encode(random_bytes()))?,
        })
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes
}

fn create_private_dir(dir: &Path) -> Result<(), StandaloneError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(files_error(dir))
}

/// The trimmed content of `dir/name`, or a fresh value written there with mode 0600
/// (created exclusively, so two processes starting at once agree on one value).
fn secret_file(
    dir: &Path,
    name: &str,
    generate: impl FnOnce() -> String,
) -> Result<String, StandaloneError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(files_error(&path)(e)),
    }
    let value = generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&path) {
        Ok(file) => file,
        // Another process wrote it first (or an empty file was left): use what is there,
        // replacing only an empty file.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path).map_err(files_error(&path))?;
            if !text.trim().is_empty() {
                return Ok(text.trim().to_owned());
            }
            std::fs::remove_file(&path).map_err(files_error(&path))?;
            options.open(&path).map_err(files_error(&path))?
        }
        Err(e) => return Err(files_error(&path)(e)),
    };
    file.write_all(value.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(files_error(&path))?;
    Ok(value)
}

/// Fills in standalone defaults where the configuration still has the `serve` defaults:
/// SQLite in the data folder, loopback, no Kubernetes, dev mode, generated secrets, the
/// embedded runtime. Values given by flag or environment are kept.
pub fn standalone_config(
    mut config: Config,
    data_dir: &Path,
    secrets: &StandaloneSecrets,
) -> Config {
    if config.database_url == DEFAULT_DATABASE_URL {
        config.database_url = format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("switchboard.db").display()
        );
    }
    if config.listen.to_string() == SERVE_DEFAULT_LISTEN {
        config.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    }
    if config.metrics_listen.to_string() == SERVE_DEFAULT_METRICS_LISTEN {
        config.metrics_listen = SocketAddr::from(([127, 0, 0, 1], 9090));
    }
    if config.mail_outbox == Path::new(SERVE_DEFAULT_MAIL_OUTBOX) {
        config.mail_outbox = data_dir.join("mail-outbox");
    }
    config
        .recordings_dir
        .get_or_insert_with(|| data_dir.join("recordings"));
    config.kubernetes = false;
    config.dev_mode = true;
    config.migrate_on_start = true;
    config
        .jwt_secret
        .get_or_insert_with(|| secrets.jwt_secret.clone());
    config
        .master_encryption_key
        .get_or_insert_with(|| secrets.master_key.clone());
    let voice = &mut config.voice;
    voice
        .sandbox_auth_token
        .get_or_insert_with(|| secrets.sandbox_auth_token.clone());
    voice
        .internal_token
        .get_or_insert_with(|| secrets.internal_token.clone());
    config
}

/// The URL people and the sandbox reach a listening address at (`0.0.0.0` → `127.0.0.1`).
pub fn reachable_url(address: SocketAddr) -> String {
    let ip = if address.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        address.ip()
    };
    format!("http://{}", SocketAddr::new(ip, address.port()))
}

/// A running standalone platform.
pub struct Running {
    /// The gateway's state (database, number table, sandbox carrier).
    pub state: AppState,
    /// Where the gateway listens.
    pub gateway_address: SocketAddr,
    /// Where the embedded runtime listens (loopback).
    pub runtime_address: SocketAddr,
    /// Where the gateway's `/metrics` is served (`SWITCHBOARD_METRICS_LISTEN`).
    pub metrics_address: SocketAddr,
    /// The data folder.
    pub data_dir: PathBuf,
    stop_metrics: CancellationToken,
    metrics_server: JoinHandle<std::io::Result<()>>,
    stop_runtime: watch::Sender<bool>,
    stop_gateway: watch::Sender<bool>,
    gateway: JoinHandle<std::io::Result<()>>,
    runtime: JoinHandle<std::io::Result<()>>,
    runtime_state: RuntimeState,
    workers: crate::workers::Workers,
    runtime_background: CancellationToken,
    event_delivery: JoinHandle<()>,
    reloader: JoinHandle<()>,
    agent_store: Arc<ConfigStore>,
    tenant_agents: JoinHandle<()>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("gateway_address", &self.gateway_address)
            .field("runtime_address", &self.runtime_address)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Starts the runtime and the gateway with `config` (as parsed for `serve`), returning once
/// both listen.
pub async fn start(args: &StandaloneArgs, config: Config) -> Result<Running, StandaloneError> {
    let data_dir = args.data_dir.clone();
    create_private_dir(&data_dir)?;
    let secrets = StandaloneSecrets::load_or_generate(&data_dir.join("secrets"))?;
    let mut config = standalone_config(config, &data_dir, &secrets);

    let gateway_listener = bind(config.listen).await?;
    let gateway_address =
        gateway_listener
            .local_addr()
            .map_err(|source| StandaloneError::Listen {
                address: config.listen,
                source,
            })?;
    if config.public_url == SERVE_DEFAULT_PUBLIC_URL {
        config.public_url = reachable_url(gateway_address);
    }
    let runtime_listener = bind(args.runtime_listen).await?;
    let runtime_address =
        runtime_listener
            .local_addr()
            .map_err(|source| StandaloneError::Listen {
                address: args.runtime_listen,
                source,
            })?;
    config
        .voice
        .runtime_url
        .get_or_insert_with(|| format!("ws://{runtime_address}"));

    let sandbox = SandboxCarrier::open(data_dir.join("sandbox.json"))?
        .with_signing_key(
            config
                .voice
                .sandbox_auth_token
                .as_deref()
                .unwrap_or(&secrets.sandbox_auth_token),
        )
        .with_simulated_contacts(SimulatedContacts {
            talk: SIMULATED_TALK,
        });
    let events_url = format!(
        "{}/internal/v1/events",
        reachable_url(gateway_address).trim_end_matches('/')
    );
    let internal_token = config.voice.internal_token.clone();

    let metrics_listen = config.metrics_listen;
    let mut state = AppState::from_config(config).await?;
    state.sandbox = Some(sandbox);
    let stop_metrics = CancellationToken::new();
    let (metrics_address, metrics_server) = switchboard_telemetry::serve_observability(
        metrics_listen,
        state.registry.clone(),
        crate::http::readiness(&state),
        stop_metrics.clone().cancelled_owned(),
    )
    .await
    .map_err(|source| StandaloneError::Listen {
        address: metrics_listen,
        source,
    })?;
    let workers = crate::workers::start(&state);
    let (stop_runtime, runtime_stopped) = watch::channel(false);
    let (stop_gateway, gateway_stopped) = watch::channel(false);

    let runtime_background = CancellationToken::new();
    let source = ConfigSource {
        agent_dir: data_dir.join("agent"),
        keys_dir: data_dir.join("keys"),
    };
    let snapshot = source.load().unwrap_or_else(|error| {
        tracing::error!(%error, "cannot load the agent configuration; using the builtin agent");
        Default::default()
    });
    let store = Arc::new(ConfigStore::new(snapshot));
    let reloader = store
        .clone()
        .spawn_reloader(source, AGENT_POLL, runtime_background.clone());
    // Each tenant's own agents, numbers and keys (the files above are the fallback).
    if let Err(error) = crate::embedded_agents::reload(&state, &store).await {
        tracing::warn!(%error, "tenants' agent configuration not loaded yet");
    }
    let tenant_agents = crate::embedded_agents::spawn_refresh(
        state.clone(),
        store.clone(),
        runtime_background.clone(),
    );
    let metrics = Metrics::new("standalone")?;
    let token = internal_token.map(Secret::new);
    let (events, event_delivery) = EventSink::spawn(
        Some(events_url.clone()),
        token.clone(),
        metrics.clone(),
        runtime_background.clone(),
    );
    let runtime_config = RuntimeConfig {
        tenant: "standalone".to_owned(),
        events_url: Some(events_url),
        internal_token: token,
        outbound_allow_private: state.config.outbound_allow_private,
        ..RuntimeConfig::default()
    };
    let runtime_state = RuntimeState::new(runtime_config, store.clone(), metrics, events);

    let runtime = tokio::spawn(serve_runtime(
        runtime_listener,
        runtime_state.clone(),
        runtime_stopped,
    ));
    let gateway = tokio::spawn(serve_gateway(
        gateway_listener,
        state.clone(),
        gateway_stopped,
    ));
    tracing::info!(gateway = %gateway_address, runtime = %runtime_address, data = %data_dir.display(), "standalone platform running");
    Ok(Running {
        state,
        gateway_address,
        runtime_address,
        metrics_address,
        data_dir,
        stop_metrics,
        metrics_server,
        stop_runtime,
        stop_gateway,
        gateway,
        runtime,
        runtime_state,
        workers,
        runtime_background,
        event_delivery,
        reloader,
        agent_store: store,
        tenant_agents,
    })
}

async fn bind(address: SocketAddr) -> Result<TcpListener, StandaloneError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StandaloneError::Listen { address, source })
}

async fn stop_requested(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn serve_gateway(
    listener: TcpListener,
    state: AppState,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let header_read_timeout =
        std::time::Duration::from_secs(state.config.header_read_timeout_secs.max(1));
    crate::http::server::serve(
        listener,
        crate::app(state),
        header_read_timeout,
        stop_requested(stopped),
    )
    .await
}

async fn serve_runtime(
    listener: TcpListener,
    state: RuntimeState,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let drain = state.clone();
    axum::serve(listener, switchboard_runtime::router(state))
        .with_graceful_shutdown(async move {
            stop_requested(stopped).await;
            let graceful = drain.drain(DRAIN_DEADLINE).await;
            tracing::info!(graceful, "embedded runtime drained");
        })
        .await
}

impl Running {
    /// The gateway's public URL.
    pub fn public_url(&self) -> &str {
        self.state.config.public_base()
    }

    /// The token the sandbox signs webhooks with.
    pub fn sandbox_auth_token(&self) -> Option<&str> {
        self.state
            .carrier_accounts
            .platform()
            .sandbox_auth_token
            .as_deref()
    }

    /// Re-reads every tenant's agents, numbers and keys for the embedded runtime now (they
    /// are also re-read every [`crate::embedded_agents::REFRESH`]).
    pub async fn reload_agents(&self) -> Result<(), crate::store::StoreError> {
        crate::embedded_agents::reload(&self.state, &self.agent_store).await
    }

    /// The "what next" text printed on start.
    pub fn next_steps(&self) -> String {
        next_steps(self.public_url(), &self.data_dir)
    }

    /// Serves until `signal` resolves, then shuts down gracefully.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops taking requests, lets live calls finish (up to a deadline), delivers the
    /// runtime's last events, then stops the background tasks.
    pub async fn shutdown(self) {
        tracing::info!("standalone platform shutting down");
        // The runtime drains first (refusing new calls) while the gateway still serves, so
        // the calls' last events (call ended, usage) reach it; then the gateway stops.
        let _ = self.stop_runtime.send(true);
        match self.runtime.await {
            Ok(Err(error)) => tracing::warn!(%error, "runtime server failed"),
            Err(error) => tracing::warn!(%error, "runtime server task failed"),
            Ok(Ok(())) => {}
        }
        drop(self.runtime_state);
        self.runtime_background.cancel();
        if tokio::time::timeout(Duration::from_secs(10), self.event_delivery)
            .await
            .is_err()
        {
            tracing::warn!("some runtime events could not be delivered before exit");
        }
        let _ = self.reloader.await;
        let _ = self.tenant_agents.await;
        let _ = self.stop_gateway.send(true);
        match self.gateway.await {
            Ok(Err(error)) => tracing::warn!(%error, "gateway server failed"),
            Err(error) => tracing::warn!(%error, "gateway server task failed"),
            Ok(Ok(())) => {}
        }
        // The gateway has drained: the API meter writes its last counts, the rest stop.
        self.workers.stop().await;
        self.stop_metrics.cancel();
        if let Ok(Err(error)) = self.metrics_server.await {
            tracing::warn!(%error, "metrics server failed");
        }
    }
}

/// Where to go next, with the exact commands.
pub fn next_steps(public_url: &str, data_dir: &Path) -> String {
    let data = data_dir.display();
    let token_file = data_dir.join("secrets").join(SANDBOX_TOKEN_FILE);
    let token_file = token_file.display();
    [
        String::new(),
        "Switchboard is running in standalone mode.".to_owned(),
        format!("  Console      {public_url}/  (open it in a browser: sign up, numbers, agent, calls)"),
        format!("  Gateway API  {public_url}/api/v1  (OpenAPI: {public_url}/api/v1/openapi.json)"),
        format!("  Data         {data} (SQLite database, generated secrets, sandbox numbers)"),
        "  Agent        builtin offline echo agent (greets, then repeats what you say);".to_owned(),
        format!("               put agent.json in {data}/agent/ and provider keys in {data}/keys/ for real providers"),
        String::new(),
        "Or from the command line, in another terminal, from the repository root:".to_owned(),
        format!("  export SWITCHBOARD_URL={public_url}"),
        format!("  export SWITCHBOARD_SANDBOX_AUTH_TOKEN=\"$(cat {token_file})\""),
        "  export SWITCHBOARD_PASSWORD='choose-a-long-password'".to_owned(),
        "  cargo run -q -p switchboard-cli -- signup --email you@example.com --name 'Your Name' --company Acme".to_owned(),
        "  cargo run -q -p switchboard-cli -- numbers buy --area-code 555".to_owned(),
        "  cargo run -q -p switchboard-cli -- call --to +15550100 --out reply.wav".to_owned(),
        String::new(),
        "`numbers buy` prints the number you got; add --audio any.wav to say your own words. Stop with Ctrl-C.".to_owned(),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        config: Config,
    }

    fn secrets() -> StandaloneSecrets {
        StandaloneSecrets {
            jwt_secret: "j".repeat(64),
            master_key: "00".repeat(32),
            sandbox_auth_token: "sandbox".into(),
            internal_token: "internal".into(),
        }
    }

    #[test]
    fn serve_defaults_become_standalone_ones_but_explicit_values_stay() {
        // The serve default passed explicitly, so a DATABASE_URL in the environment (CI sets
        // one) does not turn it into an "explicit" value.
        let parsed = Wrapper::try_parse_from(["gateway", "--database-url", DEFAULT_DATABASE_URL])
            .unwrap()
            .config;
        let config = standalone_config(parsed, Path::new(".switchboard"), &secrets());
        assert_eq!(
            config.database_url,
            "sqlite://.switchboard/switchboard.db?mode=rwc"
        );
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.metrics_listen.to_string(), "127.0.0.1:9090");
        assert!(!config.kubernetes && config.dev_mode);
        assert_eq!(config.voice.sandbox_auth_token.as_deref(), Some("sandbox"));
        assert_eq!(config.voice.internal_token.as_deref(), Some("internal"));
        assert_eq!(
            config.mail_outbox,
            Path::new(".switchboard").join("mail-outbox")
        );

        let parsed = Wrapper::try_parse_from([
            "gateway",
            "--listen",
            "127.0.0.1:9000",
            "--metrics-listen",
            "0.0.0.0:9100",
            "--database-url",
            "postgres://db/x",
            "--sandbox-auth-token",
            "mine",
        ])
        .unwrap()
        .config;
        let config = standalone_config(parsed, Path::new(".switchboard"), &secrets());
        assert_eq!(config.database_url, "postgres://db/x");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.metrics_listen.to_string(), "0.0.0.0:9100");
        assert_eq!(config.voice.sandbox_auth_token.as_deref(), Some("mine"));
    }

    #[test]
    fn secrets_are_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        let first = StandaloneSecrets::load_or_generate(&path).unwrap();
        let second = StandaloneSecrets::load_or_generate(&path).unwrap();
        assert_eq!(first.jwt_secret, second.jwt_secret);
        assert_eq!(first.sandbox_auth_token, second.sandbox_auth_token);
        assert_ne!(first.jwt_secret, first.internal_token);
        assert_eq!(first.jwt_secret.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o700);
            assert_eq!(mode(&path.join(SANDBOX_TOKEN_FILE)), 0o600);
        }
    }

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        assert_eq!(
            reachable_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            reachable_url("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9"
        );
    }
}
