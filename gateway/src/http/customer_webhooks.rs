//! Customer webhook endpoints over the API (admins) and the delivery log.
//!
//! * `GET|POST …/webhooks`, `PATCH|DELETE …/webhooks/{id}`: list, register (the signing
//!   secret is shown once), change URL, events or enabled state, remove.
//! * `POST …/webhooks/{id}/rotate-secret`: a new secret, shown once. The replaced one keeps
//!   signing beside it for a grace period (`gracePeriodHours`, default
//!   [`ROTATION_GRACE_HOURS`], at most [`ROTATION_GRACE_MAX_HOURS`]; 0 ends it at once): every
//!   delivery meanwhile carries both signatures in `webhook-signature` (space-separated, as
//!   the Standard Webhooks spec and Svix do), so a receiver verifies with either secret and
//!   can switch without losing a message.
//! * `POST …/webhooks/{id}/test`: queues a `webhook.test` message to that endpoint.
//! * `GET …/webhooks/deliveries`, `POST …/webhooks/deliveries/{id}/resend`: the delivery log;
//!   a resend delivers the same message (same `webhook-id`) again now.
//!
//! Every change is audited.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::record;
use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson};
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery, split_key};
use super::principal::TenantAccess;
use super::validate::rfc3339;
use crate::outbox::{EVENT_TYPES, enqueue_test, new_endpoint, new_sealed_secret};
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::tenants::Role;
use crate::store::webhooks::{self, EndpointRow, OutboxRow};

/// The customer-webhook routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(deliveries))
        .routes(routes!(resend))
        .routes(routes!(self::delete, update))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
}

/// Default grace period of a replaced secret, in hours.
pub const ROTATION_GRACE_HOURS: u32 = 24;
/// Longest grace period of a replaced secret, in hours (a week).
pub const ROTATION_GRACE_MAX_HOURS: u32 = 168;

/// Body of a new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointBody {
    /// `https://…` (or `http://` for local development).
    pub url: String,
    /// Event types; all when absent.
    pub events: Option<Vec<String>>,
}

/// An endpoint as shown (the secret only once, at creation or rotation).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    /// Endpoint id.
    pub id: String,
    /// URL.
    pub url: String,
    /// Subscribed events (`*` for all).
    pub events: Vec<String>,
    /// Whether messages are delivered to it.
    pub enabled: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Until when the secret replaced by the last rotation still signs (RFC 3339), while it
    /// does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
    /// Signing secret (creation and rotation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn view(row: EndpointRow, secret: Option<String>) -> EndpointView {
    let now = now_ms();
    EndpointView {
        id: row.id,
        url: row.url,
        events: row.events.split_whitespace().map(str::to_owned).collect(),
        enabled: row.disabled_at.is_none(),
        created_at: rfc3339(row.created_at),
        previous_secret_expires_at: row
            .previous_expires_at
            .filter(|until| *until > now)
            .map(rfc3339),
        secret,
    }
}

/// Checks an endpoint URL against the outbound policy (no internal targets; checked again on
/// the resolved address at every delivery). Returns the trimmed URL and its host.
fn checked_url(state: &AppState, url: &str) -> Result<(String, Option<String>), ApiError> {
    let url = url.trim();
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| ApiError::invalid("url", "invalid_url", "not a URL"))?;
    switchboard_crds::outbound::check_target(
        parsed.scheme(),
        parsed.host_str().unwrap_or_default(),
        state.config.outbound_allow_private,
    )
    .map_err(|e| ApiError::invalid("url", "url_not_allowed", e.to_string()))?;
    Ok((url.to_owned(), parsed.host_str().map(str::to_owned)))
}

/// Checks subscribed event types (`*` or known ones); returns them space-separated.
fn checked_events(events: &[String]) -> Result<String, ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "no_events",
            "subscribe to at least one event type, or \"*\"",
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| *e != "*" && !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(ApiError::invalid(
            "events",
            "unknown_event",
            format!("unknown event type {bad:?}"),
        ));
    }
    Ok(events.join(" "))
}

