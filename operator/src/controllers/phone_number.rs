//! The PhoneNumber controller: a PhoneNumber becomes a number owned at the tenant's carrier
//! whose voice webhooks point at the gateway — a Crossplane-style managed resource.
//!
//! * **Observe**: a number with the external-name annotation is looked up at the carrier;
//!   drifted webhooks are put back.
//! * **Create**, guarded against leaked purchases: the idempotency key is written on the
//!   object together with `external-create-pending` *before* the carrier is called, and the
//!   purchase is tagged with that key at the carrier (Twilio `FriendlyName`, Telnyx
//!   `customer_reference`). Every create attempt first asks the carrier for a number tagged
//!   with the key, so an operator that died between the carrier's "bought" and our write
//!   adopts that number on the next reconcile instead of buying a second one. A `spec.number`
//!   the account already owns is imported rather than bought.
//! * **Limits**: the tenant's plan (`Tenant.spec.effective_limits(..).phone_numbers`) is checked
//!   under a per-namespace lock before anything is bought: `Ready=False, LimitExceeded`.
//! * **Delete**: behind a finalizer, `deletionPolicy: Release` gives the number back (also a
//!   purchase that was never recorded, found by its tag); `Retain` keeps it on the account.
//!
//! Carrier failures are conditions (`Ready`/`Synced` = False with the error's reason), not
//! crash loops; they requeue after the carrier's `Retry-After` or a delay fitting the kind.

pub mod carriers;
pub mod desired;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::predicates;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use switchboard_carriers::{
    AnyCarrier, Carrier, CarrierError, OwnedNumber, PurchaseRequest, WebhookConfig,
    gateway_webhooks,
};
use switchboard_crds::phone_number::{CONDITION_READY, CONDITION_SYNCED};
use switchboard_crds::{
    CarrierKind, DeletionPolicy, EXTERNAL_NAME_ANNOTATION, PhoneNumber, PhoneNumberStatus, Tenant,
};

pub use carriers::{Carriers, CredentialsError, TelnyxAccount, TwilioAccount};
use desired::{
    CREATE_FAILED_ANNOTATION, CREATE_PENDING_ANNOTATION, CREATE_SUCCEEDED_ANNOTATION,
    IDEMPOTENCY_KEY_ANNOTATION, carrier_kind, credentials_secret, external_name, idempotency_key,
    limit_reached, not_ready_status, number_query, numbers_held_by_others, ready_status, reason,
    sandbox_record, sync_failed_status, unrouted_status,
};

use super::lifecycle::{self, Reconciled, error_policy, reconcile_with};
use super::watch::{hash_of, reconciled, spec_and_lifecycle, watched};
use super::{Context, Error};
use crate::builders::runtime::{AGENT_CONFIG_MAP, NUMBERS_FIELD_MANAGER, number_agents};
use crate::gateway_client::{GatewayError, NumberRoute};

/// Finalizer that holds a PhoneNumber until its number is released (or retained).
pub const FINALIZER: &str = "voice.switchboard.dev/release-number";
/// Periodic observe of a Ready number (drifted webhooks, numbers released out of band).
const REQUEUE_READY: Duration = Duration::from_secs(600);
/// Retry while the Tenant is missing or its credentials are incomplete (Secrets are not watched).
const REQUEUE_MISCONFIGURED: Duration = Duration::from_secs(120);
/// Retry while the plan's limit is reached (another number may be deleted meanwhile).
const REQUEUE_LIMIT: Duration = Duration::from_secs(300);

