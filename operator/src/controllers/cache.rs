//! What the Tenant controller knows about the cluster without asking it: a digest of every
//! object of every tenant's stack, and each tenant namespace's PhoneNumbers and Campaigns.
//! Both are kept by watches, so a reconcile of an unchanged tenant sends no request at all,
//! and the watches decide which changes deserve a reconcile.
//!
//! **Children.** Every applied child carries [`SPEC_HASH_ANNOTATION`], a hash of the desired
//! object. A child is applied again only when
//! * it is missing from the cache (never created, or deleted by someone),
//! * its annotation differs from the desired hash (the spec or the operator changed), or
//! * its content differs from what the operator's own last apply left (someone edited it).
//!
//! "Content" is a fingerprint of the object without what others legitimately write: status
//! (kube-controller-manager's Deployment and ResourceQuota updates), server-managed metadata,
//! annotations outside `voice.switchboard.dev/` (e.g. the Deployment's revision) and the
//! Campaign controller's scripts key in the agent ConfigMap. After a restart the operator has
//! no "last apply" of its own yet, so it trusts the annotation (and adopts the live content);
//! an edit made while no operator ran is repaired when the tenant's spec next changes.
//!
//! **Triggers.** A watch event wakes the tenant only when a child it relies on was deleted,
//! edited by someone else, or when the runtime Deployment's availability — the one status the
//! Tenant's conditions read — changed. The echo of the operator's own write is recognised (the
//! cache was written through with the apply's answer) and wakes nobody. For PhoneNumbers and
//! Campaigns only a change of the tenant's counts (ready numbers, campaigns) wakes it.
//!
//! kube-runtime's reflector stores whole objects; at 10,000 tenants that is over 100,000
//! children, far past the operator's memory budget, so this cache keeps a few integers per
//! child instead. Its `predicate_filter` cannot tell a deletion (the deleted object hashes like
//! its last state) nor the operator's own write from someone else's, hence the triggers here.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Mutex;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, ResourceQuota, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use switchboard_crds::conditions::is_condition_true;
use switchboard_crds::{Campaign, PhoneNumber, Tenant};
use tokio::sync::Notify;

use crate::builders::campaign::CAMPAIGN_SCRIPTS_KEY;
use switchboard_crds::naming::tenant_of_namespace;

use crate::builders::labels::FIELD_MANAGER;

/// Annotation on every child: the hash of the object the operator last applied.
pub const SPEC_HASH_ANNOTATION: &str = "voice.switchboard.dev/spec-hash";
/// Annotations in this domain are the operator's; others belong to whoever wrote them.
const OWN_ANNOTATION_PREFIX: &str = "voice.switchboard.dev/";

/// The kinds of a tenant's stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// The tenant namespace (cluster-scoped).
    Namespace,
    /// Compute and object quota.
    ResourceQuota,
    /// Container defaults.
    LimitRange,
    /// Network policies.
    NetworkPolicy,
    /// The runtime's identity.
    ServiceAccount,
    /// The agent configuration.
    ConfigMap,
    /// The runtime.
    Deployment,
    /// The runtime's Service.
    Service,
    /// The runtime's disruption budget.
    PodDisruptionBudget,
    /// Platform components' access to the namespace (Secrets by name, never a list).
    RoleBinding,
}

impl ChildKind {
    /// The Kubernetes kind.
    pub fn label(self) -> &'static str {
        match self {
            ChildKind::Namespace => "Namespace",
            ChildKind::ResourceQuota => "ResourceQuota",
            ChildKind::LimitRange => "LimitRange",
            ChildKind::NetworkPolicy => "NetworkPolicy",
            ChildKind::ServiceAccount => "ServiceAccount",
            ChildKind::ConfigMap => "ConfigMap",
            ChildKind::Deployment => "Deployment",
            ChildKind::Service => "Service",
            ChildKind::PodDisruptionBudget => "PodDisruptionBudget",
            ChildKind::RoleBinding => "RoleBinding",
        }
    }
}

/// A Kubernetes type that is part of a tenant's stack.
pub trait Child:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Which kind it is.
    const KIND: ChildKind;

    /// The API to apply it through.
    fn api(client: &Client, namespace: &str) -> Api<Self>;

    /// What the Tenant's status reads from it (only the Deployment has any).
    fn rollout(&self) -> Option<Rollout> {
        None
    }
}

