//! Prometheus metrics of the operator: reconciles, failures, duration, tenants by condition.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The operator's metrics, registered in one [`Registry`] served on `/metrics`.
pub struct Metrics {
    /// Registry to serve.
    pub registry: Registry,
    reconciles: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
    tenants_by_condition: IntGaugeVec,
    /// Latest condition statuses per tenant, from which the gauge is recomputed.
    tenant_conditions: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

impl Metrics {
    /// Creates and registers every metric, with a series at 0 for each of `controllers` (their
    /// `controller` labels) and each of their `error_kinds`. The labels come from the caller
    /// (`controllers::metrics`) so that metrics, a floor below the controllers, need not know them.
    pub fn new(controllers: &[&str], error_kinds: &[&str]) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "switchboard_operator_reconciles_total",
                "Reconciles run, by controller",
            ),
            &["controller"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "switchboard_operator_reconcile_errors_total",
                "Reconciles that failed, by controller and error kind",
            ),
            &["controller", "error"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "switchboard_operator_reconcile_duration_seconds",
                "Duration of one reconcile",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["controller"],
        )?;
        let tenants_by_condition = IntGaugeVec::new(
            Opts::new(
                "switchboard_operator_tenants",
                "Tenants by condition type and status",
            ),
            &["condition", "status"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(tenants_by_condition.clone()))?;
        // Every series of a known label set exists from the start at 0: an error rate of
        // `rate()` over a series that appears with its first error would miss that error.
        for &controller in controllers {
            reconciles.with_label_values(&[controller]);
            duration.with_label_values(&[controller]);
            for &kind in error_kinds {
                failures.with_label_values(&[controller, kind]);
            }
        }
        Ok(Self {
            registry,
            reconciles,
            failures,
            duration,
            tenants_by_condition,
            tenant_conditions: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a reconcile and times it until the returned guard is dropped.
    pub fn reconcile_started(&self, controller: &str) -> ReconcileTimer {
        self.reconciles.with_label_values(&[controller]).inc();
        ReconcileTimer {
            histogram: self.duration.with_label_values(&[controller]),
            started: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, controller: &str, error_kind: &str) {
        self.failures
            .with_label_values(&[controller, error_kind])
            .inc();
    }

    /// Records a tenant's current conditions (`type` → `status`).
    pub fn observe_tenant(&self, tenant: &str, conditions: BTreeMap<String, String>) {
        let Ok(mut all) = self.tenant_conditions.lock() else {
            return;
        };
        if all.get(tenant) == Some(&conditions) {
            return;
        }
        self.count(&conditions, 1);
        if let Some(previous) = all.insert(tenant.to_owned(), conditions) {
            self.count(&previous, -1);
        }
    }

    /// Forgets a deleted tenant.
    pub fn forget_tenant(&self, tenant: &str) {
        let Ok(mut all) = self.tenant_conditions.lock() else {
            return;
        };
        if let Some(previous) = all.remove(tenant) {
            self.count(&previous, -1);
        }
    }

    /// Moves the gauge by `delta` for each of a tenant's conditions (kept incrementally: a
    /// recount over every tenant on each reconcile grew with the square of the fleet).
    fn count(&self, conditions: &BTreeMap<String, String>, delta: i64) {
        for (type_, status) in conditions {
            self.tenants_by_condition
                .with_label_values(&[type_, status])
                .add(delta);
        }
    }
}

/// Observes the reconcile duration when dropped.
pub struct ReconcileTimer {
    histogram: prometheus::Histogram,
    started: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_gauge_counts_current_conditions_only() {
        let metrics = Metrics::new(&["tenant"], &["kube"]).unwrap();
        let ready = |s: &str| BTreeMap::from([("Ready".to_owned(), s.to_owned())]);
        metrics.observe_tenant("a", ready("True"));
        metrics.observe_tenant("b", ready("True"));
        metrics.observe_tenant("a", ready("False"));
        metrics.forget_tenant("b");
        let text = switchboard_telemetry::render_metrics(&metrics.registry).unwrap();
        assert!(
            text.contains(r#"switchboard_operator_tenants{condition="Ready",status="False"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"status="True"} 1"#), "{text}");
    }
}