/// What one create/observe pass ended in.
enum Outcome {
    /// The number is owned and routed; `action` is an Event worth publishing, if any.
    Ready {
        owned: OwnedNumber,
        action: Option<(&'static str, String)>,
    },
    /// The number is not usable (yet).
    NotReady {
        reason: &'static str,
        message: String,
        requeue: Duration,
    },
    /// The number is owned, but the carrier could not be checked or updated this time:
    /// `Synced=False` while `Ready` keeps its last known value (as in Crossplane), so a
    /// carrier hiccup does not take a working number out of service.
    SyncFailed {
        reason: &'static str,
        message: String,
        requeue: Duration,
    },
}

impl Outcome {
    fn carrier_failure(error: &CarrierError) -> Self {
        Outcome::NotReady {
            reason: error.reason(),
            message: error.to_string(),
            requeue: retry_delay(error),
        }
    }
}

/// How long to wait before retrying after `error`.
fn retry_delay(error: &CarrierError) -> Duration {
    match error {
        CarrierError::RateLimited {
            retry_after: Some(wait),
            ..
        } => (*wait).clamp(Duration::from_secs(1), Duration::from_secs(600)),
        CarrierError::RateLimited { .. } => Duration::from_secs(60),
        CarrierError::Transient { .. } => Duration::from_secs(15),
        CarrierError::BadCredentials { .. } => Duration::from_secs(300),
        CarrierError::NothingAvailable { .. } | CarrierError::Permanent { .. } => {
            Duration::from_secs(600)
        }
    }
}

/// Runs the PhoneNumber controller until `shutdown` resolves.
///
/// Tenants are watched too: a plan upgrade or new credentials (spec changes) re-reconcile the
/// tenant's numbers at once instead of at the next periodic retry. A number wakes its
/// controller on spec, deletion, finalizer and annotation changes (annotations carry the
/// external name and the purchase's progress), not on the operator's own status writes.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    match restore_sandbox(&ctx).await {
        Ok(0) => {}
        Ok(restored) => tracing::info!(restored, "sandbox numbers restored from PhoneNumbers"),
        Err(error) => tracing::warn!(%error, "cannot restore sandbox numbers"),
    }
    let client = ctx.client.clone();
    let (numbers, stream) = reconciled(
        Api::<PhoneNumber>::all(client.clone()),
        |n: &PhoneNumber| Some(hash_of(&(spec_and_lifecycle(n), n.annotations()))),
    );
    let config = ctx.config.clone();
    Controller::for_stream(stream, numbers.clone())
        .with_config(ctx.settings.config(ctx.settings.number_concurrency))
        .watches_stream(
            watched(Api::<Tenant>::all(client), predicates::generation),
            move |tenant: Tenant| {
                let namespace = config.tenant_namespace(&tenant.name_any());
                numbers
                    .state()
                    .into_iter()
                    .filter(|n| n.namespace().as_deref() == Some(namespace.as_str()))
                    .map(|n| ObjectRef::from_obj(&*n))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(number = %object, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile did not complete"),
            }
        })
        .await;
}

/// Puts the sandbox numbers recorded on PhoneNumbers back into the sandbox carrier.
///
/// The sandbox keeps its inventory in memory unless given a state file, so a restarted (or
/// newly elected) operator would otherwise find every sandbox number "gone". The objects are
/// the durable record; this runs before the controller starts so that observes and searches
/// see the whole inventory. Returns how many numbers were restored or already present.
pub async fn restore_sandbox(ctx: &Context) -> Result<usize, Error> {
    let numbers = Api::<PhoneNumber>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?;
    let mut restored = 0;
    for record in numbers.items.iter().filter_map(sandbox_record) {
        let e164 = record.e164.clone();
        match ctx.carriers.sandbox.restore(record) {
            Ok(()) => restored += 1,
            Err(error) => tracing::warn!(%e164, %error, "sandbox number not restored"),
        }
    }
    Ok(restored)
}

impl Reconciled for PhoneNumber {
    const CONTROLLER: &'static str = "phone-number";
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self, client: &Client) -> Api<Self> {
        Api::namespaced(client.clone(), &self.namespace().unwrap_or_default())
    }
}

/// Reconciles one PhoneNumber (entry point for the controller and for tests).
pub async fn reconcile(number: Arc<PhoneNumber>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_with(
        number,
        &ctx,
        |number| apply(number, &ctx),
        |number| cleanup(number, &ctx),
    )
    .await
}

/// The Tenant owning the number's namespace, if any.
async fn load_tenant(ctx: &Context, namespace: &str) -> Result<Option<Tenant>, Error> {
    let Some(name) =
        switchboard_crds::naming::tenant_of_namespace(&ctx.config.namespace_prefix, namespace)
    else {
        return Ok(None);
    };
    Ok(Api::<Tenant>::all(ctx.client.clone()).get_opt(name).await?)
}