impl Child for Namespace {
    const KIND: ChildKind = ChildKind::Namespace;
    fn api(client: &Client, _namespace: &str) -> Api<Self> {
        Api::all(client.clone())
    }
}

macro_rules! namespaced_child {
    ($($type:ty => $kind:ident),* $(,)?) => {$(
        impl Child for $type {
            const KIND: ChildKind = ChildKind::$kind;
            fn api(client: &Client, namespace: &str) -> Api<Self> {
                Api::namespaced(client.clone(), namespace)
            }
        }
    )*};
}

namespaced_child!(
    ResourceQuota => ResourceQuota,
    LimitRange => LimitRange,
    NetworkPolicy => NetworkPolicy,
    ServiceAccount => ServiceAccount,
    ConfigMap => ConfigMap,
    Service => Service,
    PodDisruptionBudget => PodDisruptionBudget,
    RoleBinding => RoleBinding,
);

impl Child for Deployment {
    const KIND: ChildKind = ChildKind::Deployment;
    fn api(client: &Client, namespace: &str) -> Api<Self> {
        Api::namespaced(client.clone(), namespace)
    }
    fn rollout(&self) -> Option<Rollout> {
        let status = self.status.clone().unwrap_or_default();
        Some(Rollout {
            generation: self.metadata.generation.unwrap_or_default(),
            replicas: self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            observed_generation: status.observed_generation.unwrap_or_default(),
            available_replicas: status.available_replicas.unwrap_or_default(),
        })
    }
}

