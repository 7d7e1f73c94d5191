//! The gateway's background workers, started in one place for both modes (`serve` and
//! `standalone`):
//!
//! | worker | what it does | when |
//! | --- | --- | --- |
//! | number table | reloads dialled-number routing from the database | always |
//! | outbox | delivers customer webhooks | always |
//! | business metrics | refreshes the gauges that come from the database | always |
//! | API meter | writes counted API-key requests every second, and once more on stop | always |
//! | idempotency keys | deletes `Idempotency-Key` answers older than 24 hours | always |
//! | media claims | deletes one-stream-per-token claims whose call token expired | every 10 min |
//! | provider keys | retries `provider-keys` Secrets that could not be written yet | Kubernetes |
//! | Tenant sync | watches Tenant CRs: adopts kubectl/GitOps tenants, mirrors specs, owners | Kubernetes |
//! | dialer | places campaign calls | `SWITCHBOARD_DIALER=true` |
//! | Stripe meter | reports billed minutes to Stripe | `STRIPE_METER_EVENT_NAME` set |
//! | data lifecycle | purges deleted tenants, enforces retention, re-encrypts secrets | `SWITCHBOARD_LIFECYCLE_WORKER` (default on) |

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::dialer::Dialer;
use crate::dialer::clock::SystemClock;
use crate::outbox::OutboxWorker;
use crate::provider_keys::{RetryTiming, spawn_projection_retries};
use crate::state::AppState;
use crate::usage::meter::{Flusher, spawn_flusher};

/// How often the business gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(15);
/// How often billed minutes are reported to Stripe.
const STRIPE_METER_EVERY: Duration = Duration::from_secs(60);

/// The running workers.
pub struct Workers {
    tasks: Vec<JoinHandle<()>>,
    flusher: Flusher,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

/// Starts every worker the configuration asks for.
pub fn start(state: &AppState) -> Workers {
    let voice = &state.config.voice;
    let mut tasks = vec![
        state.numbers.spawn_refresh(
            state.store.clone(),
            Duration::from_secs(voice.number_refresh_seconds),
        ),
        OutboxWorker::new(
            state.store.clone(),
            state.keyring.clone(),
            state.webhook_client.clone(),
            state.config.outbound_allow_private,
        )
        .spawn(Duration::from_millis(voice.outbox_poll_ms)),
        spawn_gauges(state),
        crate::idempotency::spawn_pruner(state.store.clone()),
        spawn_claim_pruner(state),
    ];
    // Kubernetes mode only (`None` otherwise).
    tasks.extend(spawn_projection_retries(state, RetryTiming::default()));
    tasks.extend(crate::tenant_sync::spawn(state));
    if voice.dialer {
        tasks.push(
            Dialer::new(state.clone(), Arc::new(SystemClock))
                .spawn(Duration::from_millis(voice.dialer_interval_ms.max(50))),
        );
    }
    tasks.extend(crate::lifecycle::spawn(state));
    tasks.extend(crate::billing::meter::spawn(
        state.clone(),
        STRIPE_METER_EVERY,
    ));
    Workers {
        tasks,
        flusher: spawn_api_meter_flusher(state),
    }
}

/// The API meter's flusher alone (what [`start`] runs for it).
pub fn spawn_api_meter_flusher(state: &AppState) -> Flusher {
    spawn_flusher(
        state.api_meter.clone(),
        state.store.clone(),
        state.plan_limits.clone(),
    )
}

fn spawn_claim_pruner(state: &AppState) -> JoinHandle<()> {
    let store = state.store.clone();
    let ttl = state.config.voice.call_token_ttl_seconds;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(crate::media::claims::PRUNE_EVERY);
        loop {
            ticker.tick().await;
            match crate::media::claims::prune_expired(&store, ttl, crate::store::now_ms()).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "pruned expired media stream claims"),
                Err(error) => tracing::warn!(%error, "cannot prune media stream claims"),
            }
        }
    })
}

fn spawn_gauges(state: &AppState) -> JoinHandle<()> {
    let metrics = state.metrics.clone();
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(GAUGES_EVERY);
        loop {
            ticker.tick().await;
            if let Err(error) = metrics.refresh(&store).await {
                tracing::warn!(%error, "cannot refresh business metrics");
            }
        }
    })
}

impl Workers {
    /// Stops every worker: the API meter writes the counts of its last interval (call this
    /// after the server has drained its requests), the others are aborted (each is safe to
    /// abort at any point). Returns how many API requests that last write stored.
    pub async fn stop(self) -> i64 {
        let written = self.flusher.finish().await;
        for task in self.tasks {
            task.abort();
        }
        written
    }

    /// Aborts every worker at once, without the meter's last write (a crash, in tests).
    pub fn abort(self) {
        for task in self.tasks {
            task.abort();
        }
        self.flusher.abort();
    }
}