/// The carrier client for `number`: the tenant's own account or the platform's.
async fn carrier_for(
    ctx: &Context,
    number: &PhoneNumber,
    tenant: Option<&Tenant>,
) -> Result<Result<AnyCarrier, CredentialsError>, Error> {
    let kind = carrier_kind(number, tenant);
    let Some(secret_name) = credentials_secret(tenant, kind) else {
        return Ok(ctx.carriers.client(kind, None));
    };
    let namespace = number.namespace().unwrap_or_default();
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(secret_name)
        .await?;
    Ok(ctx
        .carriers
        .client(kind, Some((secret_name, secret.as_ref()))))
}

async fn apply(number: Arc<PhoneNumber>, ctx: &Context) -> Result<Action, Error> {
    let number = number.as_ref();
    let namespace = number.namespace().unwrap_or_default();
    let key = idempotency_key(number);
    let Some(tenant) = load_tenant(ctx, &namespace).await? else {
        let message = format!("namespace {namespace} belongs to no Tenant");
        let status = not_ready_status(
            number,
            reason::TENANT_NOT_FOUND,
            &message,
            None,
            Timestamp::now(),
        );
        write_status(number, ctx, status, None).await?;
        return Ok(Action::requeue(REQUEUE_MISCONFIGURED));
    };
    let carrier = match carrier_for(ctx, number, Some(&tenant)).await? {
        Ok(carrier) => carrier,
        Err(error) => {
            let status = not_ready_status(
                number,
                reason::CREDENTIALS_MISSING,
                &error.to_string(),
                None,
                Timestamp::now(),
            );
            write_status(number, ctx, status, None).await?;
            return Ok(Action::requeue(REQUEUE_MISCONFIGURED));
        }
    };
    let kind = carrier.kind();
    let webhooks = gateway_webhooks(kind, &ctx.config.gateway_public_url);
    let outcome = match external_name(number) {
        Some(id) => observe(number, &carrier, id, &webhooks).await,
        None => match &key {
            Some(key) => create(number, ctx, &tenant, &carrier, &webhooks, key).await?,
            None => return Err(Error::MissingField("metadata.uid")),
        },
    };
    let now = Timestamp::now();
    match outcome {
        Outcome::Ready { owned, action } => {
            // Only a purchase actually tagged with the key reports it (not an import).
            let tagged = key.as_deref().filter(|k| owned.tag.as_deref() == Some(*k));
            let status = ready_status(number, kind, &owned, &webhooks.voice_url, tagged, now);
            // Ready only once the gateway routes the number: until then calls to it would be
            // refused as "not in service". A refusal is recorded with the gateway's reason
            // and retried with the controller's per-object backoff (the error below).
            match route_at_gateway(number, ctx, &tenant, kind, &owned.e164).await {
                Ok(()) => {
                    write_status(number, ctx, status, action).await?;
                    publish_number_agents(ctx, &namespace).await?;
                    Ok(Action::requeue(REQUEUE_READY))
                }
                Err(error) => {
                    let status = unrouted_status(status, &error, now);
                    write_status(number, ctx, status, action).await?;
                    Err(error.into())
                }
            }
        }
        Outcome::NotReady {
            reason,
            message,
            requeue,
        } => {
            let status = not_ready_status(number, reason, &message, key.as_deref(), now);
            write_status(number, ctx, status, None).await?;
            Ok(Action::requeue(requeue))
        }
        Outcome::SyncFailed {
            reason,
            message,
            requeue,
        } => {
            let status = sync_failed_status(number, reason, &message, now);
            write_status(number, ctx, status, None).await?;
            Ok(Action::requeue(requeue))
        }
    }
}

