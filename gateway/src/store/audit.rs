//! The audit log: security-relevant actions of a tenant, readable by its admins.

use serde_json::Value;
use sqlx::AnyConnection;

use super::{StoreError, new_id};

/// An action to record.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// Tenant the action concerns.
    pub tenant_id: &'a str,
    /// `user`, `api_key` or `system`.
    pub actor_type: &'a str,
    /// Id of the user or key.
    pub actor_id: Option<&'a str>,
    /// Dotted action name, e.g. `api_key.created`.
    pub action: &'a str,
    /// Kind of the object acted on.
    pub target_type: Option<&'a str>,
    /// Id of the object acted on.
    pub target_id: Option<&'a str>,
    /// Client IP address.
    pub ip: Option<&'a str>,
    /// Request id (`x-request-id`).
    pub request_id: Option<&'a str>,
    /// Extra facts (never secrets).
    pub details: Value,
}

/// A recorded action.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    /// Entry id.
    pub id: String,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    /// Id of the user or key.
    pub actor_id: Option<String>,
    /// Action name.
    pub action: String,
    /// Kind of the object acted on.
    pub target_type: Option<String>,
    /// Id of the object acted on.
    pub target_id: Option<String>,
    /// Client IP address.
    pub ip: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// JSON details.
    pub details: String,
    /// When (Unix ms).
    pub created_at: i64,
}

/// Appends an entry.
pub async fn record(
    conn: &mut AnyConnection,
    event: &AuditEvent<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, tenant_id, actor_type, actor_id, action, target_type, target_id, ip, request_id, details, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(new_id())
    .bind(event.tenant_id)
    .bind(event.actor_type)
    .bind(event.actor_id)
    .bind(event.action)
    .bind(event.target_type)
    .bind(event.target_id)
    .bind(event.ip)
    .bind(event.request_id)
    .bind(event.details.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest `limit` entries of a tenant, newest first; with `before` (the `created_at` and
/// `id` of the last entry of the previous page) only the entries after it in that order.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let (at, id) = before.unwrap_or((i64::MAX, String::new()));
    Ok(sqlx::query_as(
        "SELECT id, actor_type, actor_id, action, target_type, target_id, ip, request_id, details, created_at \
         FROM audit_log WHERE tenant_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(tenant_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
