//! The gateway's Prometheus metrics (served on `/metrics` of the metrics port, never the public
//! port): HTTP requests by route, and the business figures (tenants, subscriptions, calls,
//! minutes, media streams, dialer attempts and holds, webhook signature failures, the customer
//! webhook outbox, database pool), the ones that come from the database refreshed by a worker.
//!
//! Names follow Prometheus conventions (checked by `switchboard_telemetry::conventions` in the
//! metric-names test): counters end in `_total`, gauges do not, units are in the name.

use std::time::Instant;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::store::{Store, StoreError, billing, system, webhooks};

/// Results of a campaign attempt (`switchboard_dialer_attempts_total{result}`).
pub const DIALER_RESULTS: [&str; 6] = [
    "placed",
    "failed",
    "unknown",
    "rate-limited",
    "plan-limit",
    "carrier-unavailable",
];
/// Why the dialer holds a campaign (`switchboard_dialer_holds_total{reason}`).
pub const HOLD_REASONS: [&str; 8] = [
    "Suspended",
    "TenantSuspended",
    "PlanForbidsCampaigns",
    "PlanLimitReached",
    "FromNumberNotReady",
    "OutsideWindow",
    "InvalidSpec",
    "InvalidSchedule",
];
/// Senders of the webhooks the gateway authenticates
/// (`switchboard_gateway_webhook_signature_failures_total{source}`).
pub const WEBHOOK_SOURCES: [&str; 4] = ["twilio", "telnyx", "stripe", "cdr"];

/// Request counters and latency histograms, labelled by route template (not raw path, so
/// tenant slugs and ids do not explode the label space).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "switchboard_gateway_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "switchboard_gateway_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    /// Counts one answered request.
    pub fn record(&self, method: &str, route: &str, status: &str, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, status])
            .inc();
        self.duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }
}

/// Business metrics on `/metrics`.
#[derive(Clone)]
pub struct BusinessMetrics {
    /// `switchboard_tenants` (a gauge: tenants in the database now).
    pub tenants: IntGauge,
    /// `switchboard_subscriptions{status}`.
    pub subscriptions: IntGaugeVec,
    /// `switchboard_tenant_calls_total{tenant}`.
    pub tenant_calls: IntCounterVec,
    /// `switchboard_tenant_call_minutes_total{tenant}` (billed minutes, rounded up per call).
    pub tenant_call_minutes: IntCounterVec,
    /// `switchboard_db_pool_connections{state}`.
    pub db_pool: IntGaugeVec,
    /// `switchboard_gateway_uptime_seconds`.
    pub uptime: IntGauge,
    /// `switchboard_media_streams_active`.
    pub media_streams: IntGauge,
    /// `switchboard_dialer_attempts_total{result}`: campaign attempts by how placing them went.
    pub dialer_attempts: IntCounterVec,
    /// `switchboard_dialer_holds_total{reason}`: times a campaign stopped dialling, by reason.
    pub dialer_holds: IntCounterVec,
    /// `switchboard_gateway_webhook_signature_failures_total{source}`: webhooks refused because
    /// the signature (carriers, Stripe) or the credentials (PBX CDRs) did not verify.
    pub webhook_signature_failures: IntCounterVec,
    /// `switchboard_gateway_outbox_pending`: customer webhook deliveries not yet delivered.
    pub outbox_pending: IntGauge,
    /// `switchboard_gateway_outbox_oldest_pending_age_seconds`: age of the oldest of them.
    pub outbox_oldest_age: IntGauge,
    started: Instant,
}

impl BusinessMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let tenants = IntGauge::new("switchboard_tenants", "Tenants in the database")?;
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
                "switchboard_tenant_call_minutes_total",
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
        let dialer_holds = IntCounterVec::new(
            Opts::new(
                "switchboard_dialer_holds_total",
                "Times a campaign stopped dialling, by reason (paused, plan limit, window, …)",
            ),
            &["reason"],
        )?;
        let webhook_signature_failures = IntCounterVec::new(
            Opts::new(
                "switchboard_gateway_webhook_signature_failures_total",
                "Webhooks refused for a signature (or PBX credentials) that did not verify",
            ),
            &["source"],
        )?;
        let outbox_pending = IntGauge::new(
            "switchboard_gateway_outbox_pending",
            "Customer webhook deliveries pending (due now or waiting for a retry)",
        )?;
        let outbox_oldest_age = IntGauge::new(
            "switchboard_gateway_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending customer webhook delivery (0 when none)",
        )?;
        // Known label sets exist from the start at 0, so `rate()` sees their first event.
        for result in DIALER_RESULTS {
            dialer_attempts.with_label_values(&[result]);
        }
        for reason in HOLD_REASONS {
            dialer_holds.with_label_values(&[reason]);
        }
        for source in WEBHOOK_SOURCES {
            webhook_signature_failures.with_label_values(&[source]);
        }
        registry.register(Box::new(dialer_attempts.clone()))?;
        registry.register(Box::new(dialer_holds.clone()))?;
        registry.register(Box::new(webhook_signature_failures.clone()))?;
        registry.register(Box::new(outbox_pending.clone()))?;
        registry.register(Box::new(outbox_oldest_age.clone()))?;
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
            dialer_holds,
            webhook_signature_failures,
            outbox_pending,
            outbox_oldest_age,
            started: Instant::now(),
        })
    }

    /// Refreshes the gauges that come from the database (tenants, subscriptions, outbox, pool).
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let metrics = self;
        metrics
            .uptime
            .set(i64::try_from(metrics.started.elapsed().as_secs()).unwrap_or(i64::MAX));
        let pool = store.pool();
        let idle = i64::try_from(pool.num_idle()).unwrap_or(0);
        metrics.db_pool.with_label_values(&["idle"]).set(idle);
        metrics
            .db_pool
            .with_label_values(&["active"])
            .set(i64::from(pool.size()) - idle);
        let mut tx = system::read(store).await?;
        metrics.tenants.set(billing::tenant_count(&mut tx).await?);
        let counts = billing::subscription_counts(&mut tx).await?;
        let backlog = webhooks::outbox_backlog(&mut tx).await?;
        tx.commit().await?;
        metrics.outbox_pending.set(backlog.pending);
        let oldest_ms = backlog.oldest_created_at.map_or(0, |created| {
            crate::store::now_ms().saturating_sub(created).max(0)
        });
        metrics.outbox_oldest_age.set(oldest_ms / 1000);
        metrics.subscriptions.reset();
        for (status, count) in counts {
            metrics
                .subscriptions
                .with_label_values(&[status.as_str()])
                .set(count);
        }
        Ok(())
    }
}
