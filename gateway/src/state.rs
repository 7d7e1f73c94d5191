//! Everything a request handler and a worker needs, built once at start: the store, the
//! configuration and one named service per concern.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_carriers::signatures::TelnyxPublicKey;
use switchboard_crds::PlanOverrides;
use switchboard_crds::plan::OverridesError;

use crate::calls::cdr::credentials::CdrCredentials;
use crate::calls::writer::CallWriter;
use crate::carrier_accounts::{CarrierAccounts, PlatformAccounts};
use crate::config::{Config, ConfigError};
use crate::crypto::Keyring;
use crate::dialer::sandbox_callee::{Reach, SpeakingCallee};
use crate::drain::Drain;
use crate::kube::KubeSync;
use crate::mailer::Mailer;
use crate::media::call_token::CallTokens;
use crate::media::gate::MediaGate;
use crate::media::proxy::RuntimeAddresses;
use crate::metrics::{BusinessMetrics, HttpMetrics};
use crate::numbers::NumberTable;
use crate::ratelimit::{FailureThrottle, LimitClass, Quotas, RateLimitError, RateLimiter};
use crate::runtime_credential::RuntimeCredentials;
use crate::store::{Backend, Store, StoreError};
use crate::tokens::TokenService;
use crate::usage::meter::ApiMeter;

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
    /// Failed CDR basic-auth attempts per tenant (see [`FailureThrottle`]).
    pub cdr_auth: Arc<FailureThrottle>,
    /// The tenants' CDR credentials, held for a few seconds (see [`CdrCredentials`]).
    pub cdr_credentials: Arc<CdrCredentials>,
    /// Group commit of new call records (see [`CallWriter`]).
    pub call_writer: CallWriter,
    /// Prometheus registry served on `/metrics`.
    pub registry: prometheus::Registry,
    /// HTTP request metrics.
    pub http_metrics: HttpMetrics,
    /// Business metrics (tenants, calls, minutes, media streams, dialer attempts).
    pub metrics: BusinessMetrics,
    /// Dialled number → tenant routing.
    pub numbers: NumberTable,
    /// Which carrier account owns a number, with which secret.
    pub carrier_accounts: CarrierAccounts,
    /// Signs and verifies the call tokens of media streams.
    pub call_tokens: CallTokens,
    /// Concurrent media streams per tenant.
    pub media_gate: Arc<MediaGate>,
    /// The platform's plan-limit overrides (`SWITCHBOARD_PLAN_LIMITS`).
    pub plan_limits: Arc<PlanOverrides>,
    /// The internal API's bearer token (`None`: the internal API is disabled).
    pub internal_token: Option<String>,
    /// Issues and verifies the tenants' runtime credentials (`/internal/v1/events`).
    pub runtime_credentials: RuntimeCredentials,
    /// Draining on SIGTERM: readiness, call admission and the media proxy consult it.
    pub drain: Drain,
    /// Addresses of tenants' runtime endpoints fixed in advance, bypassing DNS (see
    /// [`RuntimeAddresses`]).
    pub runtime_addresses: RuntimeAddresses,
    /// Outgoing HTTP (Stripe, customer webhooks, carrier REST calls).
    pub http_client: reqwest::Client,
    /// Client for tenant-chosen URLs (customer webhooks): no redirects, and only public
    /// addresses at connect time (`switchboard_crds::outbound`).
    pub webhook_client: reqwest::Client,
    /// Batched metering of API-key requests (flushed by a worker, see [`crate::workers`]).
    pub api_meter: Arc<ApiMeter>,
    /// The sandbox carrier numbers are bought from in standalone mode (`None` in Kubernetes,
    /// where the operator buys them).
    pub sandbox: Option<switchboard_carriers::SandboxCarrier>,
    /// Kubernetes mode with `SWITCHBOARD_SANDBOX_CARRIER`: the sandbox carrier campaign calls
    /// from sandbox numbers are placed through, its contacts played by
    /// [`SpeakingCallee`](crate::dialer::sandbox_callee::SpeakingCallee) (`None` otherwise;
    /// standalone mode dials through [`Self::sandbox`]).
    pub outbound_sandbox: Option<switchboard_carriers::SandboxCarrier>,
}

