//! The Tenant controller: a Tenant becomes an isolated voice stack in its own namespace.
//!
//! A reconcile builds the whole desired stack and applies only the objects that differ from
//! what the cluster holds, as the watch caches tell it ([`super::cache`]): a new Tenant costs
//! one apply per object, an unchanged one no request at all, and a deleted or hand-edited child
//! is put back. The runtime's availability and the counts of numbers and campaigns come from
//! the same caches, and status is written only when it changed. The controller wakes only on
//! meaningful changes: the Tenant's spec, deletion or finalizers, a child deleted or edited by
//! someone else, the runtime becoming (un)available, a number or campaign count changing.
//!
//! Deleting a Tenant first deletes its PhoneNumbers (which release their numbers at the
//! carrier) while the tenant's credentials still exist; only then is the finalizer removed and
//! the namespace garbage-collected.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource, ResourceExt};
use switchboard_crds::conditions::is_condition_true;
use switchboard_crds::tenant::{
    CONDITION_NAMESPACE_READY, CONDITION_READY, CONDITION_RUNTIME_READY, CONDITION_SUSPENDED,
};
use switchboard_crds::{ConditionStatus, PhoneNumber, Tenant, TenantStatus, set_condition};

use super::cache::{Child, ChildKey, Plan, Rollout, SPEC_HASH_ANNOTATION, spec_hash};
use super::lifecycle::{Reconciled, publish, reconcile_with, write_status};
use super::watch::{reconciled, spec_and_lifecycle};
use super::{Context, Error};
use crate::builders::labels::{RUNTIME_NAME, tenant_name};
use crate::builders::runtime::{desired_replicas, runtime_endpoint};
use crate::builders::{InvalidTenant, TenantStack, desired_stack};

/// Finalizer that holds a Tenant until its numbers are released.
pub const FINALIZER: &str = "voice.switchboard.dev/release-numbers";
/// Safety-net resync while the runtime is still rolling out (its availability is watched).
const REQUEUE_NOT_READY: Duration = Duration::from_secs(300);
/// Safety-net resync of a settled tenant. It reads only the caches: no request unless
/// something differs.
const REQUEUE_READY: Duration = Duration::from_secs(3600);

impl Reconciled for Tenant {
    const CONTROLLER: &'static str = "tenant";
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self, client: &Client) -> Api<Self> {
        Api::all(client.clone())
    }
}

/// What the cluster said about the applied stack.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Replicas the Deployment should run.
    pub desired_replicas: i32,
    /// Replicas available, as reported by the Deployment status.
    pub available_replicas: i32,
    /// Whether the Deployment controller has seen the latest spec.
    pub rollout_observed: bool,
    /// PhoneNumbers of the tenant that are Ready.
    pub ready_numbers: i32,
    /// Campaigns of the tenant.
    pub campaigns: i32,
}

/// Runs the Tenant controller until `shutdown` resolves.
///
/// The caches are filled first (every watch has listed once), so the first reconciles already
/// know which objects exist and apply nothing that is in place.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (wake, woken) = mpsc::channel(1024);
    let caches = ctx.caches.clone();
    let watches = caches.watch(client.clone(), ctx.config.namespace_prefix.clone(), wake);
    let controller = async {
        ctx.caches.wait_until_synced().await;
        tracing::info!("tenant caches synced");
        let (store, tenants) = reconciled(Api::<Tenant>::all(client), spec_and_lifecycle);
        Controller::for_stream(tenants, store)
            .with_config(ctx.settings.config(ctx.settings.tenant_concurrency))
            .reconcile_on(woken)
            .graceful_shutdown_on(shutdown)
            .run(reconcile, super::lifecycle::error_policy, ctx.clone())
            .for_each(|result| async move {
                match result {
                    Ok((object, _)) => tracing::debug!(tenant = %object.name, "reconciled"),
                    Err(error) => tracing::debug!(%error, "reconcile did not complete"),
                }
            })
            .await;
    };
    // The watches run until the controller has shut down.
    tokio::select! {
        () = controller => {}
        () = watches => tracing::warn!("tenant cache watches ended"),
    }
}

