//! Customer webhook endpoints over the API (admins) and the delivery log.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing;
use serde::{Deserialize, Serialize};

use serde_json::json;

use super::audit::record;
use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson};
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery, split_key};
use super::principal::TenantAccess;
use crate::outbox::{EVENT_TYPES, new_endpoint};
use crate::state::AppState;
use crate::store::tenants::Role;
use crate::store::webhooks::{self, EndpointRow, OutboxRow};

/// The customer-webhook routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/tenants/{tenant}/webhooks",
            routing::get(list).post(create),
        )
        .route(
            "/api/v1/tenants/{tenant}/webhooks/deliveries",
            routing::get(deliveries),
        )
        .route(
            "/api/v1/tenants/{tenant}/webhooks/{id}",
            routing::delete(self::delete),
        )
}

/// Body of a new endpoint.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointBody {
    /// `https://…` (or `http://` for local development).
    pub url: String,
    /// Event types; all when absent.
    pub events: Option<Vec<String>>,
}

/// An endpoint as shown (the secret only once, at creation).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    /// Endpoint id.
    pub id: String,
    /// URL.
    pub url: String,
    /// Subscribed events.
    pub events: Vec<String>,
    /// Signing secret (creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn view(row: EndpointRow, secret: Option<String>) -> EndpointView {
    EndpointView {
        id: row.id,
        url: row.url,
        events: row.events.split_whitespace().map(str::to_owned).collect(),
        secret,
    }
}

/// `POST /api/v1/tenants/{tenant}/webhooks`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 201, description = "Endpoint registered; its signing secret is shown once"), (status = 403, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(body): ApiJson<EndpointBody>,
) -> Result<(StatusCode, Json<EndpointView>), ApiError> {
    access.require(Role::Admin)?;
    let url = body.url.trim();
    let parsed = reqwest::Url::parse(url)
        .map_err(|_| ApiError::invalid("url", "invalid_url", "not a URL"))?;
    // No internal targets (SSRF); checked again on the resolved address at every delivery.
    switchboard_crds::outbound::check_target(
        parsed.scheme(),
        parsed.host_str().unwrap_or_default(),
        state.config.outbound_allow_private,
    )
    .map_err(|e| ApiError::invalid("url", "url_not_allowed", e.to_string()))?;
    let events = body.events.unwrap_or_else(|| vec!["*".to_owned()]);
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
    let (row, secret) = new_endpoint(&state.keyring, &access.tenant.id, url, &events.join(" "))
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
        json!({"host": parsed.host_str(), "events": row.events}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(row, Some(secret)))))
}

/// `GET /api/v1/tenants/{tenant}/webhooks`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/webhooks", tag = "webhooks", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, description = "Registered endpoints"), (status = 403, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
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
    responses((status = 204, description = "Removed"), (status = 404, description = "No such endpoint"), (status = 403, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
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
    responses((status = 200, description = "Recent delivery attempts with their status"), (status = 403, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
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
