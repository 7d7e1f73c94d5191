//! A tenant's phone numbers: `GET` (viewer), `POST` to buy (admin), `PATCH` to change which
//! agent answers (admin) and `DELETE` to release (admin) under
//! `/api/v1/tenants/{tenant}/numbers`.
//!
//! Two back ends, chosen by how the gateway runs:
//! * Standalone (a sandbox carrier is attached to the state): the gateway buys and releases
//!   itself through the sandbox carrier, writes the routing row and reloads the in-memory
//!   number table, so a bought number takes calls at once. Answers 201 / 204.
//! * Kubernetes: the gateway applies or deletes a `PhoneNumber` object in the tenant's
//!   namespace and the operator buys, configures and routes it (through the internal API).
//!   Answers 202, because the purchase happens later.
//!
//! Either way the plan's `phoneNumbers` limit (with the operator's and the tenant's
//! overrides) is checked first: 403 `limit_exceeded` and nothing is bought.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_carriers::{
    Carrier, CarrierError, NumberQuery, PurchaseRequest, SandboxCarrier, gateway_webhooks,
};
use switchboard_crds::phone_number::{PhoneNumber, PhoneNumberSpec};
use switchboard_crds::{CarrierKind, TENANT_LABEL};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::record;
use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson};
use super::page::{Page, PageQuery};
use super::principal::TenantAccess;
use super::validate::is_e164;
use super::validate::rfc3339;
use crate::idempotency::Idempotency;
use crate::kube::FIELD_MANAGER;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::numbers::{self, NumberRow};
use crate::store::tenants::Role;

/// Serialises purchases in this process, so two concurrent requests cannot both pass the
/// plan's number limit (standalone mode runs exactly one gateway; in Kubernetes the operator
/// enforces the limit again when it buys).
static PURCHASES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The routes of this module, merged into the API router.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, buy))
        .routes(routes!(update, release))
}

/// Request to buy a number: any number in the country (optionally in an area code), or one
/// exact number.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuyNumber {
    /// Area code to search in, digits (the sandbox's is `555`).
    pub area_code: Option<String>,
    /// An exact number to buy, E.164 (`+15550100`).
    pub number: Option<String>,
    /// ISO 3166-1 alpha-2 country (default `US`).
    pub country: Option<String>,
    /// The tenant's named agent that answers the number (`GET …/agents`); unset or
    /// `default`: the default agent.
    pub agent: Option<String>,
}

/// A validated purchase request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberWish {
    /// Country, two upper-case letters.
    pub country: String,
    /// Area code, 2–5 digits.
    pub area_code: Option<String>,
    /// Exact E.164 number.
    pub number: Option<String>,
    /// The named agent that answers it (`None`: the default agent).
    pub agent: Option<String>,
}

/// Checks a purchase request, naming the field at fault.
pub fn validate(request: BuyNumber) -> Result<NumberWish, ApiError> {
    let country = request.country.unwrap_or_else(|| "US".to_owned());
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "country",
            "invalid_country",
            "expected an ISO 3166-1 alpha-2 code such as US",
        ));
    }
    if let Some(code) = &request.area_code
        && !(2..=5).contains(&code.len())
    {
        return Err(invalid_area_code());
    }
    if let Some(code) = &request.area_code
        && !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid_area_code());
    }
    if let Some(number) = &request.number
        && !is_e164(number)
    {
        return Err(ApiError::invalid(
            "number",
            "invalid_number",
            "expected an E.164 number such as +15550100",
        ));
    }
    if request.area_code.is_some() && request.number.is_some() {
        return Err(ApiError::invalid(
            "number",
            "conflicting_fields",
            "set either areaCode (search and buy) or number (one exact number), not both",
        ));
    }
    let agent = request
        .agent
        .filter(|a| a != switchboard_crds::agents::DEFAULT_AGENT);
    if let Some(agent) = &agent {
        switchboard_crds::agents::check_agent_name(agent)
            .map_err(|message| ApiError::invalid("agent", "invalid_agent_name", message))?;
    }
    Ok(NumberWish {
        country,
        area_code: request.area_code,
        number: request.number,
        agent,
    })
}

