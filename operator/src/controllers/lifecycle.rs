//! What the three controllers do alike with the object they reconcile, written once: the
//! finalizer step, the reconcile bookkeeping (metrics, per-object backoff), and the status
//! step — compare the desired status with the stored one, write it only when it differs, and
//! publish Events for the transitions a human cares about.
//!
//! The finalizer step is kube-runtime's [`finalizer`] helper: it adds the finalizer (guarded by
//! a JSON-patch `test`, so a concurrent edit of the list fails and is retried instead of lost)
//! and returns; the watch event of that write brings the next reconcile, which applies. On
//! deletion it runs the cleanup and removes the finalizer only when the cleanup succeeded.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use kube::api::Api;
use kube::core::object::HasStatus;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, Recorder};
use kube::runtime::finalizer::{self, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::apply::apply_status;
use super::{Context, Error};

/// A custom resource one of the controllers reconciles.
pub trait Reconciled:
    Resource<DynamicType = ()>
    + HasStatus<Status: Serialize + PartialEq + Clone + Default + Send + Sync>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Controller label of metrics and backoff keys.
    const CONTROLLER: &'static str;
    /// The finalizer the controller holds the object with.
    const FINALIZER: &'static str;

    /// The API of this object: cluster-wide or its namespace.
    fn api(&self, client: &Client) -> Api<Self>;

    /// Whether the object must carry the finalizer before it is applied (default: always).
    fn needs_finalizer(&self, _ctx: &Context) -> bool {
        true
    }
}

/// Runs one reconcile of `object`: counts and times it, takes the finalizer step, runs
/// `apply` (live object) or `cleanup` (object being deleted), and forgets the object's failures
/// when it succeeded.
pub async fn reconcile_with<K, A, C, FA, FC>(
    object: Arc<K>,
    ctx: &Context,
    apply: A,
    cleanup: C,
) -> Result<Action, Error>
where
    K: Reconciled,
    A: FnOnce(Arc<K>) -> FA,
    C: FnOnce(Arc<K>) -> FC,
    FA: Future<Output = Result<Action, Error>>,
    FC: Future<Output = Result<Action, Error>>,
{
    let _timer = ctx.metrics.reconcile_started(K::CONTROLLER);
    let key = backoff_key(object.as_ref());
    let deleting = object.meta().deletion_timestamp.is_some();
    let has_finalizer = object.finalizers().iter().any(|f| f == K::FINALIZER);
    let result = if !deleting && !has_finalizer && !object.needs_finalizer(ctx) {
        apply(object).await
    } else {
        let api = object.api(&ctx.client);
        finalizer(&api, K::FINALIZER, object, |event| async move {
            match event {
                finalizer::Event::Apply(object) => apply(object).await,
                finalizer::Event::Cleanup(object) => cleanup(object).await,
            }
        })
        .await
        .map_err(from_finalizer_error)
    };
    if result.is_ok() {
        ctx.reset_backoff(&key);
    }
    result
}

fn from_finalizer_error(error: finalizer::Error<Error>) -> Error {
    match error {
        finalizer::Error::ApplyFailed(error) | finalizer::Error::CleanupFailed(error) => error,
        finalizer::Error::AddFinalizer(error) | finalizer::Error::RemoveFinalizer(error) => {
            Error::Kube(error)
        }
        finalizer::Error::UnnamedObject => Error::MissingField("metadata.name"),
        finalizer::Error::InvalidFinalizer => Error::MissingField("a valid finalizer name"),
    }
}

/// The error policy of every controller: counts the failure and requeues with per-object
/// backoff (waiting for dependents is expected and only logged at debug level).
pub fn error_policy<K: Reconciled>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(K::CONTROLLER, error.kind());
    let name = object.name_any();
    let namespace = object.namespace();
    if matches!(error, Error::Waiting(_)) {
        tracing::debug!(controller = K::CONTROLLER, %name, ?namespace, %error, "waiting");
    } else {
        tracing::warn!(controller = K::CONTROLLER, %name, ?namespace, %error, "reconcile failed");
    }
    ctx.backoff_after_failure(&backoff_key(object.as_ref()), error)
}

/// Backoff is shared by the controllers: keys carry the controller and the namespace.
fn backoff_key<K: Reconciled>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::CONTROLLER,
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Writes `status` to `object` when it differs from the stored status, then publishes the
/// Events `transitions(previous, status)` returns. Returns whether a write was made.
///
/// Equal statuses cost no request: the desired status is built so that unchanged inputs give
/// an equal value (conditions keep their transition time), so an object at rest is never
/// written.
pub async fn write_status<K: Reconciled>(
    ctx: &Context,
    object: &K,
    status: K::Status,
    transitions: impl FnOnce(&K::Status, &K::Status) -> Vec<Event>,
) -> Result<bool, Error> {
    let previous = object.status().cloned().unwrap_or_default();
    if previous == status {
        return Ok(false);
    }
    apply_status(&object.api(&ctx.client), &object.name_any(), &status).await?;
    for event in transitions(&previous, &status) {
        publish(ctx, object, event).await;
    }
    Ok(true)
}

/// Publishes an Event about `object`. Events are best-effort: failing to record one must not
/// fail the reconcile.
///
/// A `Recorder` caches every Event it published for six minutes (to count repeats into a
/// series) and scans that cache on each publish; at thousands of tenants converging, that is
/// tens of megabytes and a scan per Event. The operator's Events mark transitions, which do not
/// repeat within minutes, so each is published by a fresh Recorder: no series, no cache.
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, object: &K, event: Event) {
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    if let Err(error) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(%error, "cannot publish event");
    }
}
