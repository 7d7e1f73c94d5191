//! `GET /api/v1/tenants/{tenant}/audit-log` (admin) and the helper handlers use to record.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::context::ClientInfo;
use super::errors::ApiError;
use super::principal::TenantAccess;
use super::validate::rfc3339;
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::tenants::Role;
use crate::store::{Tx, now_ms};

/// The audit-log route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/tenants/{tenant}/audit-log", get(list))
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

/// Paging of the audit log.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries per page (1–200, default 50).
    pub limit: Option<i64>,
    /// Only entries older than this (Unix milliseconds; the `next_before` of the last page).
    pub before: Option<i64>,
}

/// One audit entry.
#[derive(Serialize, ToSchema)]
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

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// `GET /api/v1/tenants/{tenant}/audit-log` (admin).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit-log", tag = "audit", params(("tenant" = String, Path, description = "Tenant slug or id"), AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    access.require(Role::Admin)?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = audit::list(&mut tx, &access.tenant.id, query.before, limit).await?;
    tx.commit().await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.created_at))
        .flatten();
    let entries = rows
        .into_iter()
        .map(|row| AuditEntryView {
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
        })
        .collect();
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}
