//! The Tenant controller: a Tenant becomes an isolated voice stack in its own namespace.
//!
//! Each reconcile server-side-applies the whole desired stack (idempotent, and it repairs hand
//! edits and deletions), reads back the runtime's availability, and writes status only when it
//! changed. Deleting a Tenant first deletes its PhoneNumbers (which release their numbers at the
//! carrier) while the tenant's credentials still exist; only then is the finalizer removed and
//! the namespace garbage-collected.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use switchboard_crds::conditions::is_condition_true;
use switchboard_crds::tenant::{
    CONDITION_NAMESPACE_READY, CONDITION_READY, CONDITION_RUNTIME_READY, CONDITION_SUSPENDED,
};
use switchboard_crds::{
    Campaign, ConditionStatus, PhoneNumber, Tenant, TenantStatus, set_condition,
};

use super::apply::{
    add_finalizer, apply_cluster, apply_cluster_status, apply_namespaced, delete_if_present,
    remove_finalizer,
};
use super::{Context, Error};
use crate::builders::labels::{FIELD_MANAGER, RUNTIME_NAME, tenant_name};
use crate::builders::runtime::{desired_replicas, runtime_endpoint};
use crate::builders::{InvalidTenant, TenantStack, desired_stack};

/// Finalizer that holds a Tenant until its numbers are released.
pub const FINALIZER: &str = "voice.switchboard.dev/release-numbers";
const CONTROLLER: &str = "tenant";
/// Requeue while the runtime is still rolling out.
const REQUEUE_NOT_READY: Duration = Duration::from_secs(30);
/// Periodic resync: drift in objects we do not watch is corrected at least this often.
const REQUEUE_READY: Duration = Duration::from_secs(300);

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
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let prefix = ctx.config.namespace_prefix.clone();
    let managed =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}"));
    Controller::new(
        Api::<Tenant>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Deployment>::all(client.clone()), managed.clone())
    .owns(Api::<Namespace>::all(client.clone()), managed)
    // A number becoming Ready (or going) changes the Tenant's status count.
    .watches(
        Api::<PhoneNumber>::all(client.clone()),
        watcher::Config::default(),
        move |number| {
            number.namespace().and_then(|ns| {
                ns.strip_prefix(prefix.as_str())
                    .map(ObjectRef::<Tenant>::new)
            })
        },
    )
    .graceful_shutdown_on(shutdown)
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        match result {
            Ok((object, _)) => tracing::debug!(tenant = %object.name, "reconciled"),
            Err(error) => tracing::debug!(%error, "reconcile did not complete"),
        }
    })
    .await;
}

/// Reconciles one Tenant (entry point for the controller and for tests).
pub async fn reconcile(tenant: Arc<Tenant>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(CONTROLLER);
    let name = tenant.name_any();
    let result = if tenant.meta().deletion_timestamp.is_some() {
        cleanup_then_release(&tenant, &ctx).await
    } else if !tenant.finalizers().iter().any(|f| f == FINALIZER) {
        // The watch event for this write triggers the next reconcile.
        add_finalizer(
            &Api::<Tenant>::all(ctx.client.clone()),
            tenant.as_ref(),
            FINALIZER,
        )
        .await
        .map(|()| Action::await_change())
    } else {
        apply(&tenant, &ctx).await
    };
    if result.is_ok() {
        ctx.reset_backoff(&name);
    }
    result
}

async fn cleanup_then_release(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    if !tenant.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let action = cleanup(tenant, ctx).await?;
    remove_finalizer(&Api::<Tenant>::all(ctx.client.clone()), tenant, FINALIZER).await?;
    Ok(action)
}

/// Requeues a failed reconcile with per-object backoff.
pub fn error_policy(tenant: Arc<Tenant>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(CONTROLLER, error.kind());
    if !matches!(error, Error::Waiting(_)) {
        tracing::warn!(tenant = %tenant.name_any(), %error, "reconcile failed");
    }
    ctx.backoff_after_failure(&tenant.name_any(), error)
}