/// Observes a number recorded by external name, repairing drifted webhooks.
async fn observe(
    number: &PhoneNumber,
    carrier: &AnyCarrier,
    id: &str,
    webhooks: &WebhookConfig,
) -> Outcome {
    match carrier.get(id).await {
        Ok(Some(owned)) => {
            let recorded = number
                .status
                .as_ref()
                .and_then(|s| s.webhook_url.as_deref());
            match configure_if_needed(carrier, owned, webhooks, recorded).await {
                Outcome::NotReady {
                    reason,
                    message,
                    requeue,
                } => Outcome::SyncFailed {
                    reason,
                    message,
                    requeue,
                },
                outcome => outcome,
            }
        }
        Ok(None) => Outcome::NotReady {
            reason: reason::NOT_FOUND_AT_CARRIER,
            message: format!(
                "number {id} is not on the carrier account (released outside Switchboard?); \
                 delete this PhoneNumber, or remove its {EXTERNAL_NAME_ANNOTATION} annotation to buy another"
            ),
            requeue: REQUEUE_READY,
        },
        Err(error) => Outcome::SyncFailed {
            reason: error.reason(),
            message: error.to_string(),
            requeue: retry_delay(&error),
        },
    }
}

/// Points the number's webhooks at the gateway unless they already are. Carriers that keep
/// no per-number webhook (Telnyx) are configured once, when our status does not show it yet.
async fn configure_if_needed(
    carrier: &AnyCarrier,
    owned: OwnedNumber,
    webhooks: &WebhookConfig,
    recorded_webhook: Option<&str>,
) -> Outcome {
    let needed = match owned.voice_url {
        Some(_) => !owned.webhooks_match(webhooks),
        None => recorded_webhook != Some(webhooks.voice_url.as_str()),
    };
    if !needed {
        return Outcome::Ready {
            owned,
            action: None,
        };
    }
    match carrier.configure_webhooks(&owned.id, webhooks).await {
        Ok(configured) => Outcome::Ready {
            action: Some((
                "WebhooksConfigured",
                format!("{} now calls {}", configured.e164, webhooks.voice_url),
            )),
            owned: configured,
        },
        Err(error) => Outcome::carrier_failure(&error),
    }
}

/// Adopts, imports or buys the number. Records the key and `external-create-pending` before
/// the carrier is asked to buy.
async fn create(
    number: &PhoneNumber,
    ctx: &Context,
    tenant: &Tenant,
    carrier: &AnyCarrier,
    webhooks: &WebhookConfig,
    key: &str,
) -> Result<Outcome, Error> {
    // An earlier attempt may have bought the number and died before recording it.
    match carrier.find_by_tag(key).await {
        Ok(Some(owned)) => {
            return record_owned(number, ctx, carrier, owned, webhooks, key, "Adopted").await;
        }
        Ok(None) => {}
        Err(error) => return Ok(Outcome::carrier_failure(&error)),
    }
    if let Some(e164) = &number.spec.number {
        match carrier.find_by_e164(e164).await {
            Ok(Some(owned)) => {
                return record_owned(number, ctx, carrier, owned, webhooks, key, "Imported").await;
            }
            Ok(None) => {}
            Err(error) => return Ok(Outcome::carrier_failure(&error)),
        }
    }

    if let Some(blocked) = reserve_slot(number, ctx, tenant, key).await? {
        return Ok(blocked);
    }

    let e164 = match &number.spec.number {
        Some(e164) => e164.clone(),
        None => match carrier.search(&number_query(number)).await {
            Ok(found) => match found.into_iter().next() {
                Some(available) => available.e164,
                None => {
                    let error = CarrierError::NothingAvailable {
                        message: format!(
                            "no number in {} matching area code {:?} and the capabilities",
                            number.spec.country,
                            number.spec.area_code.as_deref().unwrap_or("any")
                        ),
                    };
                    mark_create_failed(number, ctx).await?;
                    return Ok(Outcome::carrier_failure(&error));
                }
            },
            Err(error) => {
                mark_create_failed(number, ctx).await?;
                return Ok(Outcome::carrier_failure(&error));
            }
        },
    };

    let request = PurchaseRequest {
        e164,
        tag: key.to_owned(),
        webhooks: webhooks.clone(),
    };
    match carrier.buy(&request).await {
        Ok(owned) => {
            patch_annotations(
                number,
                ctx,
                &[
                    (EXTERNAL_NAME_ANNOTATION, Some(owned.id.clone())),
                    (CREATE_SUCCEEDED_ANNOTATION, Some(now_rfc3339())),
                ],
            )
            .await?;
            let message = format!("bought {} ({})", owned.e164, owned.id);
            Ok(Outcome::Ready {
                owned,
                action: Some(("Purchased", message)),
            })
        }
        Err(error) => {
            // A transient failure (timeout, 5xx) may hide a purchase that went through:
            // stay pending so the next attempt looks for the tag first. A refusal bought
            // nothing, so the slot is given back.
            if !error.is_retryable() {
                mark_create_failed(number, ctx).await?;
            }
            Ok(Outcome::carrier_failure(&error))
        }
    }
}

