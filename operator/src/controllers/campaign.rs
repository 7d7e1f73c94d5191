//! The Campaign controller: validates a Campaign against its tenant, number, schedule, pacing
//! and contacts, registers it with the gateway's internal API (which owns the dialer and the
//! per-contact state) and mirrors the dialer's progress into the status.
//!
//! * Registration is idempotent per uid + generation, so the operator PUTs only when the
//!   stored status does not already say this generation is registered (or the gateway lost it).
//! * Entering an invalid state (tenant suspended, plan downgraded, number gone, a bad edit)
//!   stops dialing at the gateway: what the status says is what runs.
//! * A finalizer holds a deleted Campaign until the gateway has stopped dialing it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::predicates;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use switchboard_crds::campaign::{CONDITION_READY, CONDITION_VALID, ContactsSource};
use switchboard_crds::naming::{tenant_namespace, tenant_of_namespace};
use switchboard_crds::{Campaign, CampaignPhase, CampaignStatus, PhoneNumber, Tenant};

use super::cache::spec_hash;
use super::lifecycle::{self, Reconciled, error_policy, publish, reconcile_with};
use super::watch::{hash_of, reconciled, spec_and_lifecycle, watched};
use super::{Context, Error};
use crate::builders::campaign::{
    ContactsFacts, Invalid, NumberFacts, Observed, SCRIPTS_FIELD_MANAGER, TenantFacts, Validated,
    campaign_scripts, config_map_contacts, contacts_digest, gateway_problem_status, invalid_status,
    is_registered, registered_status, secret_contacts, validate, was_invalid,
};
use crate::builders::runtime::AGENT_CONFIG_MAP;
use crate::gateway_client::{
    GatewayClient, GatewayError, Progress, Registration, RegistrationResult,
};

/// Finalizer that holds a Campaign until the gateway has stopped dialing it.
pub const FINALIZER: &str = "voice.switchboard.dev/stop-dialing";
/// Mirror progress this often while calls are being placed.
const REQUEUE_RUNNING: Duration = Duration::from_secs(15);
/// A registered campaign waiting for its window: notice soon when dialing starts.
const REQUEUE_PENDING: Duration = Duration::from_secs(60);
/// Invalid but expected to heal by itself (a number being bought, a ConfigMap on its way).
const REQUEUE_WAITING: Duration = Duration::from_secs(30);
/// Paused, finished, failed or invalid: a periodic resync is enough (watches cover changes).
const REQUEUE_IDLE: Duration = Duration::from_secs(300);

/// Runs the Campaign controller until `shutdown` resolves.
///
/// Besides Campaigns it watches PhoneNumbers and Tenants, so a number becoming Ready (or going)
/// or a tenant being suspended reconciles the campaigns that depend on it at once. Each wakes
/// the controller only when what validation reads of it changes; a Campaign itself only on
/// spec, deletion and finalizer changes, not on the progress the operator mirrors into it.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (store, campaigns) = reconciled(Api::<Campaign>::all(client.clone()), spec_and_lifecycle);
    let prefix = ctx.config.namespace_prefix.clone();
    Controller::for_stream(campaigns, store.clone())
        .with_config(ctx.settings.config(ctx.settings.campaign_concurrency))
        .watches_stream(
            watched(
                Api::<PhoneNumber>::all(client.clone()),
                |n: &PhoneNumber| {
                    let facts = NumberFacts::of(n);
                    Some(hash_of(&(
                        facts.ready,
                        facts.e164,
                        n.metadata.deletion_timestamp.is_some(),
                    )))
                },
            ),
            campaigns_calling_from(store.clone()),
        )
        .watches_stream(
            watched(Api::<Tenant>::all(client), predicates::generation),
            campaigns_of_tenant(store, prefix),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(campaign = %object, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile did not complete"),
            }
        })
        .await;
}