/// `POST /api/v1/tenants/{tenant}/webhooks`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks", params(("tenant" = String, Path, description = "Tenant slug or id")),
    request_body = EndpointBody,
    responses((status = 201, body = EndpointView, description = "Endpoint registered; its signing secret is shown once"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(body): ApiJson<EndpointBody>,
) -> Result<(StatusCode, Json<EndpointView>), ApiError> {
    access.require(Role::Admin)?;
    let (url, host) = checked_url(&state, &body.url)?;
    let events = checked_events(&body.events.unwrap_or_else(|| vec!["*".to_owned()]))?;
    let (row, secret) = new_endpoint(&state.keyring, &access.tenant.id, &url, &events)
        .map_err(|e| ApiError::internal(&e))?;
    let mut tx = state.store.write(&access.scope()).await?;
    webhooks::insert_endpoint(&mut tx, &row).await?;
    record(
        &mut tx,
        &access,
        &client,
        "webhook_endpoint.created",
        ("webhook_endpoint", &row.id),
        // The host only: a URL's path or query may carry the receiver's own token.
        json!({"host": host, "events": row.events}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(row, Some(secret)))))
}

/// `GET /api/v1/tenants/{tenant}/webhooks`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<EndpointView>, description = "Registered endpoints"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<EndpointView>>, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = webhooks::endpoints(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    let all = rows.into_iter().map(|r| view(r, None)).collect();
    Ok(Json(Page::of_all(all, &page)?))
}

/// `DELETE /api/v1/tenants/{tenant}/webhooks/{id}`.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/webhooks/{id}", tag = "webhooks", params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Removed"), (status = 404, body = super::errors::ErrorBody, description = "No such endpoint"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.write(&access.scope()).await?;
    let found = webhooks::delete_endpoint(&mut tx, &access.tenant.id, &id).await?;
    if found {
        record(
            &mut tx,
            &access,
            &client,
            "webhook_endpoint.deleted",
            ("webhook_endpoint", &id),
            json!({}),
        )
        .await?;
    }
    tx.commit().await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook endpoint"))
    }
}

/// `GET /api/v1/tenants/{tenant}/webhooks/deliveries`: messages and their state, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/webhooks/deliveries", tag = "webhooks", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<OutboxRow>, description = "Delivery attempts with their status, newest first"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<OutboxRow>>, ApiError> {
    access.require(Role::Admin)?;
    let limit = page.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = page.cursor()?.as_deref().map(split_key).transpose()?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = webhooks::outbox_for_tenant(
        &mut tx,
        &access.tenant.id,
        before,
        PageQuery::fetch_limit(limit),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Page::from_fetched(rows, limit, |row| {
        format!("{}:{}", row.created_at, row.id)
    })))
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointPatch {
    /// New URL.
    pub url: Option<String>,
    /// New event types (`*` for all).
    pub events: Option<Vec<String>>,
    /// `false` stops deliveries (messages are no longer queued for it); `true` resumes them.
    pub enabled: Option<bool>,
}