/// Request to change a number: which agent answers it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateNumber {
    /// The tenant's named agent that answers the number (`GET …/agents`); `default` or
    /// `null`: the default agent. Required.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub agent: Option<Option<String>>,
}

/// A field that may be `null` but must be there: `Some(None)` for `null`, `None` if absent.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// The agent an update names (`None`: the default agent), checked like a purchase's.
fn agent_of_update(
    access: &TenantAccess,
    request: UpdateNumber,
) -> Result<Option<String>, ApiError> {
    let Some(agent) = request.agent else {
        return Err(ApiError::invalid(
            "agent",
            "missing_field",
            "set agent to a named agent, or to \"default\"",
        ));
    };
    let agent = agent.filter(|a| a != switchboard_crds::agents::DEFAULT_AGENT);
    if let Some(name) = &agent {
        switchboard_crds::agents::check_agent_name(name)
            .map_err(|message| ApiError::invalid("agent", "invalid_agent_name", message))?;
        super::agents::require_named_agent(access, "agent", name)?;
    }
    Ok(agent)
}

fn invalid_area_code() -> ApiError {
    ApiError::invalid("areaCode", "invalid_area_code", "expected 2 to 5 digits")
}

/// One of the tenant's numbers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NumberView {
    /// The number (E.164); absent while a Kubernetes purchase is pending.
    pub e164: Option<String>,
    /// `PhoneNumber` object name (Kubernetes mode) or the carrier's id (standalone).
    pub name: Option<String>,
    /// `sandbox`, `twilio` or `telnyx`.
    pub carrier: String,
    /// `Ready` (routed: calls reach the tenant's agent) or `Pending` (being bought).
    pub status: &'static str,
    /// Agent answering the number, when not the tenant's default.
    pub agent: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: Option<String>,
}

impl NumberView {
    fn routed(row: NumberRow, name: Option<String>) -> Self {
        Self {
            e164: Some(row.e164),
            name,
            carrier: row.carrier,
            status: "Ready",
            agent: row.agent,
            updated_at: Some(rfc3339(row.updated_at)),
        }
    }
}

/// `GET /api/v1/tenants/{tenant}/numbers` (viewer): the numbers routed to the tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/numbers", tag = "numbers",
    params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<NumberView>, description = "Routed numbers by number, then those being bought")), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<NumberView>>, ApiError> {
    access.require(Role::Viewer)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = numbers::for_tenant(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    let objects = if state.sandbox.is_none() {
        // Kubernetes mode: numbers being bought exist only as objects so far. A cluster
        // hiccup must not hide the routed numbers, so it only costs the pending ones.
        phone_numbers(&state, &access.tenant.slug)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot list PhoneNumber objects");
                Vec::new()
            })
    } else {
        Vec::new()
    };
    Ok(Json(Page::of_all(merge_views(rows, &objects), &page)?))
}

/// The number a `PhoneNumber` holds or asks for.
fn e164_of(object: &PhoneNumber) -> Option<&str> {
    object
        .status
        .as_ref()
        .and_then(|s| s.e164.as_deref())
        .or(object.spec.number.as_deref())
}

/// Routed numbers (named after their object when there is one), then objects not routed yet.
pub fn merge_views(rows: Vec<NumberRow>, objects: &[PhoneNumber]) -> Vec<NumberView> {
    let mut items: Vec<NumberView> = rows
        .into_iter()
        .map(|row| {
            let name = objects
                .iter()
                .find(|o| e164_of(o) == Some(row.e164.as_str()))
                .and_then(|o| o.metadata.name.clone());
            NumberView::routed(row, name)
        })
        .collect();
    for object in objects {
        let e164 = e164_of(object);
        if e164.is_some_and(|n| items.iter().any(|i| i.e164.as_deref() == Some(n))) {
            continue;
        }
        items.push(pending_view(object));
    }
    items
}