fn campaigns_calling_from(
    store: Store<Campaign>,
) -> impl Fn(PhoneNumber) -> Vec<ObjectRef<Campaign>> + Send + Sync + 'static {
    move |number| {
        let namespace = number.namespace();
        let name = number.name_any();
        store
            .state()
            .iter()
            .filter(|c| c.namespace() == namespace && c.spec.from_number == name)
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect()
    }
}

fn campaigns_of_tenant(
    store: Store<Campaign>,
    prefix: String,
) -> impl Fn(Tenant) -> Vec<ObjectRef<Campaign>> + Send + Sync + 'static {
    move |tenant| {
        let namespace = tenant_namespace(&prefix, &tenant.name_any());
        store
            .state()
            .iter()
            .filter(|c| c.namespace().as_deref() == Some(namespace.as_str()))
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect()
    }
}

impl Reconciled for Campaign {
    const CONTROLLER: &'static str = "campaign";
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self, client: &Client) -> Api<Self> {
        Api::namespaced(client.clone(), &self.namespace().unwrap_or_default())
    }

    /// Only an operator that can reach the gateway holds Campaigns back on deletion; without
    /// a token nothing was registered, so nothing needs stopping.
    fn needs_finalizer(&self, ctx: &Context) -> bool {
        ctx.gateway().is_ok()
    }
}

/// Reconciles one Campaign (entry point for the controller and for tests).
pub async fn reconcile(campaign: Arc<Campaign>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ctx = ctx.as_ref();
    reconcile_with(
        campaign,
        ctx,
        |campaign| async move { converge(&campaign, ctx).await },
        |campaign| async move { stop_dialing(&campaign, ctx).await },
    )
    .await
}

async fn converge(campaign: &Campaign, ctx: &Context) -> Result<Action, Error> {
    let now = Timestamp::now();
    let namespace = campaign
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let observed = observe(campaign, &namespace, ctx).await?;
    match validate(&campaign.spec, &observed) {
        Err(invalid) => report_invalid(campaign, ctx, &invalid, now).await,
        Ok(validated) => register_and_mirror(campaign, ctx, &namespace, &validated, now).await,
    }
}

/// Reads the owning Tenant, the from-number and the contacts.
async fn observe(campaign: &Campaign, namespace: &str, ctx: &Context) -> Result<Observed, Error> {
    let client = &ctx.client;
    let tenant = match tenant_of_namespace(&ctx.config.namespace_prefix, namespace) {
        Some(name) => Api::<Tenant>::all(client.clone())
            .get_opt(name)
            .await?
            .map(|t| TenantFacts::of(&t, &ctx.config.plan_limits)),
        None => None,
    };
    // A number being deleted is about to be released: campaigns must not dial from it.
    let number = Api::<PhoneNumber>::namespaced(client.clone(), namespace)
        .get_opt(&campaign.spec.from_number)
        .await?
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .map(|n| NumberFacts::of(&n));
    let contacts = read_contacts(&campaign.spec.contacts, namespace, ctx).await?;
    Ok(Observed {
        tenant,
        number,
        contacts,
    })
}

async fn read_contacts(
    source: &ContactsSource,
    namespace: &str,
    ctx: &Context,
) -> Result<ContactsFacts, Error> {
    if let Some(reference) = &source.config_map_ref {
        let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace);
        return Ok(match api.get_opt(&reference.name).await? {
            Some(config_map) => config_map_contacts(&config_map, reference),
            None => ContactsFacts::Missing(format!("ConfigMap {} not found", reference.name)),
        });
    }
    if let Some(reference) = &source.secret_ref {
        let api = Api::<Secret>::namespaced(ctx.client.clone(), namespace);
        return Ok(match api.get_opt(&reference.name).await? {
            Some(secret) => secret_contacts(&secret, reference),
            None => ContactsFacts::Missing(format!("Secret {} not found", reference.name)),
        });
    }
    Ok(if source.uploaded {
        ContactsFacts::Uploaded
    } else {
        ContactsFacts::Missing(
            "spec.contacts names no source: set configMapRef, secretRef or uploaded".into(),
        )
    })
}