/// Checks the plan's limit and, if a slot is free, takes it by recording the key and
/// `external-create-pending` on the object. Returns the blocking outcome when over the limit.
async fn reserve_slot(
    number: &PhoneNumber,
    ctx: &Context,
    tenant: &Tenant,
    key: &str,
) -> Result<Option<Outcome>, Error> {
    let namespace = number.namespace().unwrap_or_default();
    let lock = ctx.carriers.purchase_locks.for_namespace(&namespace);
    let _held = lock.lock().await;
    let others = Api::<PhoneNumber>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let limit = tenant
        .spec
        .effective_limits(&ctx.config.plan_limits)
        .phone_numbers;
    let held = numbers_held_by_others(&others, &number.name_any());
    if limit_reached(limit, held) {
        return Ok(Some(Outcome::NotReady {
            reason: reason::LIMIT_EXCEEDED,
            message: format!(
                "plan {} allows {} phone number(s) and the tenant holds {held}; upgrade the plan, \
                 raise spec.limits.phoneNumbers on the Tenant, or delete a number",
                tenant.spec.plan,
                limit.unwrap_or_default()
            ),
            requeue: REQUEUE_LIMIT,
        }));
    }
    patch_annotations(
        number,
        ctx,
        &[
            (IDEMPOTENCY_KEY_ANNOTATION, Some(key.to_owned())),
            (CREATE_PENDING_ANNOTATION, Some(now_rfc3339())),
        ],
    )
    .await?;
    Ok(None)
}

/// Records a number found at the carrier (adopted by tag or imported by E.164) and routes it.
async fn record_owned(
    number: &PhoneNumber,
    ctx: &Context,
    carrier: &AnyCarrier,
    owned: OwnedNumber,
    webhooks: &WebhookConfig,
    key: &str,
    verb: &'static str,
) -> Result<Outcome, Error> {
    patch_annotations(
        number,
        ctx,
        &[
            (IDEMPOTENCY_KEY_ANNOTATION, Some(key.to_owned())),
            (EXTERNAL_NAME_ANNOTATION, Some(owned.id.clone())),
            (CREATE_SUCCEEDED_ANNOTATION, Some(now_rfc3339())),
        ],
    )
    .await?;
    let message = format!(
        "{} {} ({}) at the carrier",
        verb.to_lowercase(),
        owned.e164,
        owned.id
    );
    Ok(
        match configure_if_needed(carrier, owned, webhooks, None).await {
            Outcome::Ready { owned, .. } => Outcome::Ready {
                owned,
                action: Some((verb, message)),
            },
            not_ready => not_ready,
        },
    )
}

/// Records that the carrier refused: the slot is free again.
async fn mark_create_failed(number: &PhoneNumber, ctx: &Context) -> Result<(), Error> {
    patch_annotations(
        number,
        ctx,
        &[
            (CREATE_PENDING_ANNOTATION, None),
            (CREATE_FAILED_ANNOTATION, Some(now_rfc3339())),
        ],
    )
    .await
}

fn now_rfc3339() -> String {
    Timestamp::now().to_string()
}

/// Sets (`Some`) or removes (`None`) annotations with a JSON merge patch, leaving everything
/// else on the user's object alone.
async fn patch_annotations(
    number: &PhoneNumber,
    ctx: &Context,
    changes: &[(&str, Option<String>)],
) -> Result<(), Error> {
    let namespace = number.namespace().unwrap_or_default();
    let annotations: serde_json::Map<String, Value> = changes
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                v.clone().map_or(Value::Null, Value::String),
            )
        })
        .collect();
    Api::<PhoneNumber>::namespaced(ctx.client.clone(), &namespace)
        .patch(
            &number.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": annotations } })),
        )
        .await?;
    Ok(())
}