/// Writer tasks of the group commit on Postgres: batches are assembled and sent while others
/// wait for their commit (a batch is mostly round trips, not CPU: four lanes took one tenant's
/// inbound webhooks from ~5,800 to ~7,200/s on two cores, see `benches/load.rs`). (SQLite has
/// one writer at a time, so one task.)
const POSTGRES_WRITER_LANES: usize = 4;

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
    /// `TELNYX_PUBLIC_KEY` is not a base64 Ed25519 key.
    #[error("TELNYX_PUBLIC_KEY is invalid: {0}")]
    TelnyxKey(#[from] switchboard_carriers::signatures::SignatureError),
    /// `SWITCHBOARD_PLAN_LIMITS` is invalid.
    #[error(transparent)]
    PlanLimits(#[from] OverridesError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// `SWITCHBOARD_SANDBOX_CARRIER` without a token to sign the sandbox's webhooks.
    #[error("SWITCHBOARD_SANDBOX_CARRIER needs SWITCHBOARD_SANDBOX_AUTH_TOKEN")]
    SandboxToken,
}

impl AppState {
    /// Builds the state from configuration: connects (and, if configured, migrates) the
    /// database, resolves secrets, connects Redis and Kubernetes when asked, and sends e-mail
    /// through SMTP (`SMTP_URL`) or into the outbox folder.
    pub async fn from_config(config: Config) -> Result<Self, StartupError> {
        // SMTP when SMTP_URL is set, else the outbox folder (logged either way).
        let mailer = crate::mailer::from_settings(&config.mail())?;
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
            cdr_auth_failures_per_minute: config.rate_limit_cdr_auth_failures_per_minute,
        };
        let limiter = match &config.redis_url {
            Some(url) => RateLimiter::redis(url, "switchboard:ratelimit", quotas).await?,
            None => RateLimiter::in_memory(quotas),
        };
        let registry = prometheus::Registry::new();
        let http_metrics = HttpMetrics::register(&registry)?;
        let metrics = BusinessMetrics::register(&registry)?;
        let keyring = Arc::new(keyring);
        let voice = &config.voice;
        let platform = platform_accounts(&config, &secrets.jwt_secret)?;
        let outbound_sandbox = outbound_sandbox(&config, platform.sandbox_auth_token.as_deref())?;
        let carrier_accounts = CarrierAccounts::new(platform, store.clone(), keyring.clone());
        let call_tokens = CallTokens::new(
            &call_token_key(voice.call_token_secret.as_deref(), &secrets.jwt_secret),
            voice.call_token_ttl_seconds,
        );
        let plan_limits = Arc::new(PlanOverrides::parse(voice.plan_limits.as_deref())?);
        let cdr_credentials = Arc::new(CdrCredentials::new(Duration::from_secs(
            config.cdr_credential_cache_secs,
        )));
        let call_writer = CallWriter::spawn(
            store.clone(),
            plan_limits.clone(),
            match store.backend() {
                Backend::Postgres => POSTGRES_WRITER_LANES,
                Backend::Sqlite => 1,
            },
        );
        let media_gate = MediaGate::new(voice.max_concurrent_calls.max(1));
        let internal_token = voice.internal_token.clone().filter(|t| !t.is_empty());
        let runtime_credentials = RuntimeCredentials::new(
            voice.runtime_credential_secret.as_deref(),
            &secrets.jwt_secret,
        );
        let http_client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        let webhook_client =
            switchboard_crds::outbound::guarded_client(config.outbound_allow_private)
                .timeout(Duration::from_secs(15))
                .build()?;
        Ok(Self {
            store,
            config: Arc::new(config),
            tokens: Arc::new(tokens),
            keyring,
            mailer,
            kube,
            cdr_auth: Arc::new(FailureThrottle::new(
                limiter.clone(),
                LimitClass::CdrAuthFailure,
            )),
            cdr_credentials,
            call_writer,
            limiter,
            registry,
            http_metrics,
            metrics,
            numbers: NumberTable::default(),
            carrier_accounts,
            call_tokens,
            media_gate,
            plan_limits,
            internal_token,
            runtime_credentials,
            drain: Drain::default(),
            runtime_addresses: RuntimeAddresses::default(),
            http_client,
            webhook_client,
            api_meter: Arc::default(),
            sandbox: None,
            outbound_sandbox,
        })
    }
}

