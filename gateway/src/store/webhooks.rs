//! Customer webhook endpoints, the outbox of pending deliveries and the delivery log.

use serde::Serialize;
use sqlx::AnyConnection;

use super::StoreError;

/// A customer's webhook endpoint. The signing secret is sealed (see `crypto`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    /// Endpoint id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Target URL.
    pub url: String,
    /// Subscribed event types, space-separated (`*` for all).
    pub events: String,
    /// Master key that sealed the secret.
    pub key_id: String,
    /// Sealed `whsec_…` secret.
    pub ciphertext: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// When disabled (Unix ms).
    pub disabled_at: Option<i64>,
    /// Master key that sealed the secret replaced last (rotation).
    pub previous_key_id: Option<String>,
    /// The secret replaced last, sealed; it signs beside the current one until
    /// `previous_expires_at`.
    pub previous_ciphertext: Option<String>,
    /// End of the replaced secret's grace period (Unix ms).
    pub previous_expires_at: Option<i64>,
}

impl EndpointRow {
    /// Whether this endpoint wants `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.disabled_at.is_none()
            && self
                .events
                .split_whitespace()
                .any(|e| e == "*" || e == event_type)
    }
}

const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, events, key_id, ciphertext, created_at, disabled_at, \
     previous_key_id, previous_ciphertext, previous_expires_at";

/// Adds an endpoint.
pub async fn insert_endpoint(
    conn: &mut AnyConnection,
    row: &EndpointRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, events, key_id, ciphertext, created_at, disabled_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.url)
    .bind(&row.events)
    .bind(&row.key_id)
    .bind(&row.ciphertext)
    .bind(row.created_at)
    .bind(row.disabled_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A tenant's endpoints.
pub async fn endpoints(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<EndpointRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY created_at"
    ))
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// One endpoint of a tenant.
pub async fn endpoint(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<EndpointRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Changes an endpoint's URL, events and enabled state; `false` when it does not exist.
pub async fn update_endpoint(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    url: &str,
    events: &str,
    disabled_at: Option<i64>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, events = $2, disabled_at = $3 WHERE tenant_id = $4 AND id = $5",
    )
    .bind(url)
    .bind(events)
    .bind(disabled_at)
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Replaces an endpoint's sealed secret; the current one becomes the previous one, valid
/// until `previous_expires_at`. `false` when the endpoint does not exist.
pub async fn rotate_secret(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    key_id: &str,
    ciphertext: &str,
    previous_expires_at: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE webhook_endpoints SET previous_key_id = key_id, previous_ciphertext = ciphertext, \
         previous_expires_at = $1, key_id = $2, ciphertext = $3 WHERE tenant_id = $4 AND id = $5",
    )
    .bind(previous_expires_at)
    .bind(key_id)
    .bind(ciphertext)
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Deletes an endpoint (and, by cascade, its pending deliveries).
pub async fn delete_endpoint(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// A pending or finished delivery.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxRow {
    /// Message id (`webhook-id`), stable across retries.
    pub id: String,
    /// Tenant id.
    #[serde(skip)]
    pub tenant_id: String,
    /// Endpoint id.
    pub endpoint_id: String,
    /// Event type.
    pub event_type: String,
    /// JSON body.
    #[serde(skip)]
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Next attempt (Unix ms).
    pub next_attempt_at: i64,
    /// Last failure.
    pub last_error: Option<String>,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Delivery time (Unix ms).
    pub delivered_at: Option<i64>,
}

const OUTBOX_COLUMNS: &str = "id, tenant_id, endpoint_id, event_type, payload, status, attempts, next_attempt_at, last_error, created_at, delivered_at";

/// Queues a delivery.
pub async fn enqueue(
    conn: &mut AnyConnection,
    id: &str,
    tenant_id: &str,
    endpoint_id: &str,
    event_type: &str,
    payload: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_outbox (id, tenant_id, endpoint_id, event_type, payload, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(endpoint_id)
    .bind(event_type)
    .bind(payload)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The outbox's backlog, for the metrics: pending deliveries and the oldest one's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Deliveries pending (due now or waiting for a retry).
    pub pending: i64,
    /// Creation time (Unix ms) of the oldest pending delivery.
    pub oldest_created_at: Option<i64>,
}

/// The pending deliveries of every tenant (system transaction).
pub async fn outbox_backlog(conn: &mut AnyConnection) -> Result<Backlog, StoreError> {
    let (pending, oldest_created_at): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM webhook_outbox WHERE status = 'pending'",
    )
    .fetch_one(conn)
    .await?;
    Ok(Backlog {
        pending,
        oldest_created_at,
    })
}

/// Pending deliveries due now, oldest first (system transaction).
pub async fn due(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM webhook_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Pushes a delivery's next attempt out (a lease, so a second worker does not send it too);
/// `false` when another worker leased it first.
pub async fn lease(
    conn: &mut AnyConnection,
    id: &str,
    seen_next: i64,
    until: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE webhook_outbox SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3",
    )
    .bind(until)
    .bind(id)
    .bind(seen_next)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records an attempt's result: delivered, retry at `next`, or failed for good.
#[allow(clippy::too_many_arguments)]
pub async fn finish_attempt(
    conn: &mut AnyConnection,
    row: &OutboxRow,
    status: &str,
    next_attempt_at: i64,
    status_code: Option<i64>,
    error: Option<&str>,
    duration_ms: i64,
    now: i64,
) -> Result<(), StoreError> {
    let attempt = row.attempts + 1;
    sqlx::query(
        "UPDATE webhook_outbox SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4, \
         delivered_at = CASE WHEN $1 = 'delivered' THEN $5 ELSE delivered_at END WHERE id = $6",
    )
    .bind(status)
    .bind(attempt)
    .bind(next_attempt_at)
    .bind(error)
    .bind(now)
    .bind(&row.id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, tenant_id, outbox_id, attempt, status_code, error, duration_ms, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(super::new_id())
    .bind(&row.tenant_id)
    .bind(&row.id)
    .bind(attempt)
    .bind(status_code)
    .bind(error)
    .bind(duration_ms)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// One delivery of a tenant.
pub async fn outbox_row(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<OutboxRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM webhook_outbox WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Schedules a delivery again, now, with the same message id (receivers dedupe on it); its
/// attempts so far stay counted. `false` when it does not exist.
pub async fn resend(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE webhook_outbox SET status = 'pending', next_attempt_at = $1 WHERE tenant_id = $2 AND id = $3",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// A tenant's deliveries, newest first; with `before` (`created_at`, `id` of the last one seen)
/// only those after it in that order.
pub async fn outbox_for_tenant(
    conn: &mut AnyConnection,
    tenant_id: &str,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let (at, id) = before.unwrap_or((i64::MAX, String::new()));
    Ok(sqlx::query_as(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM webhook_outbox WHERE tenant_id = $1 \
         AND (created_at < $2 OR (created_at = $2 AND id < $3)) ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(tenant_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