/// Reconciles one Tenant (entry point for the controller and for tests).
pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_with(
        tenant,
        &ctx,
        |tenant| apply(tenant, &ctx),
        |tenant| cleanup(tenant, &ctx),
    )
    .await
}

async fn apply(tenant: Arc<Tenant>, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let stack = match desired_stack(&tenant, &ctx.config) {
        Ok(stack) => stack,
        Err(invalid) => return report_invalid(&tenant, ctx, &invalid, now).await,
    };
    let observed = apply_stack(&stack, &tenant, ctx).await?;
    let namespace = ctx.config.tenant_namespace(&tenant_name(&tenant));
    let status = desired_status(&tenant, &namespace, &observed, now);
    let ready = is_condition_true(&status.conditions, CONDITION_READY);
    ctx.metrics
        .observe_tenant(&tenant.name_any(), condition_map(&status));
    write_status(ctx, tenant.as_ref(), status, transition_events).await?;
    Ok(if ready || tenant.spec.suspended {
        Action::requeue(REQUEUE_READY)
    } else {
        Action::requeue(REQUEUE_NOT_READY)
    })
}

/// Applies the objects of the stack that differ from the cluster, namespace first, and reads
/// what the caches report.
async fn apply_stack(
    stack: &TenantStack,
    tenant: &Tenant,
    ctx: &Context,
) -> Result<Observed, Error> {
    ensure(ctx, &stack.namespace).await?;
    ensure(ctx, &stack.resource_quota).await?;
    ensure(ctx, &stack.limit_range).await?;
    for policy in &stack.network_policies {
        ensure(ctx, policy).await?;
    }
    for binding in &stack.role_bindings {
        ensure(ctx, binding).await?;
    }
    ensure::<ServiceAccount>(ctx, &stack.service_account).await?;
    ensure::<ConfigMap>(ctx, &stack.agent_config).await?;
    ensure(ctx, &stack.deployment).await?;
    ensure(ctx, &stack.service).await?;
    let namespace = stack.namespace.name_any();
    match &stack.pod_disruption_budget {
        Some(pdb) => ensure(ctx, pdb).await?,
        None => remove::<PodDisruptionBudget>(ctx, &namespace, RUNTIME_NAME).await?,
    }
    let rollout = ctx
        .caches
        .children
        .rollout(&ChildKey::new::<k8s_openapi::api::apps::v1::Deployment>(
            &namespace,
            RUNTIME_NAME,
        ))
        .unwrap_or_default();
    let (ready_numbers, campaigns) = ctx.caches.objects.counts(&namespace);
    Ok(observe_rollout(
        rollout,
        desired_replicas(tenant),
        saturating_i32(ready_numbers),
        saturating_i32(campaigns),
    ))
}

/// Applies `desired` unless the cache says the cluster already holds it. The applied object
/// carries the hash of `desired` ([`SPEC_HASH_ANNOTATION`]), and the answer is written through
/// to the cache.
async fn ensure<K: Child>(ctx: &Context, desired: &K) -> Result<(), Error> {
    let hash = spec_hash(desired);
    if ctx.caches.children.plan(&ChildKey::of(desired), hash) == Plan::Skip {
        return Ok(());
    }
    let mut object = desired.clone();
    object
        .annotations_mut()
        .insert(SPEC_HASH_ANNOTATION.to_owned(), format!("{hash:016x}"));
    let namespace = object.namespace().unwrap_or_default();
    let applied = super::apply::apply(&K::api(&ctx.client, &namespace), &object).await?;
    ctx.caches.children.record_applied(&applied);
    Ok(())
}

/// Deletes a child that is no longer wanted, if the cache says it exists.
async fn remove<K: Child>(ctx: &Context, namespace: &str, name: &str) -> Result<(), Error> {
    let key = ChildKey::new::<K>(namespace, name);
    if !ctx.caches.children.contains(&key) {
        return Ok(());
    }
    match K::api(&ctx.client, namespace)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(error.into()),
    }
    ctx.caches.children.record_deleted(&key);
    Ok(())
}

fn observe_rollout(rollout: Rollout, desired: i32, ready_numbers: i32, campaigns: i32) -> Observed {
    Observed {
        desired_replicas: desired,
        available_replicas: rollout.available_replicas,
        rollout_observed: rollout.observed(),
        ready_numbers,
        campaigns,
    }
}