/// The runtime Deployment's progress, as its status reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    /// `metadata.generation`.
    pub generation: i64,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.observedGeneration`.
    pub observed_generation: i64,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
}

impl Rollout {
    /// Whether the Deployment controller has seen the latest spec.
    pub fn observed(&self) -> bool {
        self.observed_generation >= self.generation
    }

    /// What the Tenant's status shows of it: replicas available, and whether the latest spec
    /// is rolled out.
    fn shown(&self) -> (i32, bool) {
        (
            self.available_replicas,
            self.observed() && self.available_replicas >= self.replicas,
        )
    }
}

/// Which child: kind, namespace (empty for the Namespace itself) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildKey {
    kind: ChildKind,
    namespace: String,
    name: String,
}

impl ChildKey {
    /// The key of `object`.
    pub fn of<K: Child>(object: &K) -> Self {
        Self {
            kind: K::KIND,
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
        }
    }

    /// The key of the child of kind `K` named `name` in `namespace`.
    pub fn new<K: Child>(namespace: &str, name: &str) -> Self {
        Self {
            kind: K::KIND,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn tenant_namespace(&self) -> &str {
        if self.kind == ChildKind::Namespace {
            &self.name
        } else {
            &self.namespace
        }
    }
}

/// What the cache keeps of a live child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Live {
    /// The spec-hash annotation.
    spec_hash: Option<u64>,
    /// The content fingerprint.
    content: u64,
    /// The Deployment's progress.
    rollout: Option<Rollout>,
}

impl Live {
    fn of<K: Child>(object: &K) -> Self {
        Self {
            spec_hash: object
                .annotations()
                .get(SPEC_HASH_ANNOTATION)
                .and_then(|h| u64::from_str_radix(h, 16).ok()),
            content: content_fingerprint(object),
            rollout: object.rollout(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// The object as last seen (watch event or the operator's own write); `None` once gone.
    live: Option<Live>,
    /// The content the operator's last apply left; `None` before the first apply (or
    /// adoption) of this process and after the operator deleted the child.
    applied: Option<u64>,
}

/// The digests of every tenant's children. See the module documentation.
#[derive(Default)]
pub struct ChildCache {
    entries: Mutex<Entries>,
    /// Keys seen during a relist in progress, per kind.
    relisting: Relists<ChildKind, ChildKey>,
}

/// The entries, grouped by tenant namespace: an index of a dozen small slots per tenant
/// instead of a map entry (with two strings) per child.
#[derive(Default)]
struct Entries(HashMap<Box<str>, Vec<Slot>>);

struct Slot {
    kind: ChildKind,
    name: Box<str>,
    entry: Entry,
}

impl Entries {
    fn get_mut(&mut self, key: &ChildKey) -> Option<&mut Entry> {
        self.0
            .get_mut(key.tenant_namespace())?
            .iter_mut()
            .find(|s| s.kind == key.kind && *s.name == *key.name)
            .map(|s| &mut s.entry)
    }

    fn get_or_default(&mut self, key: &ChildKey) -> &mut Entry {
        let slots = self.0.entry(key.tenant_namespace().into()).or_default();
        let index = match slots
            .iter()
            .position(|s| s.kind == key.kind && *s.name == *key.name)
        {
            Some(index) => index,
            None => {
                slots.push(Slot {
                    kind: key.kind,
                    name: key.name.as_str().into(),
                    entry: Entry::default(),
                });
                slots.len() - 1
            }
        };
        &mut slots[index].entry
    }

    fn insert(&mut self, key: ChildKey, entry: Entry) {
        *self.get_or_default(&key) = entry;
    }

    fn remove(&mut self, key: &ChildKey) -> Option<Entry> {
        let namespace = key.tenant_namespace();
        let slots = self.0.get_mut(namespace)?;
        let index = slots
            .iter()
            .position(|s| s.kind == key.kind && *s.name == *key.name)?;
        let removed = slots.swap_remove(index).entry;
        if slots.is_empty() {
            self.0.remove(namespace);
        }
        Some(removed)
    }

    fn retain(&mut self, mut keep: impl FnMut(ChildKey, &Entry) -> bool) {
        self.0.retain(|namespace, slots| {
            slots.retain(|slot| {
                let key = ChildKey {
                    kind: slot.kind,
                    namespace: if slot.kind == ChildKind::Namespace {
                        String::new()
                    } else {
                        namespace.to_string()
                    },
                    name: slot.name.to_string(),
                };
                keep(key, &slot.entry)
            });
            !slots.is_empty()
        });
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The keys seen so far by the relist of each kind in progress: what a relist did not see
/// was deleted while the watch was down.
struct Relists<Kind, Key>(Mutex<HashMap<Kind, HashSet<Key>>>);

impl<Kind, Key> Default for Relists<Kind, Key> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<Kind: Eq + std::hash::Hash, Key: Eq + std::hash::Hash> Relists<Kind, Key> {
    fn start(&self, kind: Kind) {
        if let Ok(mut relists) = self.0.lock() {
            relists.insert(kind, HashSet::new());
        }
    }

    fn saw(&self, kind: Kind, key: Key) {
        if let Ok(mut relists) = self.0.lock() {
            relists.entry(kind).or_default().insert(key);
        }
    }

    fn finish(&self, kind: Kind) -> HashSet<Key> {
        self.0
            .lock()
            .ok()
            .and_then(|mut relists| relists.remove(&kind))
            .unwrap_or_default()
    }
}

/// Whether a child must be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Missing, outdated or edited: apply it.
    Apply,
    /// Identical to the desired object: skip it.
    Skip,
}

impl ChildCache {
    /// Whether the child `key`, whose desired object hashes to `spec_hash`, must be applied.
    /// A child found identical after a restart is adopted: from now on an edit of its content
    /// by someone else is noticed.
    pub fn plan(&self, key: &ChildKey, spec_hash: u64) -> Plan {
        let Ok(mut entries) = self.entries.lock() else {
            return Plan::Apply;
        };
        let Some(entry) = entries.get_mut(key) else {
            return Plan::Apply;
        };
        let Some(live) = entry.live else {
            return Plan::Apply;
        };
        if live.spec_hash != Some(spec_hash) {
            return Plan::Apply;
        }
        match entry.applied {
            Some(applied) if applied != live.content => Plan::Apply,
            Some(_) => Plan::Skip,
            None => {
                entry.applied = Some(live.content);
                Plan::Skip
            }
        }
    }

    /// Records the object an apply returned (write-through, so its watch echo wakes nobody).
    pub fn record_applied<K: Child>(&self, object: &K) {
        let live = Live::of(object);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                ChildKey::of(object),
                Entry {
                    live: Some(live),
                    applied: Some(live.content),
                },
            );
        }
    }

    /// Records that the operator deleted `key`.
    pub fn record_deleted(&self, key: &ChildKey) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// Whether `key` exists, as far as the cache knows.
    pub fn contains(&self, key: &ChildKey) -> bool {
        self.entries
            .lock()
            .is_ok_and(|mut entries| entries.get_mut(key).is_some_and(|e| e.live.is_some()))
    }

    /// The progress of the Deployment `key`, if cached.
    pub fn rollout(&self, key: &ChildKey) -> Option<Rollout> {
        self.entries
            .lock()
            .ok()
            .and_then(|mut entries| entries.get_mut(key).and_then(|e| e.live?.rollout))
    }

    /// Folds a watch event into the cache. Returns the namespaces whose tenant must be
    /// reconciled (a relied-upon child was deleted or edited, or the runtime's availability
    /// changed).
    pub fn observe<K: Child>(&self, event: &watcher::Event<K>) -> Vec<String> {
        let mut wake = Vec::new();
        match event {
            watcher::Event::Init => self.relisting.start(K::KIND),
            watcher::Event::InitApply(object) => {
                let key = ChildKey::of(object);
                self.relisting.saw(K::KIND, key.clone());
                if self.upsert(key.clone(), Live::of(object)) {
                    wake.push(key.tenant_namespace().to_owned());
                }
            }
            watcher::Event::InitDone => {
                let seen = self.relisting.finish(K::KIND);
                if let Ok(mut entries) = self.entries.lock() {
                    entries.retain(|key, entry| {
                        if key.kind != K::KIND || seen.contains(&key) {
                            return true;
                        }
                        if entry.applied.is_some() {
                            wake.push(key.tenant_namespace().to_owned());
                        }
                        false
                    });
                }
            }
            watcher::Event::Apply(object) => {
                let key = ChildKey::of(object);
                if self.upsert(key.clone(), Live::of(object)) {
                    wake.push(key.tenant_namespace().to_owned());
                }
            }
            watcher::Event::Delete(object) => {
                let key = ChildKey::of(object);
                let removed = self.entries.lock().ok().and_then(|mut e| e.remove(&key));
                // Deleted by someone else. (The echo of the operator's own delete, arriving
                // before the operator has forgotten the child, wakes the tenant once, harmlessly.)
                if removed.is_some_and(|e| e.applied.is_some()) {
                    wake.push(key.tenant_namespace().to_owned());
                }
            }
        }
        wake
    }

    /// Stores `live`; true when the change deserves a reconcile.
    fn upsert(&self, key: ChildKey, live: Live) -> bool {
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        let entry = entries.get_or_default(&key);
        let previous = entry.live.replace(live);
        let edited = entry.applied.is_some_and(|applied| applied != live.content);
        let availability = |l: Option<Live>| l.and_then(|l| l.rollout).map(|r| r.shown());
        let rollout_changed =
            previous.is_some() && availability(previous) != availability(Some(live));
        edited || rollout_changed
    }

    /// Forgets everything (a test starting over).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// The fingerprint of what the operator compares of a child; see the module documentation.
pub fn content_fingerprint<K: Serialize>(object: &K) -> u64 {
    let Ok(mut value) = serde_json::to_value(object) else {
        return 0;
    };
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        if let Some(data) = map.get_mut("data").and_then(|d| d.as_object_mut()) {
            data.remove(CAMPAIGN_SCRIPTS_KEY);
        }
        if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            for volatile in [
                "resourceVersion",
                "managedFields",
                "generation",
                "creationTimestamp",
                "uid",
                "selfLink",
            ] {
                meta.remove(volatile);
            }
            if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
                annotations.retain(|key, _| key.starts_with(OWN_ANNOTATION_PREFIX));
            }
        }
    }
    stable_hash(&value)
}

/// The spec hash of a desired object (before the annotation is added).
pub fn spec_hash<K: Serialize>(object: &K) -> u64 {
    serde_json::to_value(object).map_or(0, |value| stable_hash(&value))
}

/// A hash that is the same in every build and release of the operator (it is stored on the
/// objects): SHA-256 of the JSON, whose object keys serde_json keeps sorted.
fn stable_hash(value: &serde_json::Value) -> u64 {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Each tenant namespace's PhoneNumbers (and whether they are Ready) and Campaigns, for the
/// Tenant's counts.
#[derive(Default)]
pub struct TenantObjects {
    namespaces: Mutex<HashMap<String, NamespaceObjects>>,
    relisting: Relists<CountedKind, (String, String)>,
}

/// A namespace's counted objects: (kind, name) → ready.
type NamespaceObjects = HashMap<(CountedKind, String), bool>;

/// The kinds [`TenantObjects`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CountedKind {
    /// PhoneNumbers (the ready ones are counted).
    PhoneNumber,
    /// Campaigns (all are counted).
    Campaign,
}

/// An object [`TenantObjects`] counts.
pub trait Counted:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
    /// Which kind it is.
    const KIND: CountedKind;
    /// Whether it counts as ready.
    fn ready(&self) -> bool;
}

impl Counted for PhoneNumber {
    const KIND: CountedKind = CountedKind::PhoneNumber;
    fn ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            is_condition_true(
                &s.conditions,
                switchboard_crds::phone_number::CONDITION_READY,
            )
        })
    }
}

impl Counted for Campaign {
    const KIND: CountedKind = CountedKind::Campaign;
    fn ready(&self) -> bool {
        true
    }
}

impl TenantObjects {
    /// Ready PhoneNumbers and Campaigns in `namespace`.
    pub fn counts(&self, namespace: &str) -> (usize, usize) {
        let Ok(namespaces) = self.namespaces.lock() else {
            return (0, 0);
        };
        namespaces.get(namespace).map_or((0, 0), |objects| {
            objects.iter().fold(
                (0, 0),
                |(numbers, campaigns), ((kind, _), ready)| match kind {
                    CountedKind::PhoneNumber => (numbers + usize::from(*ready), campaigns),
                    CountedKind::Campaign => (numbers, campaigns + 1),
                },
            )
        })
    }

    /// Folds a watch event in. Returns the namespaces whose counts changed.
    pub fn observe<K: Counted>(&self, event: &watcher::Event<K>) -> Vec<String> {
        let mut wake = Vec::new();
        match event {
            watcher::Event::Init => self.relisting.start(K::KIND),
            watcher::Event::InitApply(object) => {
                self.relisting.saw(
                    K::KIND,
                    (object.namespace().unwrap_or_default(), object.name_any()),
                );
                self.set_object(object, &mut wake);
            }
            watcher::Event::InitDone => {
                let seen = self.relisting.finish(K::KIND);
                let gone: Vec<(String, String)> = self.namespaces.lock().map_or(Vec::new(), |n| {
                    n.iter()
                        .flat_map(|(namespace, objects)| {
                            objects
                                .keys()
                                .filter(|(kind, name)| {
                                    *kind == K::KIND
                                        && !seen.contains(&(namespace.clone(), name.clone()))
                                })
                                .map(|(_, name)| (namespace.clone(), name.clone()))
                        })
                        .collect()
                });
                for (namespace, name) in gone {
                    self.set(&namespace, K::KIND, name, None, &mut wake);
                }
            }
            watcher::Event::Apply(object) => self.set_object(object, &mut wake),
            watcher::Event::Delete(object) => {
                let namespace = object.namespace().unwrap_or_default();
                self.set(&namespace, K::KIND, object.name_any(), None, &mut wake);
            }
        }
        wake.dedup();
        wake
    }

    fn set_object<K: Counted>(&self, object: &K, wake: &mut Vec<String>) {
        let namespace = object.namespace().unwrap_or_default();
        self.set(
            &namespace,
            K::KIND,
            object.name_any(),
            Some(object.ready()),
            wake,
        );
    }

    fn set(
        &self,
        namespace: &str,
        kind: CountedKind,
        name: String,
        ready: Option<bool>,
        wake: &mut Vec<String>,
    ) {
        let before = self.counts(namespace);
        if let Ok(mut namespaces) = self.namespaces.lock() {
            let objects = namespaces.entry(namespace.to_owned()).or_default();
            match ready {
                Some(ready) => {
                    objects.insert((kind, name), ready);
                }
                None => {
                    objects.remove(&(kind, name));
                }
            }
            if objects.is_empty() {
                namespaces.remove(namespace);
            }
        }
        if self.counts(namespace) != before {
            wake.push(namespace.to_owned());
        }
    }
}

/// The Tenant controller's caches, kept by [`Caches::watch`].
#[derive(Default)]
pub struct Caches {
    /// Digests of the tenants' stacks.
    pub children: ChildCache,
    /// PhoneNumbers and Campaigns per tenant namespace.
    pub objects: TenantObjects,
    synced: Mutex<HashSet<&'static str>>,
    synced_changed: Notify,
}

/// Watches that feed the caches: ten child kinds, PhoneNumbers and Campaigns.
const WATCHES: usize = 12;

impl Caches {
    /// Waits until every watch has listed its objects once.
    pub async fn wait_until_synced(&self) {
        loop {
            let notified = self.synced_changed.notified();
            if self.synced.lock().is_ok_and(|s| s.len() >= WATCHES) {
                return;
            }
            notified.await;
        }
    }

    fn mark_synced(&self, what: &'static str) {
        if let Ok(mut synced) = self.synced.lock() {
            synced.insert(what);
        }
        self.synced_changed.notify_waiters();
    }

    /// Keeps the caches up to date until the watches end (never, unless the client is gone),
    /// sending the Tenants that need a reconcile to `wake`.
    pub async fn watch(
        &self,
        client: Client,
        prefix: String,
        wake: mpsc::Sender<ObjectRef<Tenant>>,
    ) {
        let managed = watcher::Config::default()
            .labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}"));
        let c = &client;
        let children = futures::future::join5(
            self.watch_child::<Namespace>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<ResourceQuota>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<LimitRange>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<NetworkPolicy>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<ServiceAccount>(c, &managed, &prefix, wake.clone()),
        );
        let more_children = futures::future::join5(
            self.watch_child::<ConfigMap>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<Deployment>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<Service>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<PodDisruptionBudget>(c, &managed, &prefix, wake.clone()),
            self.watch_child::<RoleBinding>(c, &managed, &prefix, wake.clone()),
        );
        let counted = futures::future::join(
            self.watch_counted::<PhoneNumber>(c, &prefix, wake.clone()),
            self.watch_counted::<Campaign>(c, &prefix, wake),
        );
        futures::future::join3(children, more_children, counted).await;
    }

    async fn watch_child<K: Child>(
        &self,
        client: &Client,
        config: &watcher::Config,
        prefix: &str,
        wake: mpsc::Sender<ObjectRef<Tenant>>,
    ) {
        let events = watcher(Api::<K>::all(client.clone()), config.clone());
        self.fold(K::KIND.label(), events, prefix, wake, |event| {
            self.children.observe(event)
        })
        .await;
    }

    async fn watch_counted<K: Counted>(
        &self,
        client: &Client,
        prefix: &str,
        wake: mpsc::Sender<ObjectRef<Tenant>>,
    ) {
        let events = watcher(Api::<K>::all(client.clone()), watcher::Config::default());
        let label = match K::KIND {
            CountedKind::PhoneNumber => "PhoneNumber",
            CountedKind::Campaign => "Campaign",
        };
        self.fold(label, events, prefix, wake, |event| {
            self.objects.observe(event)
        })
        .await;
    }

    async fn fold<K: Resource + Clone + Debug + Send + 'static>(
        &self,
        label: &'static str,
        events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
        prefix: &str,
        mut wake: mpsc::Sender<ObjectRef<Tenant>>,
        observe: impl Fn(&watcher::Event<K>) -> Vec<String>,
    ) {
        let mut events = std::pin::pin!(events.default_backoff());
        // Until the first list is complete nobody is woken: every Tenant is reconciled once
        // when the controller starts, and it starts only after every watch has listed.
        let mut listed = false;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(kind = label, %error, "watch failed; retrying");
                    continue;
                }
            };
            let namespaces = observe(&event);
            if matches!(event, watcher::Event::InitDone) {
                self.mark_synced(label);
                if !listed {
                    listed = true;
                    continue;
                }
            }
            if !listed {
                continue;
            }
            for namespace in namespaces {
                if let Some(tenant) = tenant_of_namespace(prefix, &namespace) {
                    // The controller may be gone (shutdown): then nobody needs waking.
                    let _ = wake.send(ObjectRef::new(tenant)).await;
                }
            }
        }
    }

    /// Rebuilds the caches from a LIST of every watched kind, exactly as the watches do after
    /// (re)listing. For reconcile tests that drive the controller by hand.
    pub async fn relist(&self, client: &Client) -> Result<(), kube::Error> {
        self.relist_child::<Namespace>(client).await?;
        self.relist_child::<ResourceQuota>(client).await?;
        self.relist_child::<LimitRange>(client).await?;
        self.relist_child::<NetworkPolicy>(client).await?;
        self.relist_child::<ServiceAccount>(client).await?;
        self.relist_child::<ConfigMap>(client).await?;
        self.relist_child::<Deployment>(client).await?;
        self.relist_child::<Service>(client).await?;
        self.relist_child::<PodDisruptionBudget>(client).await?;
        self.relist_child::<RoleBinding>(client).await?;
        self.relist_counted::<PhoneNumber>(client).await?;
        self.relist_counted::<Campaign>(client).await?;
        Ok(())
    }

    async fn relist_child<K: Child>(&self, client: &Client) -> Result<(), kube::Error> {
        let params =
            ListParams::default().labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}"));
        let items = Api::<K>::all(client.clone()).list(&params).await?.items;
        self.children.observe::<K>(&watcher::Event::Init);
        for item in items {
            self.children.observe(&watcher::Event::InitApply(item));
        }
        self.children.observe::<K>(&watcher::Event::InitDone);
        Ok(())
    }

    async fn relist_counted<K: Counted>(&self, client: &Client) -> Result<(), kube::Error> {
        let items = Api::<K>::all(client.clone())
            .list(&ListParams::default())
            .await?
            .items;
        self.objects.observe::<K>(&watcher::Event::Init);
        for item in items {
            self.objects.observe(&watcher::Event::InitApply(item));
        }
        self.objects.observe::<K>(&watcher::Event::InitDone);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(cpu: &str, spec_hash: u64) -> ResourceQuota {
        serde_json::from_value(json!({
            "metadata": {"name": "tenant-quota", "namespace": "tenant-acme", "resourceVersion": "7",
                "annotations": {SPEC_HASH_ANNOTATION: format!("{spec_hash:016x}")}},
            "spec": {"hard": {"requests.cpu": cpu}},
        }))
        .unwrap()
    }

    fn deployment(generation: i64, observed: i64, available: i32, note: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "voice-runtime", "namespace": "tenant-acme", "generation": generation,
                "annotations": {SPEC_HASH_ANNOTATION: "0000000000000001",
                    "deployment.kubernetes.io/revision": note}},
            "status": {"observedGeneration": observed, "availableReplicas": available,
                "conditions": [{"type": "Available", "status": "True", "message": note}]},
        }))
        .unwrap()
    }

    #[test]
    fn children_are_applied_when_missing_outdated_or_edited_by_someone_else() {
        let cache = ChildCache::default();
        let key = ChildKey::of(&quota("2", 1));
        assert_eq!(cache.plan(&key, 1), Plan::Apply, "never seen");
        cache.record_applied(&quota("2", 1));
        assert_eq!(cache.plan(&key, 1), Plan::Skip);
        assert_eq!(cache.plan(&key, 2), Plan::Apply, "desired object changed");

        let mut echo = quota("2", 1);
        echo.metadata.resource_version = Some("8".into());
        echo.status = serde_json::from_value(json!({"used": {"pods": "1"}})).unwrap();
        assert!(
            cache.observe(&watcher::Event::Apply(echo)).is_empty(),
            "own write or status update"
        );
        assert_eq!(cache.plan(&key, 1), Plan::Skip);

        let edited = quota("64", 1);
        assert_eq!(
            cache.observe(&watcher::Event::Apply(edited.clone())),
            vec!["tenant-acme"]
        );
        assert_eq!(cache.plan(&key, 1), Plan::Apply, "hand edit is repaired");

        assert_eq!(
            cache.observe(&watcher::Event::Delete(edited)),
            vec!["tenant-acme"]
        );
        assert!(!cache.contains(&key));
        assert_eq!(
            cache.plan(&key, 1),
            Plan::Apply,
            "deleted child is recreated"
        );
    }

    #[test]
    fn children_the_operator_deletes_wake_nobody() {
        let cache = ChildCache::default();
        cache.record_applied(&quota("2", 1));
        let key = ChildKey::of(&quota("2", 1));
        cache.record_deleted(&key);
        assert!(
            cache
                .observe(&watcher::Event::Delete(quota("2", 1)))
                .is_empty()
        );
    }

    #[test]
    fn after_a_restart_children_with_the_desired_hash_are_adopted() {
        let cache = ChildCache::default();
        cache.observe::<ResourceQuota>(&watcher::Event::Init);
        assert!(
            cache
                .observe(&watcher::Event::InitApply(quota("2", 1)))
                .is_empty()
        );
        cache.observe::<ResourceQuota>(&watcher::Event::InitDone);
        let key = ChildKey::of(&quota("2", 1));
        assert_eq!(cache.plan(&key, 1), Plan::Skip, "trusted by its annotation");
        assert_eq!(
            cache.observe(&watcher::Event::Apply(quota("64", 1))),
            vec!["tenant-acme"],
            "adopted: later edits are noticed"
        );
    }

    #[test]
    fn a_relist_forgets_children_deleted_meanwhile() {
        let cache = ChildCache::default();
        cache.record_applied(&quota("2", 1));
        cache.observe::<ResourceQuota>(&watcher::Event::Init);
        assert_eq!(
            cache.observe::<ResourceQuota>(&watcher::Event::InitDone),
            vec!["tenant-acme"]
        );
        assert!(!cache.contains(&ChildKey::of(&quota("2", 1))));
    }

    #[test]
    fn only_the_runtime_availability_wakes_the_tenant() {
        let cache = ChildCache::default();
        cache.record_applied(&deployment(1, 0, 0, "1"));
        let key = ChildKey::of(&deployment(1, 0, 0, "1"));
        // Observed, still unavailable: the Tenant's status would not change.
        assert!(
            cache
                .observe(&watcher::Event::Apply(deployment(1, 1, 0, "1")))
                .is_empty()
        );
        assert_eq!(
            cache.observe(&watcher::Event::Apply(deployment(1, 1, 1, "1"))),
            vec!["tenant-acme"]
        );
        // Condition heartbeats and others' annotations change nothing the operator reads.
        assert!(
            cache
                .observe(&watcher::Event::Apply(deployment(1, 1, 1, "2")))
                .is_empty()
        );
        assert_eq!(cache.plan(&key, 1), Plan::Skip);
        assert_eq!(
            cache.rollout(&key),
            Some(Rollout {
                generation: 1,
                replicas: 1,
                observed_generation: 1,
                available_replicas: 1
            })
        );
    }

    fn number(name: &str, ready: bool) -> PhoneNumber {
        serde_json::from_value(json!({
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
            "metadata": {"name": name, "namespace": "tenant-acme"},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "reason": "r", "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
        .unwrap()
    }

    #[test]
    fn counts_change_wakes_the_tenant_and_nothing_else_does() {
        let objects = TenantObjects::default();
        assert!(
            objects
                .observe(&watcher::Event::Apply(number("a", false)))
                .is_empty(),
            "a number that is not ready changes no count"
        );
        assert_eq!(
            objects.observe(&watcher::Event::Apply(number("a", true))),
            vec!["tenant-acme"]
        );
        assert!(
            objects
                .observe(&watcher::Event::Apply(number("a", true)))
                .is_empty()
        );
        assert_eq!(objects.counts("tenant-acme"), (1, 0));
        assert_eq!(
            objects.observe(&watcher::Event::Delete(number("a", true))),
            vec!["tenant-acme"]
        );
        assert_eq!(objects.counts("tenant-acme"), (0, 0));
    }

    #[test]
    fn fingerprints_ignore_status_server_metadata_and_others_annotations() {
        let mut a = deployment(1, 0, 0, "1");
        let mut b = deployment(3, 3, 2, "9");
        b.metadata.resource_version = Some("99".into());
        assert_eq!(content_fingerprint(&a), content_fingerprint(&b));
        a.annotations_mut()
            .insert(SPEC_HASH_ANNOTATION.into(), "0000000000000002".into());
        assert_ne!(content_fingerprint(&a), content_fingerprint(&b));
        assert_eq!(spec_hash(&quota("2", 1)), spec_hash(&quota("2", 1)));
    }
}