/// Writes the status if it changed, publishing any new failure; then publishes `action`
/// (what this reconcile did at the carrier), changed status or not.
async fn write_status(
    number: &PhoneNumber,
    ctx: &Context,
    status: PhoneNumberStatus,
    action: Option<(&'static str, String)>,
) -> Result<(), Error> {
    lifecycle::write_status(ctx, number, status, |previous, current| {
        failure_transition(previous, current)
            .map(|(reason, note)| event(EventType::Warning, &reason, note))
            .into_iter()
            .collect()
    })
    .await?;
    if let Some((reason, note)) = action {
        publish_event(ctx, number, EventType::Normal, reason, note).await;
    }
    Ok(())
}

/// A Warning worth publishing when `Ready` (or, for an owned number, `Synced`) newly
/// turned False or changed its reason.
fn failure_transition(
    previous: &PhoneNumberStatus,
    current: &PhoneNumberStatus,
) -> Option<(String, String)> {
    [CONDITION_READY, CONDITION_SYNCED]
        .into_iter()
        .find_map(|type_| {
            let find = |s: &PhoneNumberStatus| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == type_)
                    .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
            };
            let (status, reason, message) = find(current)?;
            let changed = find(previous).is_none_or(|(s, r, _)| s != status || r != reason);
            (status == "False" && changed).then_some((reason, message))
        })
}

fn event(type_: EventType, reason: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    }
}

async fn publish_event(
    ctx: &Context,
    number: &PhoneNumber,
    type_: EventType,
    reason: &str,
    note: String,
) {
    lifecycle::publish(ctx, number, event(type_, reason, note)).await;
}

/// Tells the gateway which tenant answers `e164`, so inbound calls route at once. Sent on every
/// Ready reconcile: it is idempotent, and it repairs a gateway that lost its routing table.
/// Without a gateway token (standalone, tests) there is no gateway to tell.
async fn route_at_gateway(
    number: &PhoneNumber,
    ctx: &Context,
    tenant: &Tenant,
    kind: CarrierKind,
    e164: &str,
) -> Result<(), GatewayError> {
    let Ok(gateway) = ctx.gateway() else {
        return Ok(());
    };
    let own_account =
        tenant.spec.carrier.credentials_secret_ref.is_some() && tenant.spec.carrier.kind == kind;
    let route = NumberRoute {
        tenant: tenant.metadata.name.clone().unwrap_or_default(),
        carrier: kind.as_str().to_owned(),
        account: Some(if own_account { "tenant" } else { "platform" }.to_owned()),
        agent: number.spec.agent.clone(),
    };
    gateway.route_number(e164, &route).await?;
    Ok(())
}

/// Stops the gateway routing a number that is going away. Best effort: the number is released
/// (or kept by Retain) either way, and a later owner's route replaces a stale one.
async fn unroute_at_gateway(number: &PhoneNumber, ctx: &Context) {
    let (Ok(gateway), Some(e164)) = (
        ctx.gateway(),
        number.status.as_ref().and_then(|s| s.e164.as_deref()),
    ) else {
        return;
    };
    if let Err(error) = gateway.unroute_number(e164).await {
        tracing::warn!(%error, number = %e164, "cannot unroute the number at the gateway");
    }
}