fn saturating_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The status a Tenant should have given what the cluster reports. Pure, so it is unit-tested
/// and equal inputs give an equal status (no churn on unchanged tenants).
pub fn desired_status(
    tenant: &Tenant,
    namespace: &str,
    observed: &Observed,
    now: Timestamp,
) -> TenantStatus {
    let generation = tenant.metadata.generation;
    let mut status = tenant.status.clone().unwrap_or_default();
    status.namespace = Some(namespace.to_owned());
    status.runtime_endpoint = Some(runtime_endpoint(namespace));
    status.observed_generation = generation;
    status.phone_numbers = observed.ready_numbers;
    status.campaigns = observed.campaigns;
    let conditions = &mut status.conditions;

    set_condition(
        conditions,
        CONDITION_NAMESPACE_READY,
        ConditionStatus::True,
        "Applied",
        format!("namespace {namespace} with quota and network policies is applied"),
        generation,
        now,
    );

    let suspended = tenant.spec.suspended;
    set_condition(
        conditions,
        CONDITION_SUSPENDED,
        suspended.into(),
        if suspended { "Suspended" } else { "Active" },
        if suspended {
            "tenant is suspended: runtime scaled to zero, calls refused"
        } else {
            "tenant is active"
        },
        generation,
        now,
    );

    let runtime_ready =
        observed.rollout_observed && observed.available_replicas >= observed.desired_replicas;
    let (runtime_reason, runtime_message) = if suspended {
        ("Suspended", "runtime scaled to zero".to_owned())
    } else if runtime_ready {
        (
            "Available",
            format!(
                "{}/{} runtime replicas available",
                observed.available_replicas, observed.desired_replicas
            ),
        )
    } else {
        (
            "RollingOut",
            format!(
                "{}/{} runtime replicas available",
                observed.available_replicas, observed.desired_replicas
            ),
        )
    };
    set_condition(
        conditions,
        CONDITION_RUNTIME_READY,
        (runtime_ready && !suspended).into(),
        runtime_reason,
        runtime_message,
        generation,
        now,
    );

    let (ready, reason, message) = if suspended {
        (false, "Suspended", "tenant is suspended".to_owned())
    } else if runtime_ready {
        (true, "Ready", "voice stack is ready".to_owned())
    } else {
        (
            false,
            "RuntimeNotReady",
            "waiting for the runtime to become available".to_owned(),
        )
    };
    set_condition(
        conditions,
        CONDITION_READY,
        ready.into(),
        reason,
        message,
        generation,
        now,
    );
    status
}

/// An invalid spec is a status, not a crash loop: `Ready=False, reason=InvalidSpec`, an Event,
/// and no requeue until the Tenant changes.
async fn report_invalid(
    tenant: &Tenant,
    ctx: &Context,
    invalid: &InvalidTenant,
    now: Timestamp,
) -> Result<Action, Error> {
    let generation = tenant.metadata.generation;
    let mut status = tenant.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    set_condition(
        &mut status.conditions,
        CONDITION_READY,
        ConditionStatus::False,
        "InvalidSpec",
        invalid.to_string(),
        generation,
        now,
    );
    ctx.metrics
        .observe_tenant(&tenant.name_any(), condition_map(&status));
    write_status(ctx, tenant, status, transition_events).await?;
    Ok(Action::await_change())
}

fn condition_map(status: &TenantStatus) -> BTreeMap<String, String> {
    status
        .conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

/// Events for condition changes worth telling a human about.
fn transition_events(previous: &TenantStatus, current: &TenantStatus) -> Vec<Event> {
    let mut events = Vec::new();
    for condition in &current.conditions {
        let before = previous
            .conditions
            .iter()
            .find(|c| c.type_ == condition.type_);
        let changed =
            before.is_none_or(|b| b.status != condition.status || b.reason != condition.reason);
        let interesting =
            condition.type_ == CONDITION_READY || condition.type_ == CONDITION_SUSPENDED;
        if !changed
            || !interesting
            || (before.is_none()
                && condition.status == "False"
                && condition.type_ == CONDITION_SUSPENDED)
        {
            continue;
        }
        let warning = condition.type_ == CONDITION_READY
            && condition.status != "True"
            && condition.reason == "InvalidSpec";
        events.push(Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: condition.reason.clone(),
            note: Some(condition.message.clone()),
            action: format!("Set{}", condition.type_),
            secondary: None,
        });
    }
    events
}

