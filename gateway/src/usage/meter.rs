//! The batched metering of API-key requests ([`ApiMeter`]): counted in memory against the
//! monthly limit, written in one upsert per tenant every second and on shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_crds::{PlanLimits, PlanOverrides};

use super::limits::{period_of, seconds_until_next_period};
use super::{limits_for, raise_thresholds};
use crate::store::usage::{self, Metric};
use crate::store::{Scope, Store, StoreError, api_keys, now_ms, tenants};

/// Why an API-key request was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    /// The tenant's monthly API request limit is reached.
    #[error("the monthly API request limit of this plan is reached")]
    OverLimit {
        /// Seconds until the next month starts.
        retry_after_secs: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MeterError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// How often counted API requests and key uses are written ([`spawn_flusher`]).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// One tenant's API-request counter for one month, as this gateway process sees it.
#[derive(Debug, Clone, Copy)]
struct Counter {
    /// The stored value when last read or written (includes other replicas' counts then).
    stored: i64,
    /// Admitted here and not yet handed to a flush.
    pending: i64,
    /// Being written by the running flush.
    in_flight: i64,
    /// The monthly limit when last read (`None` = unlimited).
    limit: Option<i64>,
}

impl Counter {
    fn total(&self) -> i64 {
        self.stored + self.pending + self.in_flight
    }
}

#[derive(Default)]
struct Meter {
    /// Keyed by (tenant id, period).
    counters: HashMap<(String, String), Counter>,
    /// Last use per (tenant id, API key id), not yet written.
    touches: HashMap<(String, String), i64>,
}

/// Counts API-key requests against the monthly plan limit in memory and writes them in one
/// upsert per tenant every [`FLUSH_INTERVAL`] (and once more on shutdown), together with the
/// keys' `last_used_at`. Before, every API-key request took the database's write lock
/// (SQLite has one writer), which capped API-key throughput.
///
/// The limit check is `stored + unflushed < limit`, where `stored` is re-read from the
/// database's `RETURNING` on every flush. With one gateway process that is exact. With several
/// replicas each sees the others' counts at most one flush late, so together they can admit a
/// little more than the limit (at most what the others admitted in that last interval); the
/// stored counter itself never loses or double-counts a request.
#[derive(Default)]
pub struct ApiMeter {
    meter: Mutex<Meter>,
    /// One flush at a time (the ticker and the shutdown flush may meet).
    flushing: tokio::sync::Mutex<()>,
}

/// The monthly API request limit of a tenant, in the caller's transaction.
async fn api_limit(
    conn: &mut sqlx::AnyConnection,
    platform: &PlanOverrides,
    tenant_id: &str,
) -> Result<(Option<i64>, PlanLimits), StoreError> {
    let plan = tenants::by_id(&mut *conn, tenant_id)
        .await?
        .map(|t| t.plan)
        .unwrap_or_default();
    let limits = limits_for(conn, platform, tenant_id, &plan).await?;
    let limit = limits
        .monthly_api_requests
        .map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    Ok((limit, limits))
}

impl ApiMeter {
    /// Admits one API-key request of `tenant_id` or answers 429 (with `Retry-After`: seconds to
    /// the next month) once the monthly limit is reached. Reads the database only when this
    /// process has no fresh counter for the tenant and month; otherwise touches only memory.
    pub async fn admit(
        &self,
        store: &Store,
        platform: &PlanOverrides,
        tenant_id: &str,
    ) -> Result<(), MeterError> {
        let now = now_ms();
        let key = (tenant_id.to_owned(), period_of(now));
        if let Some(admitted) = self.try_admit(&key) {
            return admitted.then_some(()).ok_or_else(|| over_limit(now));
        }
        let mut tx = store.read(&Scope::tenant(tenant_id)).await?;
        let stored = usage::get(&mut tx, tenant_id, &key.1).await?.api_requests;
        let (limit, _) = api_limit(&mut tx, platform, tenant_id).await?;
        tx.commit().await?;
        let admitted = {
            let mut meter = self.lock();
            // Another request may have loaded it meanwhile; its counts stay.
            let counter = meter.counters.entry(key).or_insert(Counter {
                stored,
                pending: 0,
                in_flight: 0,
                limit,
            });
            admit_one(counter)
        };
        admitted.then_some(()).ok_or_else(|| over_limit(now))
    }

    /// `Some(admitted)` when a counter is loaded, `None` when the database must be read.
    fn try_admit(&self, key: &(String, String)) -> Option<bool> {
        let mut meter = self.lock();
        meter.counters.get_mut(key).map(admit_one)
    }

    /// Remembers that an API key was used at `at` (written with the next flush).
    pub fn touch(&self, tenant_id: &str, key_id: &str, at: i64) {
        let mut meter = self.lock();
        let last = meter
            .touches
            .entry((tenant_id.to_owned(), key_id.to_owned()))
            .or_insert(at);
        *last = (*last).max(at);
    }

    /// Requests of `tenant_id` in `period` admitted here and not yet stored.
    pub fn unflushed(&self, tenant_id: &str, period: &str) -> i64 {
        let meter = self.lock();
        meter
            .counters
            .get(&(tenant_id.to_owned(), period.to_owned()))
            .map_or(0, |c| c.pending + c.in_flight)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Meter> {
        // A panic while holding this lock leaves plain numbers behind: keep using them.
        self.meter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes every unflushed count (one upsert per tenant and month, in one transaction per
    /// tenant that also raises the 80 %/100 % notices and records key uses) and refreshes the
    /// stored values and limits. A tenant whose write fails keeps its counts for the next
    /// flush. Returns the number of requests written.
    pub async fn flush(&self, store: &Store, platform: &PlanOverrides) -> i64 {
        let _one_at_a_time = self.flushing.lock().await;
        let (batches, touches) = {
            let mut meter = self.lock();
            // Idle counters are dropped so that the next request re-reads the stored value and
            // the limit (a plan change, another replica's counts) instead of trusting old ones.
            meter
                .counters
                .retain(|_, c| c.pending > 0 || c.in_flight > 0);
            let mut batches: HashMap<String, Vec<(String, i64)>> = HashMap::new();
            for ((tenant, period), counter) in meter.counters.iter_mut() {
                if counter.pending > 0 {
                    counter.in_flight += counter.pending;
                    counter.pending = 0;
                    batches
                        .entry(tenant.clone())
                        .or_default()
                        .push((period.clone(), counter.in_flight));
                }
            }
            (batches, std::mem::take(&mut meter.touches))
        };
        let tenants: HashSet<&String> = batches
            .keys()
            .chain(touches.keys().map(|(tenant, _)| tenant))
            .collect();
        let mut written = 0;
        for tenant_id in tenants {
            let counts = batches.get(tenant_id).map(Vec::as_slice).unwrap_or(&[]);
            let uses: Vec<(&str, i64)> = touches
                .iter()
                .filter(|((tenant, _), _)| tenant == tenant_id)
                .map(|((_, key), at)| (key.as_str(), *at))
                .collect();
            match write_tenant(store, platform, tenant_id, counts, &uses).await {
                Ok((stored, limit)) => {
                    let mut meter = self.lock();
                    for (period, value) in stored {
                        if let Some(counter) = meter.counters.get_mut(&(tenant_id.clone(), period))
                        {
                            counter.stored = value;
                            counter.in_flight = 0;
                            counter.limit = limit;
                        }
                    }
                    written += counts.iter().map(|(_, n)| n).sum::<i64>();
                }
                Err(error) => {
                    tracing::warn!(%error, tenant_id, "cannot write API request counts; keeping them for the next flush");
                    let mut meter = self.lock();
                    for (period, _) in counts {
                        if let Some(counter) =
                            meter.counters.get_mut(&(tenant_id.clone(), period.clone()))
                        {
                            counter.pending += counter.in_flight;
                            counter.in_flight = 0;
                        }
                    }
                    for (key, at) in uses {
                        let last = meter
                            .touches
                            .entry((tenant_id.clone(), key.to_owned()))
                            .or_insert(at);
                        *last = (*last).max(at);
                    }
                }
            }
        }
        written
    }
}

/// Counts one request on a loaded counter unless its limit is reached.
fn admit_one(counter: &mut Counter) -> bool {
    if counter.limit.is_some_and(|limit| counter.total() >= limit) {
        return false;
    }
    counter.pending += 1;
    true
}

fn over_limit(now: i64) -> MeterError {
    MeterError::OverLimit {
        retry_after_secs: seconds_until_next_period(now),
    }
}

/// One tenant's flush: adds the counts, raises threshold notices, records key uses. Returns
/// the stored value per period and the current limit.
async fn write_tenant(
    store: &Store,
    platform: &PlanOverrides,
    tenant_id: &str,
    counts: &[(String, i64)],
    uses: &[(&str, i64)],
) -> Result<(Vec<(String, i64)>, Option<i64>), StoreError> {
    let now = now_ms();
    let mut tx = store.write(&Scope::tenant(tenant_id)).await?;
    let (limit, limits) = api_limit(&mut tx, platform, tenant_id).await?;
    let mut stored = Vec::with_capacity(counts.len());
    for (period, amount) in counts {
        let value = usage::add_upsert(
            &mut tx,
            tenant_id,
            period,
            Metric::ApiRequests,
            *amount,
            now,
        )
        .await?;
        raise_thresholds(
            &mut tx,
            tenant_id,
            period,
            Metric::ApiRequests,
            value,
            limits.monthly_api_requests,
        )
        .await?;
        stored.push((period.clone(), value));
    }
    for (key_id, at) in uses {
        api_keys::touch(&mut tx, tenant_id, key_id, *at).await?;
    }
    tx.commit().await?;
    Ok((stored, limit))
}

/// The running flusher of [`spawn_flusher`].
pub struct Flusher {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<i64>,
}

impl Flusher {
    /// Stops at once, without a last flush (counts not yet written are lost: a crash).
    pub fn abort(self) {
        self.task.abort();
    }

    /// Stops the ticker (never in the middle of a write) and flushes once more; returns how
    /// many requests that last flush wrote. Call it after the server has drained its requests,
    /// so that a graceful shutdown loses no count.
    pub async fn finish(self) -> i64 {
        self.stop.cancel();
        self.task.await.unwrap_or_else(|error| {
            tracing::error!(%error, "the API request meter task failed");
            0
        })
    }
}

/// Flushes `meter` every [`FLUSH_INTERVAL`] until [`Flusher::finish`].
pub fn spawn_flusher(meter: Arc<ApiMeter>, store: Store, platform: Arc<PlanOverrides>) -> Flusher {
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Only the wait is raced against the stop, so a flush is never cut in half.
            tokio::select! {
                _ = ticker.tick() => {
                    meter.flush(&store, &platform).await;
                }
                () = stopped.cancelled() => break,
            }
        }
        meter.flush(&store, &platform).await
    });
    Flusher { stop, task }
}