/// The tenant's `PhoneNumber` objects (none without Kubernetes).
async fn phone_numbers(state: &AppState, slug: &str) -> Result<Vec<PhoneNumber>, kube::Error> {
    let Some(kube) = state.kube.client() else {
        return Ok(Vec::new());
    };
    let namespace = state.config.tenant_naming().namespace(slug);
    let api: Api<PhoneNumber> = Api::namespaced(kube.clone(), &namespace);
    Ok(api.list(&ListParams::default()).await?.items)
}

/// 403 `limit_exceeded` when the tenant already has as many numbers as its plan allows.
async fn check_number_limit(state: &AppState, access: &TenantAccess) -> Result<(), ApiError> {
    let mut tx = state.store.read(&access.scope()).await?;
    let limits = access.limits(state, &mut tx).await?;
    let routed = numbers::count_for_tenant(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    let Some(limit) = limits.phone_numbers else {
        return Ok(());
    };
    // In Kubernetes every object is a number bought or being bought.
    let objects = if state.sandbox.is_none() {
        phone_numbers(state, &access.tenant.slug)
            .await
            .map_err(|e| kube_error(&e))?
            .len()
    } else {
        0
    };
    let count = routed.max(i64::try_from(objects).unwrap_or(i64::MAX));
    if count >= i64::from(limit) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "limit_exceeded",
            format!(
                "the {} plan allows {limit} phone number(s) and the tenant has {count}; release one or upgrade",
                access.tenant.plan
            ),
        ));
    }
    Ok(())
}

