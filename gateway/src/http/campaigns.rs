//! The tenant's campaigns on the public API: progress, contacts upload, results (JSON and
//! CSV) and the do-not-call list.
//!
//! * `GET  /api/v1/tenants/{tenant}/campaigns` (viewer): the campaigns not stopped, by name,
//!   paged (`limit`, `cursor`; `{items, nextCursor}`).
//! * `GET  /api/v1/tenants/{tenant}/campaigns/{campaign}` (viewer): progress, the reason
//!   the dialer is holding, if it is, and the registered spec (`PUT` it back with `suspend`
//!   set to pause or resume).
//! * `PUT|DELETE /api/v1/tenants/{tenant}/campaigns/{campaign}` (admin): create, change or stop
//!   a campaign. The body is the `Campaign` spec. In Kubernetes mode the gateway applies the
//!   `Campaign` object (field manager `switchboard-gateway`; `fromNumber` names a PhoneNumber)
//!   and answers 202; the operator validates and registers it. In standalone mode the gateway
//!   registers it itself (`fromNumber` is one of the tenant's numbers, E.164; contacts are
//!   uploaded) and answers 201/200 with the progress.
//! * `POST /api/v1/tenants/{tenant}/campaigns/{campaign}/contacts` (member): a CSV body
//!   (`text/csv`, at most [`CONTACTS_UPLOAD_LIMIT`] bytes) with a `phone` column and optional
//!   `id`, `name` and variable columns. Each row is checked (E.164, duplicates within the
//!   file and against the campaign, the do-not-call list); valid rows are kept and every
//!   rejected row is reported with its number. Only for campaigns whose `contacts.uploaded`
//!   is true (others take contacts from their ConfigMap/Secret).
//! * `GET  …/campaigns/{campaign}/results` (viewer): contacts with state, attempts, last
//!   outcome and survey answers, paged by contact id (`cursor`, `limit`).
//! * `GET  …/campaigns/{campaign}/results.csv` (viewer): the same as CSV, one column per
//!   survey field (structured value) plus `<field>_raw` (the caller's words).
//! * `GET|POST /api/v1/tenants/{tenant}/do-not-call` (viewer / member) and
//!   `DELETE …/do-not-call/{phone}` (admin): the tenant's do-not-call list, honoured when
//!   contacts are registered or uploaded and again by the dialer before every claim.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_crds::internal_api::{Progress, Registration, RejectedRow};
use switchboard_crds::{CampaignPhase, CampaignSpec};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::record;
use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson};
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery};
use super::principal::TenantAccess;
use super::validate::{is_e164, rfc3339};
use crate::campaigns::{parse_contacts, progress_of, register_campaign, store_contacts};
use crate::state::AppState;
use crate::store::campaigns::{self, CampaignRow};
use crate::store::dialer::{self as rows, ContactResult, DoNotCallRow};
use crate::store::tenants::Role;
use crate::store::{Tx, now_ms};

/// Largest contacts upload, in bytes (about 100,000 rows of a typical CSV).
pub const CONTACTS_UPLOAD_LIMIT: usize = 8 * 1024 * 1024;
/// Largest page of results.
const RESULTS_PAGE_MAX: i64 = 1000;
/// Largest CSV export, in contacts.
const EXPORT_LIMIT: i64 = 200_000;

/// The routes of this module, merged into the API router.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, put_campaign, delete_campaign))
        .routes(routes!(upload_contacts))
        .routes(routes!(results))
        .routes(routes!(results_csv))
        .routes(routes!(list_do_not_call, add_do_not_call))
        .routes(routes!(remove_do_not_call))
}

async fn campaign_of(
    tx: &mut Tx,
    access: &TenantAccess,
    name: &str,
) -> Result<CampaignRow, ApiError> {
    campaigns::get(tx, &access.tenant.id, name)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("campaign"))
}

