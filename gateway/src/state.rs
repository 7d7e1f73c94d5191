//! Everything a request handler needs, built once at start.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::crypto::Keyring;
use crate::http::metrics::HttpMetrics;
use crate::kube::KubeSync;
use crate::mailer::Mailer;
use crate::ratelimit::{Quotas, RateLimitError, RateLimiter};
use crate::store::{Store, StoreError};
use crate::tokens::TokenService;

/// Shared state of the gateway (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The configuration the gateway was started with.
    pub config: Arc<Config>,
    /// Access-token signing and verification.
    pub tokens: Arc<TokenService>,
    /// Master keys for provider credentials.
    pub keyring: Arc<Keyring>,
    /// Outgoing e-mail.
    pub mailer: Arc<dyn Mailer>,
    /// Kubernetes writer (disabled in standalone mode).
    pub kube: KubeSync,
    /// Rate limits.
    pub limiter: RateLimiter,
    /// Prometheus registry served on `/metrics`.
    pub registry: prometheus::Registry,
    /// HTTP request metrics.
    pub http_metrics: HttpMetrics,
    /// Part 2's services (number routing, call tokens, media gate, business metrics).
    pub voice: Arc<crate::telephony::Telephony>,
    /// Batched metering of API-key requests (flushed by `usage::api::spawn_flusher`).
    pub api_meter: Arc<crate::usage::api::ApiMeter>,
    /// The sandbox carrier numbers are bought from in standalone mode (`None` in Kubernetes,
    /// where the operator buys them).
    pub sandbox: Option<switchboard_carriers::SandboxCarrier>,
}

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database is unreachable or migrations failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Redis is configured but unreachable.
    #[error(transparent)]
    RateLimit(#[from] RateLimitError),
    /// Metrics could not be registered.
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// `SMTP_URL` / `MAIL_FROM` cannot be used.
    #[error(transparent)]
    Mail(#[from] crate::mailer::MailSetupError),
    /// Part 2's settings are invalid.
    #[error(transparent)]
    Voice(#[from] crate::telephony::VoiceSetupError),
}

impl AppState {
    /// Builds the state from configuration: connects (and, if configured, migrates) the
    /// database, resolves secrets, connects Redis and Kubernetes when asked, and sends e-mail
    /// through SMTP (`SMTP_URL`) or into the outbox folder.
    pub async fn from_config(config: Config) -> Result<Self, StartupError> {
        // SMTP when SMTP_URL is set, else the outbox folder (logged either way).
        let mailer = crate::mailer::from_config(&config)?;
        let store = Store::connect(&config.database_url, config.database_max_connections).await?;
        if config.migrate_on_start {
            store.migrate().await?;
        }
        let kube = KubeSync::connect(config.kubernetes).await;
        Self::assemble(config, store, mailer, kube).await
    }

    /// Builds the state around an existing store, mailer and Kubernetes writer (tests and
    /// embedding). Does not migrate.
    pub async fn assemble(
        config: Config,
        store: Store,
        mailer: Arc<dyn Mailer>,
        kube: KubeSync,
    ) -> Result<Self, StartupError> {
        let secrets = config.resolve_secrets()?;
        let tokens = TokenService::new(
            &secrets.jwt_secret,
            &secrets.jwt_previous,
            config.public_base(),
            config.access_token_ttl_seconds,
        );
        let keyring = Keyring::new(&secrets.master_key, &secrets.master_previous);
        let quotas = Quotas {
            ip_per_minute: config.rate_limit_ip_per_minute,
            api_key_per_minute: config.rate_limit_api_key_per_minute,
            login_per_minute: config.rate_limit_login_per_minute,
        };
        let limiter = match &config.redis_url {
            Some(url) => RateLimiter::redis(url, "switchboard:ratelimit", quotas).await?,
            None => RateLimiter::in_memory(quotas),
        };
        let registry = prometheus::Registry::new();
        let http_metrics = HttpMetrics::register(&registry)?;
        let voice = crate::telephony::Telephony::new(&config, &secrets.jwt_secret, &registry)?;
        Ok(Self {
            store,
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            keyring: Arc::new(keyring),
            mailer,
            kube,
            limiter,
            registry,
            http_metrics,
            voice: Arc::new(voice),
            api_meter: Arc::default(),
            sandbox: None,
        })
    }
}