/// `POST /api/v1/tenants/{tenant}/numbers` (admin): buys a number.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/numbers", tag = "numbers",
    params(("tenant" = String, Path, description = "Tenant slug or id")), request_body = BuyNumber,
    responses((status = 201, body = NumberView, description = "Bought and routed (standalone)"),
              (status = 202, body = NumberView, description = "PhoneNumber applied; the operator buys it (Kubernetes)"),
              (status = 403, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody),
              (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn buy(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    idempotency: Option<Extension<Idempotency>>,
    ApiJson(request): ApiJson<BuyNumber>,
) -> Result<Response, ApiError> {
    access.require(Role::Admin)?;
    access.require_stack(&state)?;
    let wish = validate(request)?;
    if let Some(agent) = wish.agent.as_deref() {
        super::agents::require_named_agent(&access, "agent", agent)?;
    }
    let _serialised = PURCHASES.lock().await;
    if let Some(sandbox) = &state.sandbox {
        check_number_limit(&state, &access).await?;
        let view = buy_sandbox(&state, sandbox, &access, &client, &wish).await?;
        return Ok((StatusCode::CREATED, Json(view)).into_response());
    }
    if state.kube.enabled() {
        // With an Idempotency-Key the object is named after it: a retry whose object exists
        // (the gateway died between applying it and answering, or the answer was lost after
        // the 24 hours) gets that object back, never a second purchase. It already counts
        // against the limit, so the limit is not checked again.
        let name = match &idempotency {
            Some(Extension(idempotency)) => idempotency.object_name("number"),
            None => {
                let simple = uuid::Uuid::new_v4().simple().to_string();
                format!("number-{}", &simple[..10])
            }
        };
        if idempotency.is_some()
            && let Some(existing) = phone_number(&state, &access.tenant.slug, &name).await?
        {
            return Ok((StatusCode::ACCEPTED, Json(pending_view(&existing))).into_response());
        }
        check_number_limit(&state, &access).await?;
        let view = apply_phone_number(&state, &access, &client, &wish, &name).await?;
        return Ok((StatusCode::ACCEPTED, Json(view)).into_response());
    }
    Err(no_backend())
}

/// The tenant's `PhoneNumber` called `name`, if it exists (Kubernetes mode).
async fn phone_number(
    state: &AppState,
    slug: &str,
    name: &str,
) -> Result<Option<PhoneNumber>, ApiError> {
    let Some(kube) = state.kube.client() else {
        return Ok(None);
    };
    let namespace = state.config.tenant_naming().namespace(slug);
    let api: Api<PhoneNumber> = Api::namespaced(kube.clone(), &namespace);
    api.get_opt(name).await.map_err(|e| kube_error(&e))
}

/// A `PhoneNumber` object as the API shows a number not routed yet.
fn pending_view(object: &PhoneNumber) -> NumberView {
    NumberView {
        e164: e164_of(object).map(str::to_owned),
        name: object.metadata.name.clone(),
        carrier: object
            .spec
            .carrier
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        status: "Pending",
        agent: object.spec.agent.clone(),
        updated_at: None,
    }
}

fn no_backend() -> ApiError {
    ApiError::unavailable(
        "numbers cannot be bought here: run `switchboard-gateway standalone` (sandbox carrier) or the gateway in Kubernetes",
    )
}

/// Maps a carrier failure to the API's error.
fn carrier_error(error: &CarrierError) -> ApiError {
    match error {
        CarrierError::NothingAvailable { message } => {
            ApiError::conflict("number_unavailable", message.clone())
        }
        other => {
            tracing::warn!(error = %other, "carrier refused a number operation");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "carrier_error",
                format!("the carrier failed: {}", other.reason()),
            )
        }
    }
}

/// Buys through the sandbox carrier, routes the number and reloads the number table.
async fn buy_sandbox(
    state: &AppState,
    sandbox: &SandboxCarrier,
    access: &TenantAccess,
    client: &ClientInfo,
    wish: &NumberWish,
) -> Result<NumberView, ApiError> {
    let e164 = match &wish.number {
        Some(number) => number.clone(),
        None => {
            let query = NumberQuery {
                country: wish.country.clone(),
                area_code: wish.area_code.clone(),
                ..NumberQuery::voice(wish.country.clone())
            };
            let found = sandbox
                .search(&query)
                .await
                .map_err(|e| carrier_error(&e))?;
            found.into_iter().next().map(|n| n.e164).ok_or_else(|| {
                ApiError::conflict(
                    "number_unavailable",
                    "the sandbox has no free number matching the request (it offers +1 555 0100–0199 in the US)",
                )
            })?
        }
    };
    let purchase = PurchaseRequest {
        e164,
        tag: format!("{}:{}", access.tenant.id, uuid::Uuid::new_v4()),
        webhooks: gateway_webhooks(CarrierKind::Sandbox, state.config.public_base()),
    };
    let owned = sandbox
        .buy(&purchase)
        .await
        .map_err(|e| carrier_error(&e))?;
    let row = NumberRow {
        e164: owned.e164.clone(),
        tenant_id: access.tenant.id.clone(),
        carrier: CarrierKind::Sandbox.as_str().to_owned(),
        account: "platform".to_owned(),
        agent: wish.agent.clone(),
        updated_at: now_ms(),
    };
    if let Err(error) = route_number(state, access, client, &row, &owned.id).await {
        // Do not keep a number nobody can see: give it back to the carrier.
        if let Err(release) = sandbox.release(&owned.id).await {
            tracing::error!(error = %release, number = %owned.e164, "cannot release an unrouted sandbox number");
        }
        return Err(error);
    }
    state.numbers.reload(&state.store).await?;
    Ok(NumberView::routed(row, Some(owned.id)))
}

/// Writes the routing row and the audit entry in one tenant-scoped transaction.
async fn route_number(
    state: &AppState,
    access: &TenantAccess,
    client: &ClientInfo,
    row: &NumberRow,
    carrier_id: &str,
) -> Result<(), ApiError> {
    let mut tx = state.store.write(&access.scope()).await?;
    numbers::upsert(&mut tx, row).await?;
    record(
        &mut tx,
        access,
        client,
        "number.purchased",
        ("phone_number", &row.e164),
        json!({"carrier": row.carrier, "carrierId": carrier_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The server-side-apply body of a `PhoneNumber` the gateway asks the operator to buy.
pub fn desired_phone_number(
    name: &str,
    namespace: &str,
    tenant_slug: &str,
    wish: &NumberWish,
) -> Result<serde_json::Value, serde_json::Error> {
    let object = PhoneNumber {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(
                [
                    (TENANT_LABEL.to_owned(), tenant_slug.to_owned()),
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        FIELD_MANAGER.to_owned(),
                    ),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: PhoneNumberSpec {
            country: wish.country.clone(),
            area_code: wish.area_code.clone(),
            number: wish.number.clone(),
            capabilities: vec![switchboard_crds::phone_number::Capability::Voice],
            agent: wish.agent.clone(),
            ..PhoneNumberSpec::default()
        },
        status: None,
    };
    let mut body = serde_json::to_value(&object)?;
    if let Some(meta) = body.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.retain(|_, v| !v.is_null());
    }
    if let Some(object) = body.as_object_mut() {
        object.remove("status");
    }
    Ok(body)
}

fn kube_error(error: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(%error, "Kubernetes refused a PhoneNumber change");
    ApiError::unavailable("the cluster did not accept the change; try again")
}

/// Applies a new `PhoneNumber` in the tenant's namespace (Kubernetes mode).
async fn apply_phone_number(
    state: &AppState,
    access: &TenantAccess,
    client: &ClientInfo,
    wish: &NumberWish,
    name: &str,
) -> Result<NumberView, ApiError> {
    let Some(kube) = state.kube.client() else {
        return Err(no_backend());
    };
    let namespace = state.config.tenant_naming().namespace(&access.tenant.slug);
    let body = desired_phone_number(name, &namespace, &access.tenant.slug, wish)
        .map_err(|e| ApiError::internal(&e))?;
    let api: Api<PhoneNumber> = Api::namespaced(kube.clone(), &namespace);
    // A fresh name (random, or derived from an Idempotency-Key not used before), so nobody
    // else holds any of its fields: nothing to force.
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| kube_error(&e))?;
    let mut tx = state.store.write(&access.scope()).await?;
    record(
        &mut tx,
        access,
        client,
        "number.requested",
        ("phone_number", name),
        json!({"country": wish.country, "areaCode": wish.area_code, "number": wish.number}),
    )
    .await?;
    tx.commit().await?;
    Ok(NumberView {
        e164: wish.number.clone(),
        name: Some(name.to_owned()),
        carrier: String::new(),
        status: "Pending",
        agent: wish.agent.clone(),
        updated_at: None,
    })
}

/// `PATCH /api/v1/tenants/{tenant}/numbers/{e164}` (admin): changes which agent answers the
/// number. Kubernetes: the gateway patches `spec.agent` of the `PhoneNumber` it created, under
/// its field manager, and the operator re-routes the number and rewrites the runtime's number
/// map (a `PhoneNumber` from a manifest answers 409: its manifest holds `spec.agent`).
/// Standalone: the routing row, which the embedded runtime re-reads.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/numbers/{e164}", tag = "numbers",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("e164" = String, Path, description = "The number, E.164")),
    request_body = UpdateNumber,
    responses((status = 200, body = NumberView, description = "The number with its new agent"),
              (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody),
              (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, e164)): Path<(String, String)>,
    ApiJson(request): ApiJson<UpdateNumber>,
) -> Result<Json<NumberView>, ApiError> {
    access.require(Role::Admin)?;
    let agent = agent_of_update(&access, request)?;
    let e164 = crate::numbers::normalise(&e164);
    if state.kube.enabled() {
        return Ok(Json(
            reassign_phone_number(&state, &access, &client, &e164, agent).await?,
        ));
    }
    let now = now_ms();
    let mut tx = state.store.write(&access.scope()).await?;
    if !numbers::set_agent(&mut tx, &access.tenant.id, &e164, agent.as_deref(), now).await? {
        return Err(ApiError::not_found("number"));
    }
    let row = numbers::for_tenant(&mut tx, &access.tenant.id)
        .await?
        .into_iter()
        .find(|row| row.e164 == e164)
        .ok_or_else(|| ApiError::not_found("number"))?;
    record(
        &mut tx,
        &access,
        &client,
        "number.updated",
        ("phone_number", &e164),
        json!({"agent": agent}),
    )
    .await?;
    tx.commit().await?;
    state.numbers.reload(&state.store).await?;
    Ok(Json(NumberView::routed(row, None)))
}

/// Whether the gateway created `object` (through the numbers API), so it may re-apply it.
fn made_by_gateway(object: &PhoneNumber) -> bool {
    object
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
        .is_some_and(|m| m == FIELD_MANAGER)
}

/// Sets `spec.agent` of the tenant's `PhoneNumber` holding `e164` (Kubernetes mode).
async fn reassign_phone_number(
    state: &AppState,
    access: &TenantAccess,
    client: &ClientInfo,
    e164: &str,
    agent: Option<String>,
) -> Result<NumberView, ApiError> {
    let Some(kube) = state.kube.client() else {
        return Err(no_backend());
    };
    let slug = &access.tenant.slug;
    let namespace = state.config.tenant_naming().namespace(slug);
    let objects = phone_numbers(state, slug)
        .await
        .map_err(|e| kube_error(&e))?;
    let Some(object) = objects.into_iter().find(|pn| e164_of(pn) == Some(e164)) else {
        return Err(ApiError::not_found("number"));
    };
    let name = object
        .metadata
        .name
        .clone()
        .ok_or_else(|| ApiError::internal(&"a PhoneNumber without a name"))?;
    if !made_by_gateway(&object) {
        return Err(ApiError::conflict(
            "managed_by_manifest",
            format!("PhoneNumber {name} comes from a manifest; change spec.agent there"),
        )
        .with_field("agent"));
    }
    // A merge patch of the one field, recorded under the gateway's field manager: it sets or
    // removes `spec.agent` whoever applied it last (the gateway made the object, so no
    // manifest holds the field), and leaves the rest of the object as it is.
    let api: Api<PhoneNumber> = Api::namespaced(kube.clone(), &namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let applied = api
        .patch(
            &name,
            &params,
            &Patch::Merge(json!({"spec": {"agent": agent}})),
        )
        .await
        .map_err(|e| kube_error(&e))?;
    let mut tx = state.store.write(&access.scope()).await?;
    let routed = numbers::for_tenant(&mut tx, &access.tenant.id)
        .await?
        .into_iter()
        .find(|row| row.e164 == e164);
    record(
        &mut tx,
        access,
        client,
        "number.updated",
        ("phone_number", &name),
        json!({"e164": e164, "agent": agent}),
    )
    .await?;
    tx.commit().await?;
    // Routed numbers show the new agent at once; the operator re-routes with it shortly.
    Ok(match routed {
        Some(row) => NumberView::routed(NumberRow { agent, ..row }, Some(name)),
        None => pending_view(&applied),
    })
}

/// `DELETE /api/v1/tenants/{tenant}/numbers/{e164}` (admin): releases a number.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/numbers/{e164}", tag = "numbers",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("e164" = String, Path, description = "The number, E.164")),
    responses((status = 204, description = "Released (standalone)"), (status = 202, description = "PhoneNumber deleted; the operator releases it (Kubernetes)"),
              (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn release(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, e164)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    let e164 = crate::numbers::normalise(&e164);
    let mut tx = state.store.read(&access.scope()).await?;
    let owned = numbers::for_tenant(&mut tx, &access.tenant.id)
        .await?
        .into_iter()
        .any(|row| row.e164 == e164);
    tx.commit().await?;
    if let Some(sandbox) = &state.sandbox {
        if !owned {
            return Err(ApiError::not_found("number"));
        }
        release_sandbox(&state, sandbox, &access, &client, &e164).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    if state.kube.enabled() {
        delete_phone_number(&state, &access, &client, &e164).await?;
        return Ok(StatusCode::ACCEPTED);
    }
    Err(no_backend())
}

/// Stops routing the number, then gives it back to the sandbox carrier.
async fn release_sandbox(
    state: &AppState,
    sandbox: &SandboxCarrier,
    access: &TenantAccess,
    client: &ClientInfo,
    e164: &str,
) -> Result<(), ApiError> {
    let mut tx = state.store.write(&access.scope()).await?;
    numbers::delete(&mut tx, e164).await?;
    record(
        &mut tx,
        access,
        client,
        "number.released",
        ("phone_number", e164),
        json!({"carrier": "sandbox"}),
    )
    .await?;
    tx.commit().await?;
    state.numbers.reload(&state.store).await?;
    // Routing is gone first, so a failed release leaves a number the tenant no longer sees
    // (and no longer pays for) rather than one that rings without an owner.
    if let Some(number) = sandbox
        .find_by_e164(e164)
        .await
        .map_err(|e| carrier_error(&e))?
    {
        sandbox
            .release(&number.id)
            .await
            .map_err(|e| carrier_error(&e))?;
    }
    Ok(())
}

/// Deletes the tenant's `PhoneNumber` holding `e164` (Kubernetes mode); the operator's
/// finalizer releases it on the carrier and removes the route.
async fn delete_phone_number(
    state: &AppState,
    access: &TenantAccess,
    client: &ClientInfo,
    e164: &str,
) -> Result<(), ApiError> {
    let Some(kube) = state.kube.client() else {
        return Err(no_backend());
    };
    let namespace = state.config.tenant_naming().namespace(&access.tenant.slug);
    let api: Api<PhoneNumber> = Api::namespaced(kube.clone(), &namespace);
    let objects = phone_numbers(state, &access.tenant.slug)
        .await
        .map_err(|e| kube_error(&e))?;
    let Some(name) = objects
        .iter()
        .find(|pn| e164_of(pn) == Some(e164))
        .and_then(|pn| pn.metadata.name.clone())
    else {
        return Err(ApiError::not_found("number"));
    };
    api.delete(&name, &DeleteParams::default())
        .await
        .map_err(|e| kube_error(&e))?;
    let mut tx = state.store.write(&access.scope()).await?;
    record(
        &mut tx,
        access,
        client,
        "number.release_requested",
        ("phone_number", &name),
        json!({"e164": e164}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wish(body: serde_json::Value) -> Result<NumberWish, ApiError> {
        validate(serde_json::from_value(body).unwrap())
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        assert_eq!(
            wish(json!({})).unwrap(),
            NumberWish {
                country: "US".into(),
                area_code: None,
                number: None,
                agent: None,
            }
        );
        let field = |body| wish(body).unwrap_err().field;
        assert_eq!(field(json!({"country": "usa"})).as_deref(), Some("country"));
        assert_eq!(
            field(json!({"areaCode": "5a5"})).as_deref(),
            Some("areaCode")
        );
        assert_eq!(field(json!({"areaCode": "1"})).as_deref(), Some("areaCode"));
        assert_eq!(
            field(json!({"number": "5550100"})).as_deref(),
            Some("number")
        );
        assert_eq!(
            field(json!({"number": "+15550100", "areaCode": "555"})).as_deref(),
            Some("number")
        );
        assert!(serde_json::from_value::<BuyNumber>(json!({"colour": "red"})).is_err());
        assert_eq!(field(json!({"agent": "Sales"})).as_deref(), Some("agent"));
        assert_eq!(wish(json!({"agent": "default"})).unwrap().agent, None);
    }

    #[test]
    fn phone_number_body_is_a_valid_object_in_the_tenant_namespace() {
        let wish = NumberWish {
            country: "US".into(),
            area_code: Some("415".into()),
            number: None,
            agent: Some("sales".into()),
        };
        let namespace = switchboard_crds::naming::TenantNaming::default().namespace("acme");
        let body = desired_phone_number("number-1", &namespace, "acme", &wish).unwrap();
        assert_eq!(body["apiVersion"], "voice.switchboard.dev/v1alpha1");
        assert_eq!(body["kind"], "PhoneNumber");
        assert_eq!(body["metadata"]["namespace"], "tenant-acme");
        assert_eq!(body["metadata"]["labels"][TENANT_LABEL], "acme");
        assert!(body.get("status").is_none());
        let parsed: PhoneNumber = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.spec.area_code.as_deref(), Some("415"));
        assert_eq!(parsed.spec.number, None);
        assert_eq!(parsed.spec.country, "US");
    }
}