/// An invalid campaign does not dial. On entering the invalid state the gateway is told to
/// stop (idempotent, so a never-registered campaign costs one no-op call); the status then
/// says why, and the last known counts stay.
async fn report_invalid(
    campaign: &Campaign,
    ctx: &Context,
    invalid: &Invalid,
    now: Timestamp,
) -> Result<Action, Error> {
    if !was_invalid(campaign) {
        stop_at_gateway(campaign, ctx).await?;
    }
    write_status(campaign, ctx, invalid_status(campaign, invalid, now)).await?;
    Ok(Action::requeue(
        if invalid.reason.phase() == CampaignPhase::Pending {
            REQUEUE_WAITING
        } else {
            REQUEUE_IDLE
        },
    ))
}

/// Tells the gateway to stop dialing. Skipped when nothing can have been registered: the
/// namespace is no tenant's, or this operator has no gateway token.
async fn stop_at_gateway(campaign: &Campaign, ctx: &Context) -> Result<(), Error> {
    let namespace = campaign.namespace().unwrap_or_default();
    let Some(tenant) = tenant_of_namespace(&ctx.config.namespace_prefix, &namespace) else {
        return Ok(());
    };
    let Ok(gateway) = ctx.gateway() else {
        tracing::debug!(campaign = %campaign.name_any(), "no gateway configured: nothing to stop");
        return Ok(());
    };
    gateway.stop(tenant, &campaign.name_any()).await?;
    Ok(())
}

async fn register_and_mirror(
    campaign: &Campaign,
    ctx: &Context,
    namespace: &str,
    validated: &Validated,
    now: Timestamp,
) -> Result<Action, Error> {
    let gateway = match ctx.gateway() {
        Ok(gateway) => gateway,
        Err(error) => return report_gateway_problem(campaign, ctx, error, now).await,
    };
    publish_scripts(ctx, namespace).await?;
    match sync_with_gateway(gateway, campaign, namespace, validated).await {
        Ok((progress, registration)) => {
            if let Some(result) = &registration {
                report_rejected_rows(ctx, campaign, result).await;
            }
            let digest = contacts_digest(validated.contacts_csv.as_deref());
            let status = registered_status(
                campaign,
                &progress,
                registration.as_ref(),
                digest.as_deref(),
                now,
            );
            write_status(campaign, ctx, status).await?;
            Ok(Action::requeue(requeue_for(progress.phase)))
        }
        Err(SyncError::Gateway(error)) => report_gateway_problem(campaign, ctx, error, now).await,
        Err(SyncError::Other(error)) => Err(error),
    }
}

enum SyncError {
    Gateway(GatewayError),
    Other(Error),
}

impl From<GatewayError> for SyncError {
    fn from(error: GatewayError) -> Self {
        SyncError::Gateway(error)
    }
}

/// Registers this generation unless the gateway already has it, then reads the progress.
/// Returns the registration result when a PUT was made.
async fn sync_with_gateway(
    gateway: &GatewayClient,
    campaign: &Campaign,
    namespace: &str,
    validated: &Validated,
) -> Result<(Progress, Option<RegistrationResult>), SyncError> {
    let name = campaign.name_any();
    let tenant = validated.tenant.as_str();
    let mut registration = None;
    if !is_registered(
        campaign,
        contacts_digest(validated.contacts_csv.as_deref()).as_deref(),
    ) {
        let body = registration_body(campaign, namespace, validated).map_err(SyncError::Other)?;
        registration = Some(gateway.register(tenant, &name, &body).await?);
    }
    if let Some(progress) = gateway.progress(tenant, &name).await? {
        return Ok((progress, registration));
    }
    if registration.is_some() {
        // Just registered and not yet visible: the dialer has not picked it up.
        return Ok((Progress::default(), registration));
    }
    // The status says registered but the gateway does not know it (e.g. its database was
    // restored): register again.
    let body = registration_body(campaign, namespace, validated).map_err(SyncError::Other)?;
    let result = gateway.register(tenant, &name, &body).await?;
    let progress = gateway.progress(tenant, &name).await?.unwrap_or_default();
    Ok((progress, Some(result)))
}