async fn apply(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let stack = match desired_stack(tenant, &ctx.config) {
        Ok(stack) => stack,
        Err(invalid) => return report_invalid(tenant, ctx, &invalid, now).await,
    };
    let observed = apply_stack(&stack, tenant, ctx).await?;
    let namespace = ctx.config.tenant_namespace(&tenant_name(tenant));
    let status = desired_status(tenant, &namespace, &observed, now);
    write_status(tenant, ctx, status.clone()).await?;
    Ok(
        if is_condition_true(&status.conditions, CONDITION_READY) || tenant.spec.suspended {
            Action::requeue(REQUEUE_READY)
        } else {
            Action::requeue(REQUEUE_NOT_READY)
        },
    )
}

/// Applies every object of the stack, namespace first, and reads back what the cluster reports.
async fn apply_stack(
    stack: &TenantStack,
    tenant: &Tenant,
    ctx: &Context,
) -> Result<Observed, Error> {
    let client = &ctx.client;
    apply_cluster(client, &stack.namespace).await?;
    apply_namespaced(client, &stack.resource_quota).await?;
    apply_namespaced(client, &stack.limit_range).await?;
    for policy in &stack.network_policies {
        apply_namespaced(client, policy).await?;
    }
    apply_namespaced::<ServiceAccount>(client, &stack.service_account).await?;
    apply_namespaced::<ConfigMap>(client, &stack.agent_config).await?;
    let deployment = apply_namespaced(client, &stack.deployment).await?;
    apply_namespaced(client, &stack.service).await?;
    let namespace = stack.namespace.name_any();
    match &stack.pod_disruption_budget {
        Some(pdb) => {
            apply_namespaced(client, pdb).await?;
        }
        None => delete_if_present::<PodDisruptionBudget>(client, &namespace, RUNTIME_NAME).await?,
    }
    let (ready_numbers, campaigns) = count_tenant_objects(ctx, &namespace).await?;
    Ok(observe_deployment(
        &deployment,
        desired_replicas(tenant),
        ready_numbers,
        campaigns,
    ))
}

fn observe_deployment(
    deployment: &Deployment,
    desired: i32,
    ready_numbers: i32,
    campaigns: i32,
) -> Observed {
    let status = deployment.status.clone().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or_default();
    Observed {
        desired_replicas: desired,
        available_replicas: status.available_replicas.unwrap_or(0),
        rollout_observed: status.observed_generation.unwrap_or(0) >= generation,
        ready_numbers,
        campaigns,
    }
}

async fn count_tenant_objects(ctx: &Context, namespace: &str) -> Result<(i32, i32), Error> {
    let numbers = Api::<PhoneNumber>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    let ready = numbers
        .items
        .iter()
        .filter(|n| {
            n.status.as_ref().is_some_and(|s| {
                is_condition_true(
                    &s.conditions,
                    switchboard_crds::phone_number::CONDITION_READY,
                )
            })
        })
        .count();
    let campaigns = Api::<Campaign>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items
        .len();
    Ok((saturating_i32(ready), saturating_i32(campaigns)))
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
    write_status(tenant, ctx, status).await?;
    Ok(Action::await_change())
}

/// Writes the status if it differs from the stored one, publishing Events on transitions.
async fn write_status(tenant: &Tenant, ctx: &Context, status: TenantStatus) -> Result<(), Error> {
    let name = tenant.name_any();
    ctx.metrics.observe_tenant(&name, condition_map(&status));
    let previous = tenant.status.clone().unwrap_or_default();
    if previous == status {
        return Ok(());
    }
    apply_cluster_status::<Tenant, _>(&ctx.client, &name, &status).await?;
    for event in transition_events(&previous, &status) {
        publish(ctx, tenant, event).await;
    }
    Ok(())
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

async fn publish(ctx: &Context, tenant: &Tenant, event: Event) {
    // Events are best-effort: failing to record one must not fail the reconcile.
    if let Err(error) = ctx.recorder.publish(&event, &tenant.object_ref(&())).await {
        tracing::debug!(%error, "cannot publish event");
    }
}

/// Deletes the tenant's PhoneNumbers and waits until they are gone (each releases its number
/// behind its own finalizer, using credentials that still exist because the namespace does).
async fn cleanup(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let name = tenant_name(tenant);
    let namespace = ctx.config.tenant_namespace(&name);
    let numbers: Api<PhoneNumber> = Api::namespaced(ctx.client.clone(), &namespace);
    let remaining = numbers.list(&ListParams::default()).await?.items;
    if remaining.is_empty() {
        ctx.metrics.forget_tenant(&name);
        publish(
            ctx,
            tenant,
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