/// Deletes the tenant's PhoneNumbers and waits until they are gone (each releases its number
/// behind its own finalizer, using credentials that still exist because the namespace does).
async fn cleanup(tenant: Arc<Tenant>, ctx: &Context) -> Result<Action, Error> {
    let name = tenant_name(&tenant);
    let namespace = ctx.config.tenant_namespace(&name);
    let numbers: Api<PhoneNumber> = Api::namespaced(ctx.client.clone(), &namespace);
    let remaining = numbers.list(&ListParams::default()).await?.items;
    if remaining.is_empty() {
        ctx.metrics.forget_tenant(&name);
        publish(
            ctx,
            tenant.as_ref(),
            Event {
                type_: EventType::Normal,
                reason: "Deleted".into(),
                note: Some("phone numbers released; namespace will be garbage-collected".into()),
                action: "Delete".into(),
                secondary: None,
            },
        )
        .await;
        return Ok(Action::await_change());
    }
    for number in remaining
        .iter()
        .filter(|n| n.meta().deletion_timestamp.is_none())
    {
        match numbers
            .delete(&number.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::Waiting(format!(
        "{} phone number(s) of tenant {name} to be released",
        remaining.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_crds::conditions::find_condition;

    fn tenant(suspended: bool) -> Tenant {
        let mut t = Tenant::new(
            "acme",
            serde_json::from_value(
                serde_json::json!({"displayName": "Acme", "suspended": suspended}),
            )
            .unwrap(),
        );
        t.metadata.generation = Some(3);
        t
    }

    fn observed(available: i32) -> Observed {
        Observed {
            desired_replicas: 1,
            available_replicas: available,
            rollout_observed: true,
            ready_numbers: 2,
            campaigns: 1,
        }
    }

    #[test]
    fn ready_once_the_runtime_is_available() {
        let now = Timestamp::from_second(1_000).unwrap();
        let rolling = desired_status(&tenant(false), "tenant-acme", &observed(0), now);
        assert_eq!(
            find_condition(&rolling.conditions, CONDITION_READY)
                .unwrap()
                .reason,
            "RuntimeNotReady"
        );
        assert!(is_condition_true(
            &rolling.conditions,
            CONDITION_NAMESPACE_READY
        ));

        let ready = desired_status(&tenant(false), "tenant-acme", &observed(1), now);
        assert!(is_condition_true(&ready.conditions, CONDITION_READY));
        assert!(is_condition_true(
            &ready.conditions,
            CONDITION_RUNTIME_READY
        ));
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(ready.phone_numbers, 2);
        assert_eq!(
            ready.runtime_endpoint.as_deref(),
            Some("http://voice-runtime.tenant-acme.svc.cluster.local:8080")
        );
    }

    #[test]
    fn suspended_tenants_say_so() {
        let now = Timestamp::from_second(1_000).unwrap();
        let mut obs = observed(0);
        obs.desired_replicas = 0;
        let status = desired_status(&tenant(true), "tenant-acme", &obs, now);
        assert!(is_condition_true(&status.conditions, CONDITION_SUSPENDED));
        assert_eq!(
            find_condition(&status.conditions, CONDITION_READY)
                .unwrap()
                .reason,
            "Suspended"
        );
        assert!(!is_condition_true(
            &status.conditions,
            CONDITION_RUNTIME_READY
        ));
    }

    #[test]
    fn unchanged_inputs_give_an_identical_status() {
        let mut t = tenant(false);
        let first = desired_status(
            &t,
            "tenant-acme",
            &observed(1),
            Timestamp::from_second(1_000).unwrap(),
        );
        t.status = Some(first.clone());
        let second = desired_status(
            &t,
            "tenant-acme",
            &observed(1),
            Timestamp::from_second(9_000).unwrap(),
        );
        assert_eq!(first, second);
        assert!(transition_events(&first, &second).is_empty());
    }
}