/// A campaign in the list (its progress: `GET …/campaigns/{campaign}`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSummary {
    /// Campaign name.
    pub name: String,
    /// `Pending`, `Running`, `Paused`, `Completed` or `Failed`.
    pub phase: String,
    /// Caller id (E.164).
    pub from_number: String,
    /// Why the dialer is holding, while it is.
    pub reason: Option<String>,
    /// Registration time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// `GET /api/v1/tenants/{tenant}/campaigns` (viewer): the tenant's campaigns, paged.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/campaigns", tag = "campaigns",
    params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<CampaignSummary>), (status = 422, body = super::errors::ErrorBody, description = "Invalid cursor or limit"),
              (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<CampaignSummary>>, ApiError> {
    access.require(Role::Viewer)?;
    let limit = page.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = page.cursor()?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = campaigns::list(
        &mut tx,
        &access.tenant.id,
        after.as_deref(),
        PageQuery::fetch_limit(limit),
    )
    .await?;
    tx.commit().await?;
    let page = Page::from_fetched(rows, limit, |row| row.name.clone());
    Ok(Json(page.map(|r| CampaignSummary {
        name: r.name,
        phase: r.phase,
        from_number: r.from_number,
        reason: r.reason,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    })))
}

/// `GET /api/v1/tenants/{tenant}/campaigns/{campaign}`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/campaigns/{campaign}", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), ("campaign" = String, Path, description = "Campaign name")),
    responses((status = 200, body = CampaignView), (status = 404, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    access: TenantAccess,
    Path((_, name)): Path<(String, String)>,
) -> Result<Json<CampaignView>, ApiError> {
    access.require(Role::Viewer)?;
    let progress = progress_of(&state.store, &access.tenant.id, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("campaign"))?;
    let mut tx = state.store.read(&access.scope()).await?;
    let row = campaigns::get(&mut tx, &access.tenant.id, &name).await?;
    tx.commit().await?;
    let spec = row
        .map(|row| serde_json::from_str(&row.spec))
        .transpose()
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Json(CampaignView { progress, spec }))
}

/// One campaign: its progress, and the spec it runs as registered — what a `PUT` changes (a
/// client pauses it by sending the spec back with `suspend: true`, and resumes it with
/// `false`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignView {
    /// Progress and the reason the dialer is holding, if it is.
    #[serde(flatten)]
    pub progress: Progress,
    /// The `Campaign` spec (as in the CRD); absent only for a campaign not registered yet.
    #[schema(value_type = Option<Object>)]
    pub spec: Option<Value>,
}

/// Checks a campaign name (a Kubernetes object name: DNS-1123 label).
fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "campaign",
            "invalid_name",
            "campaign names are 1-63 lower-case letters, digits and '-', not starting or ending with '-'",
        ))
    }
}

async fn require_campaigns_in_plan(
    state: &AppState,
    access: &TenantAccess,
) -> Result<(), ApiError> {
    let mut tx = state.store.read(&access.scope()).await?;
    let limits = access.limits(state, &mut tx).await?;
    tx.commit().await?;
    if limits.campaigns {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "limit_exceeded",
            "the tenant's plan does not include campaigns",
        ))
    }
}

/// `PUT /api/v1/tenants/{tenant}/campaigns/{campaign}` (admin).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/campaigns/{campaign}", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), ("campaign" = String, Path, description = "Campaign name")),
    request_body(content = Object, description = "The Campaign spec (as in the CRD)"),
    responses((status = 201, body = Progress, description = "Registered (standalone)"), (status = 200, body = Progress, description = "Changed (standalone)"),
              (status = 202, body = AppliedCampaign, description = "Campaign applied; the operator registers it (Kubernetes)"), (status = 422, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn put_campaign(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, name)): Path<(String, String)>,
    ApiJson(spec): ApiJson<CampaignSpec>,
) -> Result<Response, ApiError> {
    access.require(Role::Admin)?;
    validate_name(&name)?;
    // The CRD's schema and CEL rules, checked here too (standalone mode has no admission).
    spec.validate()?;
    require_known_agent(&access, &spec)?;
    access.require_stack(&state)?;
    require_campaigns_in_plan(&state, &access).await?;
    if state.sandbox.is_some() {
        return register_standalone(&state, &access, &client, &name, spec).await;
    }
    if let Some(kube) = state.kube.client() {
        let namespace = state.config.tenant_naming().namespace(&access.tenant.slug);
        let mut object = switchboard_crds::Campaign::new(&name, spec);
        object.metadata.namespace = Some(namespace.clone());
        // Never forced: a Campaign a manifest (kubectl, GitOps) holds is not taken over; the
        // API server's conflict, which names that manager, becomes the answer.
        kube::Api::<switchboard_crds::Campaign>::namespaced(kube.clone(), &namespace)
            .patch(
                &name,
                &kube::api::PatchParams::apply(crate::kube::FIELD_MANAGER),
                &kube::api::Patch::Apply(&object),
            )
            .await
            .map_err(|e| match e {
                kube::Error::Api(status) if status.code == 409 => ApiError::conflict(
                    "field_managed_elsewhere",
                    format!("Campaign {name} is managed elsewhere: {}", status.message),
                ),
                e => ApiError::unavailable(format!("cannot apply the Campaign: {e}")),
            })?;
        audit_campaign(&state, &access, &client, "campaign.applied", &name).await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(AppliedCampaign {
                name,
                phase: CampaignPhase::Pending,
            }),
        )
            .into_response());
    }
    Err(ApiError::unavailable(
        "campaigns are created as Campaign objects in Kubernetes, or here in standalone mode",
    ))
}