/// The key signing call tokens: `SWITCHBOARD_CALL_TOKEN_SECRET`, or one derived from the JWT
/// secret (domain-separated, so the two never coincide).
fn call_token_key(configured: Option<&str>, jwt_secret: &[u8]) -> Vec<u8> {
    match configured {
        Some(secret) => secret.as_bytes().to_vec(),
        None => {
            let mut hasher = Sha256::new();
            hasher.update(b"switchboard call token\0");
            hasher.update(jwt_secret);
            hasher.finalize().to_vec()
        }
    }
}

/// The Kubernetes-mode sandbox carrier for campaign calls, when `SWITCHBOARD_SANDBOX_CARRIER`
/// asks for it: in memory (the operator owns the sandbox numbers; the dialer restores each
/// caller id from the routing table, see `dialer::carrier`), signing with the sandbox token,
/// its contacts reaching this gateway's own listener.
fn outbound_sandbox(
    config: &Config,
    sandbox_token: Option<&str>,
) -> Result<Option<switchboard_carriers::SandboxCarrier>, StartupError> {
    if !(config.kubernetes && config.voice.sandbox_carrier) {
        return Ok(None);
    }
    let token = sandbox_token.ok_or(StartupError::SandboxToken)?;
    let reach = Reach::new(config.public_base(), config.listen);
    let callee = SpeakingCallee::new(reach)?;
    Ok(Some(
        switchboard_carriers::SandboxCarrier::in_memory()
            .with_signing_key(token)
            .with_callee(Arc::new(callee)),
    ))
}

/// The platform's carrier accounts from configuration; in dev mode a missing sandbox token is
/// generated (then only in-process sandbox calls can sign), and with the Kubernetes-mode
/// sandbox carrier it is derived from the JWT secret, so every replica verifies what any
/// replica's sandbox signed.
fn platform_accounts(config: &Config, jwt_secret: &[u8]) -> Result<PlatformAccounts, StartupError> {
    let voice = &config.voice;
    let telnyx_public_key = voice
        .telnyx_public_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
        .map(TelnyxPublicKey::from_base64)
        .transpose()?;
    let sandbox_auth_token = match &voice.sandbox_auth_token {
        Some(token) => Some(token.clone()),
        None if config.dev_mode => {
            tracing::warn!(
                "DEV MODE: generated a random SWITCHBOARD_SANDBOX_AUTH_TOKEN for sandbox webhooks"
            );
            Some(crate::store::random_secret())
        }
        None if config.kubernetes && voice.sandbox_carrier => {
            let mut hasher = Sha256::new();
            hasher.update(b"switchboard sandbox carrier\0");
            hasher.update(jwt_secret);
            Some(hex::encode(hasher.finalize()))
        }
        None => None,
    };
    Ok(PlatformAccounts {
        twilio_account_sid: voice.twilio_account_sid.clone(),
        twilio_auth_token: voice.twilio_auth_token.clone().filter(|t| !t.is_empty()),
        twilio_api_base: voice.twilio_api_base.clone(),
        telnyx_api_key: voice.telnyx_api_key.clone(),
        telnyx_public_key,
        telnyx_connection_id: voice.telnyx_connection_id.clone(),
        telnyx_api_base: voice.telnyx_api_base.clone(),
        sandbox_auth_token,
    })
}
