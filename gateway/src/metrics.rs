//! The gateway's Prometheus metrics (served on `/metrics`): HTTP requests by route, and the
//! business figures (tenants, subscriptions, calls, minutes, media streams, dialer attempts,
//! database pool), the ones that come from the database refreshed by a worker.

use std::time::Instant;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::store::{Store, StoreError, billing, system};

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

impl BusinessMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
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

    /// Refreshes the gauges that come from the database (tenants, subscriptions, pool).
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
}