/// A campaign naming an agent the tenant does not have would fall back to the default agent
/// at call time without a word; refuse it here instead, naming the field.
fn require_known_agent(access: &TenantAccess, spec: &CampaignSpec) -> Result<(), ApiError> {
    match spec.agent.as_ref().and_then(|agent| agent.name.as_deref()) {
        Some(name) if name != switchboard_crds::agents::DEFAULT_AGENT => {
            super::agents::require_named_agent(access, "agent.name", name)
        }
        _ => Ok(()),
    }
}

/// A `Campaign` applied in Kubernetes, before the operator has registered it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedCampaign {
    /// Campaign name.
    pub name: String,
    /// Always `Pending` here.
    pub phase: CampaignPhase,
}

/// Standalone mode: the gateway is the operator. `fromNumber` must be one of the tenant's
/// routed numbers and contacts are uploaded.
async fn register_standalone(
    state: &AppState,
    access: &TenantAccess,
    client: &ClientInfo,
    name: &str,
    spec: CampaignSpec,
) -> Result<Response, ApiError> {
    let number = state
        .numbers
        .route(&state.store, &spec.from_number)
        .await?
        .filter(|n| n.tenant_id == access.tenant.id)
        .ok_or_else(|| {
            ApiError::invalid(
                "fromNumber",
                "unknown_number",
                "fromNumber must be one of this tenant's numbers, E.164",
            )
        })?;
    if !spec.contacts.uploaded {
        return Err(ApiError::invalid(
            "contacts",
            "invalid_contacts",
            "standalone campaigns take uploaded contacts: set contacts.uploaded to true",
        ));
    }
    let mut tx = state.store.read(&access.scope()).await?;
    let existing = campaigns::get(&mut tx, &access.tenant.id, name)
        .await?
        .filter(|c| c.deleted_at.is_none());
    tx.commit().await?;
    let (uid, generation) = match &existing {
        Some(row) => (row.uid.clone(), row.generation + 1),
        None => (crate::store::new_id(), 1),
    };
    register_campaign(
        &state.store,
        &access.tenant.id,
        name,
        Registration {
            namespace: "standalone".to_owned(),
            uid,
            generation,
            spec,
            from_number: number.e164,
            contacts_csv: None,
        },
    )
    .await?;
    audit_campaign(state, access, client, "campaign.registered", name).await?;
    let progress = progress_of(&state.store, &access.tenant.id, name)
        .await?
        .ok_or_else(|| ApiError::not_found("campaign"))?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(progress)).into_response())
}

