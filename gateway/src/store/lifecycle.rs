//! The data lifecycle's SQL (migration 0019): retention settings and the deletions they
//! cause, a tenant's suspension and deletion state, the purge, the anonymisation of a deleted
//! account's traces, and the platform audit log that outlives tenants.

use sqlx::AnyConnection;

use super::{Flag, StoreError, new_id};

/// A tenant's lifecycle columns.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct LifecycleRow {
    /// The tenant's retention settings (`RetentionSettings` JSON).
    pub retention: String,
    /// When a platform admin suspended it (Unix ms).
    pub admin_suspended_at: Option<i64>,
    /// When an owner asked for its deletion (Unix ms).
    pub deletion_requested_at: Option<i64>,
    /// When its data is removed unless restored (Unix ms).
    pub purge_after: Option<i64>,
}

/// The lifecycle columns of a tenant (`None`: no such tenant).
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<LifecycleRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT retention, admin_suspended_at, deletion_requested_at, purge_after FROM tenants \
         WHERE id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?)
}

/// Stores the tenant's retention settings (JSON).
pub async fn set_retention(
    conn: &mut AnyConnection,
    tenant_id: &str,
    settings: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET retention = $1, updated_at = $2 WHERE id = $3")
        .bind(settings)
        .bind(now)
        .bind(tenant_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Suspends or resumes a tenant on a platform admin's word.
pub async fn set_admin_suspension(
    conn: &mut AnyConnection,
    tenant_id: &str,
    suspended: bool,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tenants SET suspended = $1, admin_suspended_at = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(suspended)
    .bind(suspended.then_some(now))
    .bind(now)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the tenant deleted: suspended now, purged after `purge_after` (Unix ms).
pub async fn request_deletion(
    conn: &mut AnyConnection,
    tenant_id: &str,
    now: i64,
    purge_after: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tenants SET suspended = $1, deletion_requested_at = $2, purge_after = $3, \
         updated_at = $2 WHERE id = $4",
    )
    .bind(true)
    .bind(now)
    .bind(purge_after)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Cancels a pending deletion; the tenant stays suspended only if a platform admin suspended
/// it. Returns whether it stays suspended.
pub async fn restore(
    conn: &mut AnyConnection,
    tenant_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let suspended: Option<Flag> = sqlx::query_scalar(
        "UPDATE tenants SET suspended = (admin_suspended_at IS NOT NULL), \
         deletion_requested_at = NULL, purge_after = NULL, updated_at = $1 WHERE id = $2 \
         RETURNING suspended",
    )
    .bind(now)
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?;
    Ok(suspended.is_some_and(|f| f.0))
}

/// Tenants whose grace period is over at `now`, at most `limit` (system read).
pub async fn due_purges(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tenants WHERE purge_after IS NOT NULL AND purge_after <= $1 \
         ORDER BY purge_after LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Removes the tenant and, through `ON DELETE CASCADE`, every row of every tenant table
/// (every table with a `tenant_id` references `tenants` that way). Returns whether it existed.
pub async fn purge(conn: &mut AnyConnection, tenant_id: &str) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Tenants with their plan and retention settings, paged by id (system read).
pub async fn retention_page(
    conn: &mut AnyConnection,
    after_id: &str,
    limit: i64,
) -> Result<Vec<(String, String, String)>, StoreError> {
    Ok(
        sqlx::query_as(
            "SELECT id, plan, retention FROM tenants WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(conn)
        .await?,
    )
}

/// What one retention pass removed for a tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Call records.
    pub calls: u64,
    /// Transcript turns (and campaign answers of calls past the transcript retention).
    pub transcript_turns: u64,
    /// Audit-log entries.
    pub audit_entries: u64,
    /// Call recordings (their objects and rows; `crate::recordings`).
    pub recordings: u64,
}

/// Deletes a tenant's call records started before `calls_before`, transcripts (turns and
/// the caller's words in campaign answers) of calls started before `transcripts_before`, and
/// audit-log entries before `audit_before` (Unix ms), with the operational traces of old calls
/// (runtime event ids, media stream claims, delivered or failed customer webhooks).
pub async fn enforce_retention(
    conn: &mut AnyConnection,
    tenant_id: &str,
    calls_before: i64,
    transcripts_before: i64,
    audit_before: i64,
) -> Result<Removed, StoreError> {
    let old_calls = "SELECT id FROM calls WHERE tenant_id = $1 AND started_at < $2";
    let turns = sqlx::query(&format!(
        "DELETE FROM call_turns WHERE tenant_id = $1 AND call_id IN ({old_calls})"
    ))
    .bind(tenant_id)
    .bind(transcripts_before)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query(&format!(
        "DELETE FROM campaign_answers WHERE tenant_id = $1 AND call_id IN ({old_calls})"
    ))
    .bind(tenant_id)
    .bind(transcripts_before)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM media_stream_claims WHERE tenant_id = $1 AND call_id IN ({old_calls})"
    ))
    .bind(tenant_id)
    .bind(calls_before)
    .execute(&mut *conn)
    .await?;
    let calls = sqlx::query("DELETE FROM calls WHERE tenant_id = $1 AND started_at < $2")
        .bind(tenant_id)
        .bind(calls_before)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    for sql in [
        "DELETE FROM runtime_events WHERE tenant_id = $1 AND received_at < $2",
        "DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND created_at < $2",
        "DELETE FROM webhook_outbox WHERE tenant_id = $1 AND created_at < $2 AND status <> 'pending'",
    ] {
        sqlx::query(sql)
            .bind(tenant_id)
            .bind(calls_before)
            .execute(&mut *conn)
            .await?;
    }
    let audit_entries =
        sqlx::query("DELETE FROM audit_log WHERE tenant_id = $1 AND created_at < $2")
            .bind(tenant_id)
            .bind(audit_before)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    Ok(Removed {
        calls,
        transcript_turns: turns,
        audit_entries,
        // Recordings live outside the database: `crate::recordings` removes them.
        recordings: 0,
    })
}

/// Slugs of the tenants (not pending deletion) whose only owner is `user_id` (system read).
pub async fn solely_owned_by(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT t.slug FROM tenants t JOIN memberships m ON m.tenant_id = t.id \
         WHERE m.user_id = $1 AND m.role = 'owner' AND t.deletion_requested_at IS NULL \
         AND (SELECT COUNT(*) FROM memberships o WHERE o.tenant_id = t.id AND o.role = 'owner') = 1 \
         ORDER BY t.slug",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// Deletes an account and removes what identifies the person everywhere (system write):
/// the user row (sessions, refresh and e-mail tokens go with it), memberships, invitations to
/// the address; in audit logs the actor, target and IP address of the person's entries and the
/// details naming the address; `created_by`/`invited_by` marks become [`DELETED_USER`].
pub async fn delete_account(
    conn: &mut AnyConnection,
    user_id: &str,
    email: &str,
) -> Result<(), StoreError> {
    for (sql, value) in [
        ("DELETE FROM memberships WHERE user_id = $1", user_id),
        ("DELETE FROM invitations WHERE email = $1", email),
        (
            "UPDATE audit_log SET actor_type = 'deleted_user', actor_id = NULL, ip = NULL \
             WHERE actor_id = $1",
            user_id,
        ),
        (
            "UPDATE audit_log SET target_id = NULL WHERE target_id = $1",
            user_id,
        ),
        (
            "UPDATE audit_log SET details = '{}' WHERE details LIKE '%' || $1 || '%'",
            email,
        ),
        (
            "UPDATE audit_log SET details = '{}' WHERE details LIKE '%' || $1 || '%'",
            user_id,
        ),
    ] {
        sqlx::query(sql).bind(value).execute(&mut *conn).await?;
    }
    // Stored idempotent answers of the person's requests (24-hour replay cache).
    sqlx::query("DELETE FROM idempotency_keys WHERE principal = $1")
        .bind(format!("user:{user_id}"))
        .execute(&mut *conn)
        .await?;
    for sql in [
        "UPDATE invitations SET invited_by = $2 WHERE invited_by = $1",
        "UPDATE api_keys SET created_by = $2 WHERE created_by = $1",
        "UPDATE provider_credentials SET created_by = $2 WHERE created_by = $1",
    ] {
        sqlx::query(sql)
            .bind(user_id)
            .bind(DELETED_USER)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What stands in for a deleted account where a row must name its author.
pub const DELETED_USER: &str = "deleted-user";

/// An entry of the platform audit log.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlatformAuditRow {
    /// Entry id.
    pub id: String,
    /// Dotted action name (`tenant.purged`, `account.deleted`, `tenant.suspended` …).
    pub action: String,
    /// The tenant concerned (an id, which names no person).
    pub tenant_id: Option<String>,
    /// `platform-admin`, `owner`, `user` or `system` (never an identity of a person).
    pub actor: String,
    /// JSON facts (counts, plan, reason), never personal data.
    pub details: String,
    /// When (Unix ms).
    pub created_at: i64,
}

/// Appends to the platform audit log (system write).
pub async fn record_platform(
    conn: &mut AnyConnection,
    action: &str,
    tenant_id: Option<&str>,
    actor: &str,
    details: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO platform_audit (id, action, tenant_id, actor, details, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(new_id())
    .bind(action)
    .bind(tenant_id)
    .bind(actor)
    .bind(details.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The platform audit entries about a tenant, oldest first (system read).
pub async fn platform_entries(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<PlatformAuditRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, action, tenant_id, actor, details, created_at FROM platform_audit \
         WHERE tenant_id = $1 ORDER BY created_at, id",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// A tenant as the platform admin lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminTenantRow {
    /// Tenant id.
    pub id: String,
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan.
    pub plan: String,
    /// Suspended (by anyone).
    pub suspended: Flag,
    /// `signup` or `manifest`.
    pub origin: String,
    /// Creation (Unix ms).
    pub created_at: i64,
    /// A platform admin's suspension (Unix ms).
    pub admin_suspended_at: Option<i64>,
    /// Pending deletion since (Unix ms).
    pub deletion_requested_at: Option<i64>,
    /// Purged after (Unix ms).
    pub purge_after: Option<i64>,
    /// Tenant CR deleted (Unix ms).
    pub detached_at: Option<i64>,
    /// The stored limit overrides (`LimitPatch` JSON; `{}` when none).
    pub limit_overrides: Option<String>,
}

/// Every tenant after `after_id`, by id, at most `limit` (system read).
pub async fn admin_page(
    conn: &mut AnyConnection,
    after_id: &str,
    limit: i64,
) -> Result<Vec<AdminTenantRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.slug, t.name, t.plan, t.suspended, t.origin, t.created_at, \
         t.admin_suspended_at, t.deletion_requested_at, t.purge_after, t.detached_at, \
         b.limit_overrides FROM tenants t LEFT JOIN billing_accounts b ON b.tenant_id = t.id \
         WHERE t.id > $1 ORDER BY t.id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Tenants per `(plan, status)`, status one of `active`, `suspended`, `pendingDeletion`,
/// `detached` (system read).
pub async fn tenant_counts(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT plan, CASE WHEN deletion_requested_at IS NOT NULL THEN 'pendingDeletion' \
         WHEN detached_at IS NOT NULL THEN 'detached' \
         WHEN suspended THEN 'suspended' ELSE 'active' END AS status, COUNT(*) \
         FROM tenants GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(conn)
    .await?)
}

/// Replaces the tenant's stored limit overrides (`LimitPatch` JSON), creating its billing row
/// when it has none.
pub async fn set_limit_overrides(
    conn: &mut AnyConnection,
    tenant_id: &str,
    overrides: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO billing_accounts (tenant_id, limit_overrides, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET limit_overrides = excluded.limit_overrides, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(overrides)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Customer-webhook deliveries given up on, across tenants (system read).
pub async fn failed_deliveries(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_outbox WHERE status = 'failed'")
            .fetch_one(conn)
            .await?,
    )
}

/// A table holding secrets sealed under the master key (`key_id`, `ciphertext`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// Tenants' provider and carrier credentials.
    ProviderCredentials,
    /// Customer-webhook signing secrets.
    WebhookEndpoints,
    /// Customer-webhook secrets replaced by a rotation, still signing in their grace period.
    WebhookPreviousSecrets,
}

impl SealedTable {
    /// `(table, key id column, ciphertext column)`.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            SealedTable::ProviderCredentials => ("provider_credentials", "key_id", "ciphertext"),
            SealedTable::WebhookEndpoints => ("webhook_endpoints", "key_id", "ciphertext"),
            SealedTable::WebhookPreviousSecrets => (
                "webhook_endpoints",
                "previous_key_id",
                "previous_ciphertext",
            ),
        }
    }
}

/// A sealed secret's row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedRow {
    /// Row id.
    pub id: String,
    /// Tenant id (part of the associated data).
    pub tenant_id: String,
    /// Id of the master key that sealed it.
    pub key_id: String,
    /// The sealed secret.
    pub ciphertext: String,
}

/// Rows of `table` sealed under another key than `current`, after `after_id`, by id (system
/// read).
pub async fn sealed_under_other_keys(
    conn: &mut AnyConnection,
    table: SealedTable,
    current: &str,
    after_id: &str,
    limit: i64,
) -> Result<Vec<SealedRow>, StoreError> {
    let (table, key, cipher) = table.columns();
    Ok(sqlx::query_as(&format!(
        "SELECT id, tenant_id, {key} AS key_id, {cipher} AS ciphertext FROM {table} \
         WHERE {key} IS NOT NULL AND {cipher} IS NOT NULL AND {key} <> $1 AND id > $2 \
         ORDER BY id LIMIT $3"
    ))
    .bind(current)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Replaces a row's sealed secret if it is still sealed under `old_key_id` (a concurrent
/// update wins); returns whether it was replaced.
pub async fn reseal(
    conn: &mut AnyConnection,
    table: SealedTable,
    row: &SealedRow,
    key_id: &str,
    ciphertext: &str,
) -> Result<bool, StoreError> {
    let (table, key, cipher) = table.columns();
    let result = sqlx::query(&format!(
        "UPDATE {table} SET {key} = $1, {cipher} = $2 WHERE id = $3 AND {key} = $4"
    ))
    .bind(key_id)
    .bind(ciphertext)
    .bind(&row.id)
    .bind(&row.key_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Every call record of a tenant, oldest first (the export).
pub async fn all_calls(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<super::calls::CallRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, carrier, carrier_call_id, direction, from_number, to_number, \
         status, outcome, started_at, answered_at, ended_at, duration_seconds, turns, campaign, \
         contact, source, updated_at FROM calls WHERE tenant_id = $1 ORDER BY started_at, id",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// A transcript turn with its call.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TurnWithCall {
    /// Call id.
    pub call_id: String,
    /// Position in the call.
    pub idx: i64,
    /// `caller` or `agent`.
    pub role: String,
    /// Text.
    pub text: String,
    /// Milliseconds from stream start.
    pub offset_ms: i64,
}

/// Every transcript turn of a tenant (the export).
pub async fn all_turns(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<TurnWithCall>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT call_id, idx, role, text, offset_ms FROM call_turns WHERE tenant_id = $1 \
         ORDER BY call_id, idx",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// A person's entries in the audit logs of every tenant, with the tenant (system read).
pub async fn audit_by_actor(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<(String, super::audit::AuditRow)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        tenant_id: String,
        #[sqlx(flatten)]
        row: super::audit::AuditRow,
    }
    let rows: Vec<Joined> = sqlx::query_as(
        "SELECT tenant_id, id, actor_type, actor_id, action, target_type, target_id, ip, \
         request_id, details, created_at FROM audit_log WHERE actor_id = $1 \
         ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|j| (j.tenant_id, j.row)).collect())
}

/// A session of a person (the export): no token material.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Start (Unix ms).
    pub created_at: i64,
    /// End of validity (Unix ms).
    pub expires_at: i64,
    /// When revoked (Unix ms).
    pub revoked_at: Option<i64>,
}

/// A person's sessions.
pub async fn sessions_of(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<SessionRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, created_at, expires_at, revoked_at FROM sessions WHERE user_id = $1 \
         ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// A stored idempotent answer sealed under the master key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedAnswer {
    /// Tenant id.
    pub tenant_id: String,
    /// `user:<id>` or `api_key:<id>`.
    pub principal: String,
    /// Hash of the client's key.
    pub key_hash: String,
    /// Id of the master key that sealed it.
    pub key_id: String,
    /// The sealed answer.
    pub ciphertext: String,
}

/// Stored idempotent answers sealed under another key than `current`, skipping the first
/// `skip` (those found unreadable), at most `limit` (system read).
pub async fn answers_under_other_keys(
    conn: &mut AnyConnection,
    current: &str,
    skip: i64,
    limit: i64,
) -> Result<Vec<SealedAnswer>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, principal, key_hash, key_id, ciphertext FROM idempotency_keys \
         WHERE key_id IS NOT NULL AND ciphertext IS NOT NULL AND key_id <> $1 \
         ORDER BY tenant_id, principal, key_hash LIMIT $2 OFFSET $3",
    )
    .bind(current)
    .bind(limit)
    .bind(skip)
    .fetch_all(conn)
    .await?)
}

/// Replaces a stored answer's seal if it is still under `row.key_id`.
pub async fn reseal_answer(
    conn: &mut AnyConnection,
    row: &SealedAnswer,
    key_id: &str,
    ciphertext: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE idempotency_keys SET key_id = $1, ciphertext = $2 WHERE tenant_id = $3 \
         AND principal = $4 AND key_hash = $5 AND key_id = $6",
    )
    .bind(key_id)
    .bind(ciphertext)
    .bind(&row.tenant_id)
    .bind(&row.principal)
    .bind(&row.key_hash)
    .bind(&row.key_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