fn registration_body(
    campaign: &Campaign,
    namespace: &str,
    validated: &Validated,
) -> Result<Registration, Error> {
    Ok(Registration {
        namespace: namespace.to_owned(),
        uid: campaign
            .metadata
            .uid
            .clone()
            .ok_or(Error::MissingField("metadata.uid"))?,
        generation: campaign
            .metadata
            .generation
            .ok_or(Error::MissingField("metadata.generation"))?,
        spec: campaign.spec.clone(),
        from_number: validated.from_number.clone(),
        contacts_csv: validated.contacts_csv.clone(),
    })
}

fn requeue_for(phase: CampaignPhase) -> Duration {
    match phase {
        CampaignPhase::Running => REQUEUE_RUNNING,
        CampaignPhase::Pending => REQUEUE_PENDING,
        CampaignPhase::Paused | CampaignPhase::Completed | CampaignPhase::Failed => REQUEUE_IDLE,
    }
}

/// A refused campaign waits for an edit (re-checked now and then); an unreachable or
/// misconfigured gateway is retried with backoff. Either way the status says so.
async fn report_gateway_problem(
    campaign: &Campaign,
    ctx: &Context,
    error: GatewayError,
    now: Timestamp,
) -> Result<Action, Error> {
    let reason = if error.is_rejection() {
        "GatewayRejected"
    } else {
        "GatewayUnavailable"
    };
    let status = gateway_problem_status(campaign, reason, &error.to_string(), now);
    write_status(campaign, ctx, status).await?;
    if error.is_rejection() {
        Ok(Action::requeue(REQUEUE_IDLE))
    } else {
        Err(error.into())
    }
}

async fn report_rejected_rows(ctx: &Context, campaign: &Campaign, result: &RegistrationResult) {
    if result.rejected.is_empty() {
        return;
    }
    publish(
        ctx,
        campaign,
        Event {
            type_: EventType::Warning,
            reason: "ContactsRejected".into(),
            note: Some(crate::builders::campaign::registration_message(result)),
            action: "Register".into(),
            secondary: None,
        },
    )
    .await;
}

/// Deleting a Campaign stops dialing at the gateway before the object goes (the finalizer
/// step removes the finalizer once this succeeded).
async fn stop_dialing(campaign: &Campaign, ctx: &Context) -> Result<Action, Error> {
    let namespace = campaign.namespace().unwrap_or_default();
    if let Some(tenant) = tenant_of_namespace(&ctx.config.namespace_prefix, &namespace) {
        // Unlike an invalid campaign, a deleted one must not go while the gateway may still
        // be dialing it: without a token the finalizer stays and the error says why.
        ctx.gateway()?.stop(tenant, &campaign.name_any()).await?;
    }
    publish_scripts(ctx, &namespace).await?;
    publish(
        ctx,
        campaign,
        Event {
            type_: EventType::Normal,
            reason: "Stopped".into(),
            note: Some("dialing stopped at the gateway; the campaign can go".into()),
            action: "Delete".into(),
            secondary: None,
        },
    )
    .await;
    Ok(Action::await_change())
}

