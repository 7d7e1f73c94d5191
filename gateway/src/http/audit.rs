//! `GET /api/v1/tenants/{tenant}/audit-log` (admin) and the helper handlers use to record.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::context::ClientInfo;
use super::errors::ApiError;
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery, split_key};
use super::principal::TenantAccess;
use super::validate::rfc3339;
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::tenants::Role;
use crate::store::{Tx, now_ms};

/// The audit-log route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Records `action` on `(target type, target id)` by the caller of `access`.
pub async fn record(
    tx: &mut Tx,
    access: &TenantAccess,
    client: &ClientInfo,
    action: &str,
    target: (&str, &str),
    details: Value,
) -> Result<(), ApiError> {
    let (actor_type, actor_id) = access.principal.actor();
    let event = AuditEvent {
        tenant_id: &access.tenant.id,
        actor_type,
        actor_id: Some(actor_id),
        action,
        target_type: Some(target.0),
        target_id: Some(target.1),
        ip: Some(&client.ip),
        request_id: client.request_id.as_deref(),
        details,
    };
    audit::record(tx, &event, now_ms()).await?;
    Ok(())
}

/// One audit entry.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    /// Entry id.
    pub id: String,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    /// User or key id.
    pub actor_id: Option<String>,
    /// What happened, e.g. `api_key.created`.
    pub action: String,
    /// Kind of object.
    pub target_type: Option<String>,
    /// Object id.
    pub target_id: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Extra facts.
    #[schema(value_type = Object)]
    pub details: Value,
    /// When (RFC 3339).
    pub created_at: String,
}

/// `GET /api/v1/tenants/{tenant}/audit-log` (admin): newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit-log", tag = "audit", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<AuditEntryView>), (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<AuditEntryView>>, ApiError> {
    access.require(Role::Admin)?;
    let limit = page.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = page.cursor()?.as_deref().map(split_key).transpose()?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = audit::list(
        &mut tx,
        &access.tenant.id,
        before,
        PageQuery::fetch_limit(limit),
    )
    .await?;
    tx.commit().await?;
    let page = Page::from_fetched(rows, limit, |row| format!("{}:{}", row.created_at, row.id));
    Ok(Json(page.map(|row| AuditEntryView {
        details: serde_json::from_str(&row.details).unwrap_or(Value::Null),
        id: row.id,
        actor_type: row.actor_type,
        actor_id: row.actor_id,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        ip: row.ip,
        request_id: row.request_id,
        created_at: rfc3339(row.created_at),
    })))
}
