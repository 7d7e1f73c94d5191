//! Part 2's shared services, built once at start and held by [`crate::AppState`]: the
//! dialled-number table, call tokens, the per-tenant media gate, carrier webhook secrets,
//! plan-limit overrides, an HTTP client and the business metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use sha2::{Digest, Sha256};
use switchboard_carriers::signatures::TelnyxPublicKey;

use crate::config::Config;
use crate::media::call_token::CallTokens;
use crate::numbers::NumberTable;
use crate::outbox::OutboxWorker;
use crate::state::AppState;
use crate::store::{billing, system};
use crate::usage::limits::{OverridesError, PlanOverrides};

/// Why part 2's services cannot start.
#[derive(Debug, thiserror::Error)]
pub enum VoiceSetupError {
    /// `TELNYX_PUBLIC_KEY` is not a base64 Ed25519 key.
    #[error("TELNYX_PUBLIC_KEY is invalid: {0}")]
    TelnyxKey(#[from] switchboard_carriers::signatures::SignatureError),
    /// `SWITCHBOARD_PLAN_LIMITS` is invalid.
    #[error(transparent)]
    PlanLimits(#[from] OverridesError),
    /// Metrics could not be registered.
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Counts concurrent media streams per tenant.
#[derive(Debug, Default)]
pub struct MediaGate {
    max_per_tenant: usize,
    active: Mutex<HashMap<String, usize>>,
}

/// A held media slot; released on drop.
#[derive(Debug)]
pub struct MediaPermit {
    gate: Arc<MediaGate>,
    tenant_id: String,
}

impl MediaGate {
    /// A gate allowing `max_per_tenant` concurrent streams per tenant.
    pub fn new(max_per_tenant: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_tenant,
            active: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for the tenant, or `None` at its limit.
    pub fn try_enter(self: &Arc<Self>, tenant_id: &str) -> Option<MediaPermit> {
        let mut active = self.active.lock().ok()?;
        let count = active.entry(tenant_id.to_owned()).or_insert(0);
        if *count >= self.max_per_tenant {
            return None;
        }
        *count += 1;
        Some(MediaPermit {
            gate: Arc::clone(self),
            tenant_id: tenant_id.to_owned(),
        })
    }

    /// Streams open for a tenant now.
    pub fn active(&self, tenant_id: &str) -> usize {
        self.active
            .lock()
            .map(|a| a.get(tenant_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for MediaPermit {
    fn drop(&mut self) {
        if let Ok(mut active) = self.gate.active.lock()
            && let Some(count) = active.get_mut(&self.tenant_id)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                active.remove(&self.tenant_id);
            }
        }
    }
}

/// Business metrics on `/metrics`.
#[derive(Clone)]
pub struct VoiceMetrics {
    /// `switchboard_tenants_total`.
    pub tenants: IntGauge,
    /// `switchboard_subscriptions{status}`.
    pub subscriptions: IntGaugeVec,
    /// `switchboard_tenant_calls_total{tenant}`.
    pub tenant_calls: IntCounterVec,
    /// `switchboard_tenant_call_minutes{tenant}`.
    pub tenant_call_minutes: IntCounterVec,
    /// `switchboard_db_pool_connections{state}`.
    pub db_pool: IntGaugeVec,
    /// `switchboard_gateway_uptime_seconds`.
    pub uptime: IntGauge,
    /// `switchboard_media_streams_active`.
    pub media_streams: IntGauge,
    /// `switchboard_dialer_attempts_total{result}`: campaign attempts by how placing them went.
    pub dialer_attempts: IntCounterVec,
    started: Instant,
}

impl VoiceMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let tenants = IntGauge::new("switchboard_tenants_total", "Tenants in the database")?;
        let subscriptions = IntGaugeVec::new(
            Opts::new(
                "switchboard_subscriptions",
                "Tenants by Stripe subscription status",
            ),
            &["status"],
        )?;
        let tenant_calls = IntCounterVec::new(
            Opts::new(
                "switchboard_tenant_calls_total",
                "Calls admitted per tenant",
            ),
            &["tenant"],
        )?;
        let tenant_call_minutes = IntCounterVec::new(
            Opts::new(
                "switchboard_tenant_call_minutes",
                "Billed call minutes per tenant",
            ),
            &["tenant"],
        )?;
        let db_pool = IntGaugeVec::new(
            Opts::new(
                "switchboard_db_pool_connections",
                "Database pool connections by state",
            ),
            &["state"],
        )?;
        let uptime = IntGauge::new(
            "switchboard_gateway_uptime_seconds",
            "Seconds since the gateway started",
        )?;
        let media_streams = IntGauge::new(
            "switchboard_media_streams_active",
            "Media streams being proxied",
        )?;
        let dialer_attempts = IntCounterVec::new(
            Opts::new(
                "switchboard_dialer_attempts_total",
                "Campaign call attempts by result (placed, failed, unknown, rate-limited, plan-limit, carrier-unavailable)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(dialer_attempts.clone()))?;
        registry.register(Box::new(tenants.clone()))?;
        registry.register(Box::new(subscriptions.clone()))?;
        registry.register(Box::new(tenant_calls.clone()))?;
        registry.register(Box::new(tenant_call_minutes.clone()))?;
        registry.register(Box::new(db_pool.clone()))?;
        registry.register(Box::new(uptime.clone()))?;
        registry.register(Box::new(media_streams.clone()))?;
        Ok(Self {
            tenants,
            subscriptions,
            tenant_calls,
            tenant_call_minutes,
            db_pool,
            uptime,
            media_streams,
            dialer_attempts,
            started: Instant::now(),
        })
    }
}

/// Part 2's services.
pub struct Telephony {
    /// Dialled number → tenant.
    pub numbers: NumberTable,
    /// Call token signer.
    pub call_tokens: CallTokens,
    /// Per-tenant media stream limit.
    pub media_gate: Arc<MediaGate>,
    /// Metrics.
    pub metrics: VoiceMetrics,
    /// Outgoing HTTP (Stripe, customer webhooks).
    pub http: reqwest::Client,
    /// The platform's Twilio auth token.
    pub twilio_auth_token: Option<String>,
    /// The platform's Telnyx public key.
    pub telnyx_key: Option<TelnyxPublicKey>,
    /// The sandbox carrier's signing token.
    pub sandbox_auth_token: Option<String>,
    /// Internal API token.
    pub internal_token: Option<String>,
    /// Plan limit overrides.
    pub plan_overrides: PlanOverrides,
}

impl Telephony {
    /// Builds the services from configuration; `jwt_secret` seeds the call-token key when no
    /// dedicated secret is configured (domain-separated, so the two never coincide).
    pub fn new(
        config: &Config,
        jwt_secret: &[u8],
        registry: &Registry,
    ) -> Result<Self, VoiceSetupError> {
        let voice = &config.voice;
        let call_key = match &voice.call_token_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                let mut hasher = Sha256::new();
                hasher.update(b"switchboard call token\0");
                hasher.update(jwt_secret);
                hasher.finalize().to_vec()
            }
        };
        let telnyx_key = voice
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
            None => None,
        };
        Ok(Self {
            numbers: NumberTable::default(),
            call_tokens: CallTokens::new(&call_key, voice.call_token_ttl_seconds),
            media_gate: MediaGate::new(voice.max_concurrent_calls.max(1)),
            metrics: VoiceMetrics::register(registry)?,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()?,
            twilio_auth_token: voice.twilio_auth_token.clone().filter(|t| !t.is_empty()),
            telnyx_key,
            sandbox_auth_token,
            internal_token: voice.internal_token.clone().filter(|t| !t.is_empty()),
            plan_overrides: PlanOverrides::parse(voice.plan_limits.as_deref())?,
        })
    }
}

/// Refreshes the gauges that come from the database (tenants, subscriptions, pool).
pub async fn refresh_gauges(state: &AppState) -> Result<(), crate::store::StoreError> {
    let metrics = &state.voice.metrics;
    metrics
        .uptime
        .set(i64::try_from(metrics.started.elapsed().as_secs()).unwrap_or(i64::MAX));
    let pool = state.store.pool();
    let idle = i64::try_from(pool.num_idle()).unwrap_or(0);
    metrics.db_pool.with_label_values(&["idle"]).set(idle);
    metrics
        .db_pool
        .with_label_values(&["active"])
        .set(i64::from(pool.size()) - idle);
    let mut tx = system::read(&state.store).await?;
    metrics.tenants.set(billing::tenant_count(&mut tx).await?);
    let counts = billing::subscription_counts(&mut tx).await?;
    tx.commit().await?;
    metrics.subscriptions.reset();
    for (status, count) in counts {
        metrics
            .subscriptions
            .with_label_values(&[status.as_str()])
            .set(count);
    }
    Ok(())
}

/// Starts part 2's background tasks: the number-table refresh, the customer-webhook outbox
/// worker and the metrics refresh. They run until aborted (tests abort them to simulate a
/// restart); dropping a handle detaches its task.
pub fn spawn_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let voice = &state.config.voice;
    let numbers = state.voice.numbers.spawn_refresh(
        state.store.clone(),
        Duration::from_secs(voice.number_refresh_seconds),
    );
    let outbox = OutboxWorker::new(
        state.store.clone(),
        state.keyring.clone(),
        state.voice.http.clone(),
    )
    .spawn(Duration::from_millis(voice.outbox_poll_ms));
    let gauges_state = state.clone();
    let gauges = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(15));
        loop {
            ticker.tick().await;
            if let Err(error) = refresh_gauges(&gauges_state).await {
                tracing::warn!(%error, "cannot refresh business metrics");
            }
        }
    });
    let mut tasks = vec![numbers, outbox, gauges];
    if voice.dialer {
        tasks.push(
            crate::dialer::Dialer::new(
                state.clone(),
                std::sync::Arc::new(crate::dialer::clock::SystemClock),
            )
            .spawn(Duration::from_millis(voice.dialer_interval_ms.max(50))),
        );
    }
    tasks.extend(crate::meter::spawn(state.clone(), Duration::from_secs(60)));
    tasks
}
