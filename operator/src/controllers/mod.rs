//! Controllers: compare desired state with the cluster and converge them.
//!
//! [`tenant`], [`phone_number`] and [`campaign`] each reconcile one kind; what they do alike
//! (finalizer, status compare → apply → events, backoff) is [`lifecycle`]; which changes wake
//! them and how many run at once is [`watch`]; what the Tenant controller knows of the cluster
//! without asking is [`cache`]; [`apply`] is the one way objects and statuses are written.

pub mod apply;
pub mod cache;
pub mod campaign;
pub mod lifecycle;
pub mod phone_number;
pub mod tenant;
pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use switchboard_crds::{Campaign, PhoneNumber, Tenant};

use cache::Caches;
use lifecycle::Reconciled;
use watch::ControllerSettings;

use crate::config::OperatorConfig;
use crate::gateway_client::{GatewayClient, GatewayError};
use crate::metrics::Metrics;

/// The `controller` label of each controller.
pub const CONTROLLERS: [&str; 3] = [
    <Tenant as Reconciled>::CONTROLLER,
    <PhoneNumber as Reconciled>::CONTROLLER,
    <Campaign as Reconciled>::CONTROLLER,
];

/// The operator's metrics, with a series at 0 for every controller and error kind.
pub fn metrics() -> Result<Metrics, prometheus::Error> {
    Metrics::new(&CONTROLLERS, &Error::KINDS)
}

/// Errors a reconcile can end with. Each is retried with per-object exponential backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be serialised.
    #[error("serialisation: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The object was missing a field the API server always sets.
    #[error("object has no {0}")]
    MissingField(&'static str),
    /// Cleanup is waiting for dependent objects (e.g. numbers being released) to go.
    #[error("waiting for {0}")]
    Waiting(String),
    /// A carrier call failed, or no carrier client could be built (PhoneNumber cleanup).
    #[error("carrier: {0}")]
    Carrier(String),
    /// The gateway's internal API failed or is not configured.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl Error {
    /// Every label [`Error::kind`] gives, so the error counters exist at 0 from the start.
    pub const KINDS: [&'static str; 6] = [
        "kube",
        "serialization",
        "missing_field",
        "waiting",
        "gateway",
        "carrier",
    ];

    /// A short label for metrics (one of [`Error::KINDS`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Serialization(_) => "serialization",
            Error::MissingField(_) => "missing_field",
            Error::Waiting(_) => "waiting",
            Error::Gateway(_) => "gateway",
            Error::Carrier(_) => "carrier",
        }
    }
}

/// What every reconcile gets.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Operator settings.
    pub config: OperatorConfig,
    /// Metrics to update.
    pub metrics: Arc<Metrics>,
    /// Who publishes the Kubernetes Events.
    pub reporter: Reporter,
    /// Carrier accounts of the PhoneNumber controller (platform credentials, sandbox).
    pub carriers: Arc<phone_number::Carriers>,
    /// What the Tenant controller knows of the cluster without asking (kept by watches).
    pub caches: Arc<Caches>,
    /// Concurrency and debounce of the controllers.
    pub settings: ControllerSettings,
    /// Hash of the campaign scripts last applied per namespace, so an unchanged set is not
    /// applied again.
    pub(crate) published_scripts: Mutex<HashMap<String, u64>>,
    /// Hash of the number → agent map last applied per namespace (`numbers.json`).
    pub(crate) published_numbers: Mutex<HashMap<String, u64>>,
    backoff: Backoff,
    gateway: Option<GatewayClient>,
}

impl Context {
    /// A context reporting Events as `reporter`.
    pub fn new(
        client: Client,
        config: OperatorConfig,
        metrics: Arc<Metrics>,
        reporter: Reporter,
    ) -> Self {
        Self {
            reporter,
            client,
            config,
            metrics,
            backoff: Backoff::default(),
            gateway: None,
            carriers: Arc::default(),
            caches: Arc::default(),
            settings: ControllerSettings::default(),
            published_scripts: Mutex::default(),
            published_numbers: Mutex::default(),
        }
    }

    /// The context with these controller settings.
    pub fn with_settings(mut self, settings: ControllerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The context with these carrier accounts (by default: no platform accounts and an
    /// in-memory sandbox carrier).
    pub fn with_carriers(mut self, carriers: phone_number::Carriers) -> Self {
        self.carriers = Arc::new(carriers);
        self
    }

    /// The context with a client of the gateway's internal API (needed by the Campaign
    /// controller; without it Campaigns report the gateway as not configured).
    pub fn with_gateway(mut self, gateway: GatewayClient) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// The gateway's internal API, if configured.
    pub fn gateway(&self) -> Result<&GatewayClient, GatewayError> {
        self.gateway.as_ref().ok_or(GatewayError::NotConfigured)
    }

    /// The requeue after a failed reconcile of `key`: 1 s, 2 s, 4 s … capped at 5 minutes.
    pub fn backoff_after_failure(&self, key: &str, error: &Error) -> Action {
        if matches!(error, Error::Waiting(_)) {
            return Action::requeue(Duration::from_secs(5));
        }
        Action::requeue(self.backoff.next_delay(key))
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn reset_backoff(&self, key: &str) {
        self.backoff.reset(key);
    }
}

/// Per-object exponential backoff, so a broken object neither spins nor delays others.
#[derive(Default)]
struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    fn next_delay(&self, key: &str) -> Duration {
        let Ok(mut failures) = self.failures.lock() else {
            return Self::MAX;
        };
        let n = failures.entry(key.to_owned()).or_default();
        let delay = Self::BASE
            .saturating_mul(2u32.saturating_pow(*n))
            .min(Self::MAX);
        *n = n.saturating_add(1);
        delay
    }

    fn reset(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_object_and_resets() {
        let backoff = Backoff::default();
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay("a").as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8]);
        assert_eq!(
            backoff.next_delay("b").as_secs(),
            1,
            "other objects are unaffected"
        );
        for _ in 0..20 {
            backoff.next_delay("a");
        }
        assert_eq!(backoff.next_delay("a").as_secs(), 300, "capped");
        backoff.reset("a");
        assert_eq!(backoff.next_delay("a").as_secs(), 1);
    }
}