async fn audit_campaign(
    state: &AppState,
    access: &TenantAccess,
    client: &ClientInfo,
    action: &str,
    name: &str,
) -> Result<(), ApiError> {
    let mut tx = state.store.write(&access.scope()).await?;
    record(
        &mut tx,
        access,
        client,
        action,
        ("campaign", name),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `DELETE /api/v1/tenants/{tenant}/campaigns/{campaign}` (admin): stops dialling (calls under
/// way finish). In Kubernetes mode it deletes the `Campaign`, whose finalizer stops the dialer.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/campaigns/{campaign}", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), ("campaign" = String, Path, description = "Campaign name")),
    responses((status = 204, description = "Dialling stopped (standalone)"), (status = 202, description = "Campaign deleted (Kubernetes)"), (status = 404, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn delete_campaign(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    if state.sandbox.is_none()
        && let Some(kube) = state.kube.client()
    {
        let namespace = state.config.tenant_naming().namespace(&access.tenant.slug);
        let api = kube::Api::<switchboard_crds::Campaign>::namespaced(kube.clone(), &namespace);
        return match api.delete(&name, &Default::default()).await {
            Ok(_) => {
                audit_campaign(&state, &access, &client, "campaign.deleted", &name).await?;
                Ok(StatusCode::ACCEPTED)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Err(ApiError::not_found("campaign")),
            Err(e) => Err(ApiError::unavailable(format!(
                "cannot delete the Campaign: {e}"
            ))),
        };
    }
    let mut tx = state.store.write(&access.scope()).await?;
    campaign_of(&mut tx, &access, &name).await?;
    campaigns::stop(&mut tx, &access.tenant.id, &name, now_ms()).await?;
    record(
        &mut tx,
        &access,
        &client,
        "campaign.stopped",
        ("campaign", &name),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Result of a contacts upload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadResult {
    /// Rows stored now.
    pub accepted: usize,
    /// Rows not stored, with the reason.
    pub rejected: Vec<RejectedRow>,
    /// Contacts the campaign has now.
    pub total: i64,
}

/// `POST /api/v1/tenants/{tenant}/campaigns/{campaign}/contacts`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/campaigns/{campaign}/contacts", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), ("campaign" = String, Path, description = "Campaign name")),
    request_body(content = String, content_type = "text/csv", description = "CSV with a `phone` column; optional `id`, `name` and variable columns"),
    responses((status = 200, body = UploadResult), (status = 409, body = super::errors::ErrorBody), (status = 413, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn upload_contacts(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, name)): Path<(String, String)>,
    body: Body,
) -> Result<Json<UploadResult>, ApiError> {
    access.require(Role::Member)?;
    let bytes = axum::body::to_bytes(body, CONTACTS_UPLOAD_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("contacts upload is larger than {CONTACTS_UPLOAD_LIMIT} bytes; split it"),
            )
        })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::invalid("contacts", "invalid_csv", "the CSV is not UTF-8"))?;
    let (parsed, mut rejected) =
        parse_contacts(text).map_err(|e| ApiError::invalid("contacts", "invalid_csv", e))?;
    let tenant = access.tenant.id.as_str();
    let mut tx = state.store.write(&access.scope()).await?;
    let campaign = campaign_of(&mut tx, &access, &name).await?;
    let uploads_allowed = serde_json::from_str::<CampaignSpec>(&campaign.spec)
        .map(|spec| spec.contacts.uploaded)
        .unwrap_or(false);
    if !uploads_allowed {
        return Err(ApiError::conflict(
            "contacts_from_cluster",
            "this campaign takes its contacts from a ConfigMap or Secret; set contacts.uploaded to upload",
        ));
    }
    let known = known_contacts(&mut tx, tenant, &name).await?;
    let now = now_ms();
    let accepted = store_contacts(
        &mut tx,
        tenant,
        &name,
        &parsed,
        |contact| {
            (known.ids.contains(&contact.id) || known.phones.contains(&contact.phone))
                .then(|| "already in the campaign (same phone or id)".to_owned())
        },
        &mut rejected,
        now,
    )
    .await?;
    if accepted > 0 && campaign.phase == CampaignPhase::Completed.as_str() {
        // New contacts reopen a finished campaign.
        campaigns::set_phase_if(&mut tx, tenant, &name, CampaignPhase::Running.as_str(), now)
            .await?;
    }
    record(
        &mut tx,
        &access,
        &client,
        "campaign.contacts_uploaded",
        ("campaign", &name),
        json!({"accepted": accepted, "rejected": rejected.len()}),
    )
    .await?;
    let total = campaigns::state_counts(&mut tx, tenant, &name)
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum();
    tx.commit().await?;
    Ok(Json(UploadResult {
        accepted,
        rejected,
        total,
    }))
}

struct Known {
    ids: HashSet<String>,
    phones: HashSet<String>,
}

async fn known_contacts(tx: &mut Tx, tenant: &str, campaign: &str) -> Result<Known, ApiError> {
    let mut known = Known {
        ids: HashSet::new(),
        phones: HashSet::new(),
    };
    let mut after = String::new();
    loop {
        let page = rows::results(tx, tenant, campaign, &after, RESULTS_PAGE_MAX).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id.clone();
        for contact in page {
            known.ids.insert(contact.id);
            known.phones.insert(contact.phone);
        }
    }
    Ok(known)
}

/// One contact with its answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    /// Stored result.
    #[serde(flatten)]
    pub contact: ContactResult,
    /// CSV variables.
    #[schema(value_type = Object)]
    pub variables: Value,
    /// Survey answers by field: `{raw, value, callId}`.
    #[schema(value_type = Object)]
    pub answers: BTreeMap<String, Value>,
}

async fn page_with_answers(
    tx: &mut Tx,
    tenant: &str,
    campaign: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<ContactView>, ApiError> {
    let contacts = rows::results(tx, tenant, campaign, after, limit).await?;
    let (Some(first), Some(last)) = (contacts.first(), contacts.last()) else {
        return Ok(Vec::new());
    };
    let mut answers: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for answer in rows::answers_between(tx, tenant, campaign, &first.id, &last.id).await? {
        let value: Value = serde_json::from_str(&answer.value).unwrap_or(Value::Null);
        answers
            .entry(answer.contact_id.clone())
            .or_default()
            .insert(
                answer.field.clone(),
                json!({"raw": answer.raw, "value": value, "callId": answer.call_id}),
            );
    }
    Ok(contacts
        .into_iter()
        .map(|contact| ContactView {
            variables: serde_json::from_str(&contact.variables).unwrap_or(Value::Null),
            answers: answers.remove(&contact.id).unwrap_or_default(),
            contact,
        })
        .collect())
}

/// `GET /api/v1/tenants/{tenant}/campaigns/{campaign}/results`: contacts by id (pages of
/// 1–1000, default 100).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/campaigns/{campaign}/results", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), ("campaign" = String, Path, description = "Campaign name"), PageQuery),
    responses((status = 200, body = Page<ContactView>), (status = 404, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn results(
    State(state): State<AppState>,
    access: TenantAccess,
    Path((_, name)): Path<(String, String)>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ContactView>>, ApiError> {
    access.require(Role::Viewer)?;
    let limit = page.limit(100, RESULTS_PAGE_MAX)?;
    let after = page.cursor()?.unwrap_or_default();
    let mut tx = state.store.read(&access.scope()).await?;
    campaign_of(&mut tx, &access, &name).await?;
    let items = page_with_answers(
        &mut tx,
        &access.tenant.id,
        &name,
        &after,
        PageQuery::fetch_limit(limit),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Page::from_fetched(items, limit, |item| {
        item.contact.id.clone()
    })))
}

/// `GET /api/v1/tenants/{tenant}/campaigns/{campaign}/results.csv`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/campaigns/{campaign}/results.csv", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), ("campaign" = String, Path, description = "Campaign name")),
    responses((status = 200, content_type = "text/csv", body = String, description = "One row per contact; one column per survey field plus `<field>_raw`"), (status = 404, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn results_csv(
    State(state): State<AppState>,
    access: TenantAccess,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    access.require(Role::Viewer)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let campaign = campaign_of(&mut tx, &access, &name).await?;
    let items = page_with_answers(&mut tx, &access.tenant.id, &name, "", EXPORT_LIMIT).await?;
    tx.commit().await?;
    // Survey fields in question order, then any other answered field.
    let mut fields: Vec<String> = serde_json::from_str::<CampaignSpec>(&campaign.spec)
        .ok()
        .and_then(|spec| spec.agent)
        .map(|agent| agent.questions.into_iter().map(|q| q.field).collect())
        .unwrap_or_default();
    let answered: BTreeSet<&String> = items.iter().flat_map(|i| i.answers.keys()).collect();
    for field in answered {
        if !fields.contains(field) {
            fields.push(field.clone());
        }
    }
    let csv_error = |e: csv::Error| ApiError::internal(&e);
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = [
        "id",
        "phone",
        "name",
        "state",
        "attempts",
        "last_outcome",
        "last_call_id",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for field in &fields {
        header.push(field.clone());
        header.push(format!("{field}_raw"));
    }
    super::csv_export::write_row(&mut writer, &header).map_err(csv_error)?;
    for item in items {
        let c = &item.contact;
        let mut record = vec![
            c.id.clone(),
            c.phone.clone(),
            c.name.clone().unwrap_or_default(),
            c.state.clone(),
            c.attempts.to_string(),
            c.last_outcome.clone().unwrap_or_default(),
            c.last_call_id.clone().unwrap_or_default(),
        ];
        for field in &fields {
            let answer = item.answers.get(field);
            let value = answer
                .map(|a| &a["value"])
                .map_or(String::new(), |v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                });
            let raw = answer
                .and_then(|a| a["raw"].as_str())
                .unwrap_or_default()
                .to_owned();
            record.push(value);
            record.push(raw);
        }
        super::csv_export::write_row(&mut writer, &record).map_err(csv_error)?;
    }
    let bytes = writer.into_inner().map_err(|e| ApiError::internal(&e))?;
    let disposition = format!("attachment; filename=\"{name}-results.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/tenants/{tenant}/do-not-call`: by number.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/do-not-call", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<DoNotCallRow>), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn list_do_not_call(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<DoNotCallRow>>, ApiError> {
    access.require(Role::Viewer)?;
    let limit = page.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = page.cursor()?.unwrap_or_default();
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = rows::list_do_not_call(
        &mut tx,
        &access.tenant.id,
        &after,
        PageQuery::fetch_limit(limit),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Page::from_fetched(rows, limit, |row| {
        row.phone.clone()
    })))
}

/// A number to stop calling.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDoNotCall {
    /// E.164 number.
    pub phone: String,
    /// Why (free text, at most 200 characters).
    pub reason: Option<String>,
}

/// Answer to adding a number to the do-not-call list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoNotCallAdded {
    /// The number, E.164.
    pub phone: String,
    /// `false` when it was listed already.
    pub added: bool,
}

/// `POST /api/v1/tenants/{tenant}/do-not-call`: 201 when added, 200 when already listed.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/do-not-call", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id")), request_body = NewDoNotCall,
    responses((status = 201, body = DoNotCallAdded, description = "Added"), (status = 200, body = DoNotCallAdded, description = "Already listed"), (status = 422, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn add_do_not_call(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(body): ApiJson<NewDoNotCall>,
) -> Result<(StatusCode, Json<DoNotCallAdded>), ApiError> {
    access.require(Role::Member)?;
    let phone = body.phone.trim();
    if !is_e164(phone) {
        return Err(ApiError::invalid(
            "phone",
            "invalid_number",
            "phone must be E.164, e.g. +15550100",
        ));
    }
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 200)
    {
        return Err(ApiError::invalid(
            "reason",
            "too_long",
            "reason must be at most 200 characters",
        ));
    }
    let mut tx = state.store.write(&access.scope()).await?;
    let added = rows::add_do_not_call(
        &mut tx,
        &access.tenant.id,
        phone,
        body.reason.as_deref(),
        now_ms(),
    )
    .await?;
    if added {
        record(
            &mut tx,
            &access,
            &client,
            "do_not_call.added",
            ("phone", phone),
            json!({}),
        )
        .await?;
    }
    tx.commit().await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DoNotCallAdded {
            phone: phone.to_owned(),
            added,
        }),
    ))
}

/// `DELETE /api/v1/tenants/{tenant}/do-not-call/{phone}` (admin: removing a number allows
/// calling it again).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/do-not-call/{phone}", tag = "campaigns", params(("tenant" = String, Path, description = "Tenant slug or id"), ("phone" = String, Path, description = "E.164 number")),
    responses((status = 204, description = "Removed"), (status = 404, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn remove_do_not_call(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, phone)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.write(&access.scope()).await?;
    if !rows::remove_do_not_call(&mut tx, &access.tenant.id, &phone).await? {
        return Err(ApiError::not_found("do-not-call entry"));
    }
    record(
        &mut tx,
        &access,
        &client,
        "do_not_call.removed",
        ("phone", &phone),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