async fn endpoint_of(
    state: &AppState,
    access: &TenantAccess,
    id: &str,
) -> Result<EndpointRow, ApiError> {
    let mut tx = state.store.read(&access.scope()).await?;
    let row = webhooks::endpoint(&mut tx, &access.tenant.id, id).await?;
    tx.commit().await?;
    row.ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// `PATCH /api/v1/tenants/{tenant}/webhooks/{id}` (admin): changes URL, events or enabled.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/webhooks/{id}", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Endpoint id")),
    request_body = EndpointPatch,
    responses((status = 200, body = EndpointView, description = "The endpoint as changed"), (status = 404, body = super::errors::ErrorBody),
              (status = 422, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    access.require(Role::Admin)?;
    let current = endpoint_of(&state, &access, &id).await?;
    let (url, host) = match &patch.url {
        Some(url) => checked_url(&state, url)?,
        None => (current.url.clone(), None),
    };
    let events = match &patch.events {
        Some(events) => checked_events(events)?,
        None => current.events.clone(),
    };
    let disabled_at = match patch.enabled {
        Some(true) => None,
        Some(false) => current.disabled_at.or(Some(now_ms())),
        None => current.disabled_at,
    };
    let mut tx = state.store.write(&access.scope()).await?;
    if !webhooks::update_endpoint(&mut tx, &access.tenant.id, &id, &url, &events, disabled_at)
        .await?
    {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    record(
        &mut tx,
        &access,
        &client,
        "webhook_endpoint.updated",
        ("webhook_endpoint", &id),
        // The new host only: a URL's path or query may carry the receiver's own token.
        json!({"host": host, "events": patch.events.as_ref().map(|_| &events),
               "enabled": patch.enabled}),
    )
    .await?;
    let row = webhooks::endpoint(&mut tx, &access.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    tx.commit().await?;
    Ok(Json(view(row, None)))
}

/// Body of a secret rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RotateSecret {
    /// Hours the replaced secret keeps signing beside the new one (default 24, at most 168;
    /// 0 ends it at once).
    pub grace_period_hours: Option<u32>,
}

/// `POST /api/v1/tenants/{tenant}/webhooks/{id}/rotate-secret` (admin): a new signing secret,
/// shown once; the replaced one signs too until the grace period ends.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Endpoint id")),
    request_body = RotateSecret,
    responses((status = 200, body = EndpointView, description = "The new secret (shown once) and the grace period's end"),
              (status = 404, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody),
              (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<EndpointView>, ApiError> {
    access.require(Role::Admin)?;
    // The body is optional: none means the default grace period.
    let request: RotateSecret = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSecret::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_body", format!("invalid JSON body: {e}")))?
    };
    let hours = request.grace_period_hours.unwrap_or(ROTATION_GRACE_HOURS);
    if hours > ROTATION_GRACE_MAX_HOURS {
        return Err(ApiError::invalid(
            "gracePeriodHours",
            "grace_period_too_long",
            format!("at most {ROTATION_GRACE_MAX_HOURS} hours"),
        ));
    }
    let (sealed, secret) = new_sealed_secret(&state.keyring, &access.tenant.id, &id)
        .map_err(|e| ApiError::internal(&e))?;
    let until = now_ms() + i64::from(hours) * 3_600_000;
    let mut tx = state.store.write(&access.scope()).await?;
    if !webhooks::rotate_secret(
        &mut tx,
        &access.tenant.id,
        &id,
        &sealed.key_id,
        &sealed.ciphertext,
        until,
    )
    .await?
    {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    record(
        &mut tx,
        &access,
        &client,
        "webhook_endpoint.secret_rotated",
        ("webhook_endpoint", &id),
        json!({"gracePeriodHours": hours}),
    )
    .await?;
    let row = webhooks::endpoint(&mut tx, &access.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    tx.commit().await?;
    Ok(Json(view(row, Some(secret))))
}

/// A queued message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedMessage {
    /// Message id (`webhook-id`); its delivery shows in the delivery log.
    pub id: String,
}

/// `POST /api/v1/tenants/{tenant}/webhooks/{id}/test` (admin): queues a `webhook.test` message
/// to the endpoint.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks/{id}/test", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Endpoint id")),
    responses((status = 202, body = QueuedMessage, description = "Queued; delivered by the outbox worker"),
              (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody, description = "The endpoint is disabled"),
              (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn send_test(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<QueuedMessage>), ApiError> {
    access.require(Role::Admin)?;
    let endpoint = endpoint_of(&state, &access, &id).await?;
    if endpoint.disabled_at.is_some() {
        return Err(ApiError::conflict(
            "endpoint_disabled",
            "this endpoint is disabled; enable it first",
        ));
    }
    let mut tx = state.store.write(&access.scope()).await?;
    let message = enqueue_test(&mut tx, &access.tenant.id, &id).await?;
    record(
        &mut tx,
        &access,
        &client,
        "webhook_endpoint.test_sent",
        ("webhook_endpoint", &id),
        json!({"messageId": message}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedMessage { id: message })))
}

/// `POST /api/v1/tenants/{tenant}/webhooks/deliveries/{id}/resend` (admin): delivers the same
/// message (same `webhook-id`) again now.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks/deliveries/{id}/resend", tag = "webhooks",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Message id (from the delivery log)")),
    responses((status = 202, body = QueuedMessage, description = "Scheduled now"),
              (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody, description = "The endpoint is disabled"),
              (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn resend(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<QueuedMessage>), ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.write(&access.scope()).await?;
    let Some(message) = webhooks::outbox_row(&mut tx, &access.tenant.id, &id).await? else {
        return Err(ApiError::not_found("webhook delivery"));
    };
    let endpoint = webhooks::endpoint(&mut tx, &access.tenant.id, &message.endpoint_id).await?;
    if endpoint.is_some_and(|e| e.disabled_at.is_some()) {
        return Err(ApiError::conflict(
            "endpoint_disabled",
            "this delivery's endpoint is disabled; enable it first",
        ));
    }
    webhooks::resend(&mut tx, &access.tenant.id, &id, now_ms()).await?;
    record(
        &mut tx,
        &access,
        &client,
        "webhook_delivery.resent",
        ("webhook_delivery", &id),
        json!({"endpointId": message.endpoint_id, "eventType": message.event_type}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedMessage { id })))
}
