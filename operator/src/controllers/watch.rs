//! The watch streams the controllers run on, filtered to meaningful changes.
//!
//! `Controller::new` reconciles an object on every change, including the operator's own status
//! writes and every status update of a watched object: each reconcile then writes again and
//! wakes the next. Here the reconciled object wakes its controller only when its spec
//! (`generation`), deletion or finalizers change — what a reconcile acts on — and watched
//! objects only when the fields the reconciler reads from them change. A periodic requeue
//! still covers anything a filter would hide.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use futures::Stream;
use kube::api::Api;
use kube::runtime::controller::Config;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{Predicate, PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// `kubectl apply` keeps a copy of the whole manifest in this annotation.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The objects a controller reconciles, cached in a reflector store, and the stream of those
/// whose `predicate` value changed. The cached copies drop managedFields and kubectl's
/// last-applied copy of the manifest, which the operator never reads and which would double
/// the memory of every object.
pub fn reconciled<K>(
    api: Api<K>,
    predicate: impl Predicate<K> + Send + 'static,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|object: &mut K| {
            object.managed_fields_mut().clear();
            object.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicate, PredicateConfig::default());
    (reader, stream)
}

/// Objects of another kind that wake a controller when `predicate` changes.
pub fn watched<K>(
    api: Api<K>,
    predicate: impl Predicate<K> + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .predicate_filter(predicate, PredicateConfig::default())
}

/// Predicate of a reconciled object: its spec, deletion and finalizers. The operator's own
/// status writes do not pass; adding the finalizer does (the next reconcile applies).
pub fn spec_and_lifecycle<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    Some(hash_of(&(
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.finalizers,
    )))
}

/// Hashes a projection of an object, for predicates.
pub fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// How many reconciles each controller runs at once, and how long a burst of changes to one
/// object is gathered into one reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerSettings {
    /// Tenant reconciles at once (each sends up to ~14 requests to the API server).
    pub tenant_concurrency: u16,
    /// PhoneNumber reconciles at once (each may wait on the carrier's API).
    pub number_concurrency: u16,
    /// Campaign reconciles at once (each may wait on the gateway).
    pub campaign_concurrency: u16,
    /// Trailing-edge debounce of reconcile requests for one object.
    pub debounce: Duration,
}

impl Default for ControllerSettings {
    /// Bounded, so 1,000 new Tenants queue instead of flooding the API server with 14,000
    /// concurrent writes, and a short debounce that folds a burst of edits (a GitOps sync, a
    /// number and its tenant changing together) into one reconcile.
    fn default() -> Self {
        Self {
            tenant_concurrency: 8,
            number_concurrency: 4,
            campaign_concurrency: 4,
            debounce: Duration::from_millis(500),
        }
    }
}

impl ControllerSettings {
    /// kube-runtime's settings for a controller running `concurrency` reconciles at once.
    pub fn config(&self, concurrency: u16) -> Config {
        Config::default()
            .concurrency(concurrency)
            .debounce(self.debounce)
    }
}