/// Releases the number at the carrier unless the policy is Retain. A purchase that was never
/// recorded (pending, no external name) is found by its tag and released too.
async fn cleanup(number: Arc<PhoneNumber>, ctx: &Context) -> Result<Action, Error> {
    let number = number.as_ref();
    unroute_at_gateway(number, ctx).await;
    if let Err(error) = publish_number_agents(ctx, &number.namespace().unwrap_or_default()).await {
        tracing::warn!(%error, "cannot update the runtime's number → agent map");
    }
    if number.spec.deletion_policy == DeletionPolicy::Retain {
        if let Some(id) = external_name(number) {
            let note = format!("number {id} stays on the carrier account (deletionPolicy: Retain)");
            publish_event(ctx, number, EventType::Normal, "Retained", note).await;
        }
        return Ok(Action::await_change());
    }
    let recorded = external_name(number).map(str::to_owned);
    let pending = number.annotations().contains_key(CREATE_PENDING_ANNOTATION);
    if recorded.is_none() && !pending {
        return Ok(Action::await_change());
    }
    let namespace = number.namespace().unwrap_or_default();
    let tenant = load_tenant(ctx, &namespace).await?;
    let carrier = carrier_for(ctx, number, tenant.as_ref())
        .await?
        .map_err(|e| Error::Carrier(e.to_string()))?;
    let id = match recorded {
        Some(id) => Some(id),
        None => match idempotency_key(number) {
            Some(key) => carrier
                .find_by_tag(&key)
                .await
                .map_err(|e| Error::Carrier(e.to_string()))?
                .map(|owned| owned.id),
            None => None,
        },
    };
    let Some(id) = id else {
        return Ok(Action::await_change());
    };
    carrier
        .release(&id)
        .await
        .map_err(|e| Error::Carrier(e.to_string()))?;
    let e164 = number
        .status
        .as_ref()
        .and_then(|s| s.e164.clone())
        .unwrap_or_else(|| id.clone());
    publish_event(
        ctx,
        number,
        EventType::Normal,
        "Released",
        format!("released {e164} at the carrier"),
    )
    .await;
    Ok(Action::await_change())
}

/// Writes the namespace's number → agent map (`numbers.json`) into the agent ConfigMap the
/// runtime mounts, under its own field manager, when it differs from what this operator last
/// applied there. The runtime picks the agent of a call by it (`switchboard_crds::agents`).
async fn publish_number_agents(ctx: &Context, namespace: &str) -> Result<(), Error> {
    let numbers = Api::<PhoneNumber>::namespaced(ctx.client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let desired = number_agents(namespace, &numbers)?;
    let hash = super::cache::spec_hash(&desired);
    let published = ctx
        .published_numbers
        .lock()
        .is_ok_and(|p| p.get(namespace) == Some(&hash));
    if published {
        return Ok(());
    }
    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .patch(
            AGENT_CONFIG_MAP,
            &PatchParams::apply(NUMBERS_FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await?;
    if let Ok(mut published) = ctx.published_numbers.lock() {
        published.insert(namespace.to_owned(), hash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn with(conditions: &[(&str, &str, &str)]) -> PhoneNumberStatus {
        let mut status = PhoneNumberStatus::default();
        let now = k8s_openapi::jiff::Timestamp::from_second(1).unwrap();
        for (type_, value, reason) in conditions {
            let value = if *value == "True" {
                switchboard_crds::ConditionStatus::True
            } else {
                switchboard_crds::ConditionStatus::False
            };
            switchboard_crds::set_condition(
                &mut status.conditions,
                type_,
                value,
                reason,
                "m",
                None,
                now,
            );
        }
        status
    }

    #[test]
    fn warnings_fire_once_per_new_failure() {
        let ready = with(&[
            ("Ready", "True", "Available"),
            ("Synced", "True", "ReconcileSuccess"),
        ]);
        let unsynced = with(&[
            ("Ready", "True", "Available"),
            ("Synced", "False", "RateLimited"),
        ]);
        let limited = with(&[
            ("Ready", "False", "LimitExceeded"),
            ("Synced", "False", "LimitExceeded"),
        ]);
        assert_eq!(
            failure_transition(&ready, &unsynced)
                .map(|e| e.0)
                .as_deref(),
            Some("RateLimited")
        );
        assert_eq!(failure_transition(&unsynced, &unsynced), None, "no repeat");
        assert_eq!(
            failure_transition(&ready, &limited).map(|e| e.0).as_deref(),
            Some("LimitExceeded")
        );
        assert_eq!(
            failure_transition(&limited, &ready),
            None,
            "recovery is not a warning"
        );
    }

    #[test]
    fn retry_delays_follow_the_error_kind() {
        let limited = CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            message: String::new(),
        };
        assert_eq!(retry_delay(&limited), Duration::from_secs(7));
        let huge = CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(86_400)),
            message: String::new(),
        };
        assert_eq!(retry_delay(&huge), Duration::from_secs(600));
        let down = CarrierError::Transient {
            message: String::new(),
        };
        assert!(
            retry_delay(&down)
                < retry_delay(&CarrierError::BadCredentials {
                    message: String::new()
                })
        );
    }
}