/// Writes the namespace's campaign scripts into the agent ConfigMap the runtime mounts, so
/// answered campaign calls run the campaign's greeting and questions. Applied only when the
/// scripts differ from what this operator last applied to the namespace (after a restart, the
/// first reconcile per namespace applies them once).
async fn publish_scripts(ctx: &Context, namespace: &str) -> Result<(), Error> {
    let campaigns = Api::<Campaign>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let scripts = campaign_scripts(namespace, &campaigns)?;
    let hash = spec_hash(&scripts);
    let published = |ctx: &Context| {
        ctx.published_scripts
            .lock()
            .is_ok_and(|p| p.get(namespace) == Some(&hash))
    };
    if published(ctx) {
        return Ok(());
    }
    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .patch(
            AGENT_CONFIG_MAP,
            &PatchParams::apply(SCRIPTS_FIELD_MANAGER).force(),
            &Patch::Apply(&scripts),
        )
        .await?;
    if let Ok(mut published) = ctx.published_scripts.lock() {
        published.insert(namespace.to_owned(), hash);
    }
    Ok(())
}

/// Writes the status if it differs from the stored one, publishing Events on transitions.
async fn write_status(
    campaign: &Campaign,
    ctx: &Context,
    status: CampaignStatus,
) -> Result<(), Error> {
    lifecycle::write_status(ctx, campaign, status, transition_events).await?;
    Ok(())
}

/// Events for a human: validity and readiness changes, and phase changes.
pub fn transition_events(previous: &CampaignStatus, current: &CampaignStatus) -> Vec<Event> {
    let mut events = Vec::new();
    for condition in &current.conditions {
        let before = previous
            .conditions
            .iter()
            .find(|c| c.type_ == condition.type_);
        let changed =
            before.is_none_or(|b| b.status != condition.status || b.reason != condition.reason);
        // Ready=False because of validation repeats the Valid event; skip it.
        let redundant = condition.type_ == CONDITION_READY && condition.reason == "Invalid";
        let interesting = condition.type_ == CONDITION_VALID || condition.type_ == CONDITION_READY;
        if !changed || redundant || !interesting {
            continue;
        }
        events.push(Event {
            type_: if condition.status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: condition.reason.clone(),
            note: Some(condition.message.clone()),
            action: format!("Set{}", condition.type_),
            secondary: None,
        });
    }
    if previous.phase != current.phase {
        events.push(Event {
            type_: if current.phase == CampaignPhase::Failed {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: format!("{:?}", current.phase),
            note: Some(format!(
                "phase {:?} → {:?} ({} of {} contacts finished)",
                previous.phase,
                current.phase,
                current.completed + current.failed + current.no_answer,
                current.total
            )),
            action: "UpdatePhase".into(),
            secondary: None,
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_crds::ConditionStatus;
    use switchboard_crds::set_condition;

    #[test]
    fn running_campaigns_are_watched_closely() {
        assert_eq!(requeue_for(CampaignPhase::Running), REQUEUE_RUNNING);
        assert!(requeue_for(CampaignPhase::Completed) > requeue_for(CampaignPhase::Pending));
    }

    #[test]
    fn events_follow_transitions_only() {
        let now = Timestamp::from_second(1_000).unwrap();
        let mut before = CampaignStatus::default();
        set_condition(
            &mut before.conditions,
            CONDITION_VALID,
            ConditionStatus::True,
            "Valid",
            "ok",
            Some(1),
            now,
        );
        let mut after = before.clone();
        assert!(transition_events(&before, &after).is_empty());
        after.phase = CampaignPhase::Running;
        after.total = 4;
        after.completed = 1;
        set_condition(
            &mut after.conditions,
            CONDITION_VALID,
            ConditionStatus::False,
            "TenantSuspended",
            "suspended",
            Some(1),
            now,
        );
        set_condition(
            &mut after.conditions,
            CONDITION_READY,
            ConditionStatus::False,
            "Invalid",
            "not dialing",
            Some(1),
            now,
        );
        let events = transition_events(&before, &after);
        let reasons: Vec<_> = events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, vec!["TenantSuspended", "Running"]);
        assert_eq!(events[0].type_, EventType::Warning);
        assert!(events[1].note.as_deref().unwrap().contains("1 of 4"));
    }
}
