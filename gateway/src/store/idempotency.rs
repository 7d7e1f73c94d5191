//! Remembered answers of creating `POST`s, per tenant, caller and `Idempotency-Key` (the rules
//! are in `crate::idempotency`, the HTTP side in `http::idempotency`).

use sqlx::AnyConnection;

use super::StoreError;

/// Which request holds a key: tenant, caller and the key's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// Tenant id.
    pub tenant_id: String,
    /// `user:<id>` or `api_key:<id>`.
    pub principal: String,
    /// SHA-256 (hex) of the client's key: the key itself is never stored.
    pub key_hash: String,
}

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredAnswer {
    /// HTTP status.
    pub status: i32,
    /// `Content-Type` of the body.
    pub content_type: Option<String>,
    /// Master key that sealed the body.
    pub key_id: String,
    /// Sealed body.
    pub ciphertext: String,
}

/// What a claim on a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is now this request's: run it, then [`complete`] or [`release`].
    Fresh,
    /// The same request already has an answer.
    Replay(StoredAnswer),
    /// The key was used for a different request (method, path or body).
    Mismatch,
    /// The same request is still running elsewhere.
    InProgress,
}

#[derive(sqlx::FromRow)]
struct Existing {
    request_hash: String,
    status: Option<i32>,
    content_type: Option<String>,
    key_id: Option<String>,
    ciphertext: Option<String>,
    locked_until: i64,
    expires_at: i64,
}

/// Claims `key` for a request with `request_hash` at `now`: inserts an in-progress row held
/// until `locked_until` and kept until `expires_at`, or reports what holds the key. An
/// expired row, or an in-progress row of the same request whose holder's lease ran out (a
/// crashed gateway), is taken over. Call in a tenant-scoped write transaction.
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    conn: &mut AnyConnection,
    key: &KeyRef,
    request_hash: &str,
    path: &str,
    now: i64,
    locked_until: i64,
    expires_at: i64,
) -> Result<Claim, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, principal, key_hash, request_hash, path, locked_until, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, principal, key_hash) DO NOTHING",
    )
    .bind(&key.tenant_id)
    .bind(&key.principal)
    .bind(&key.key_hash)
    .bind(request_hash)
    .bind(path)
    .bind(locked_until)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Fresh);
    }
    let existing: Option<Existing> = sqlx::query_as(
        "SELECT request_hash, status, content_type, key_id, ciphertext, locked_until, expires_at \
         FROM idempotency_keys WHERE tenant_id = $1 AND principal = $2 AND key_hash = $3",
    )
    .bind(&key.tenant_id)
    .bind(&key.principal)
    .bind(&key.key_hash)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(existing) = existing else {
        // Deleted between the two statements (pruned or released): rare; the client retries.
        return Ok(Claim::InProgress);
    };
    let expired = existing.expires_at <= now;
    let abandoned = existing.status.is_none()
        && existing.locked_until <= now
        && existing.request_hash == request_hash;
    if expired || abandoned {
        // Conditional on what was read, so two takers cannot both win.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET request_hash = $1, path = $2, status = NULL, content_type = NULL, \
             key_id = NULL, ciphertext = NULL, locked_until = $3, created_at = $4, expires_at = $5 \
             WHERE tenant_id = $6 AND principal = $7 AND key_hash = $8 AND locked_until = $9 AND expires_at = $10",
        )
        .bind(request_hash)
        .bind(path)
        .bind(locked_until)
        .bind(now)
        .bind(expires_at)
        .bind(&key.tenant_id)
        .bind(&key.principal)
        .bind(&key.key_hash)
        .bind(existing.locked_until)
        .bind(existing.expires_at)
        .execute(&mut *conn)
        .await?;
        return Ok(if taken.rows_affected() == 1 {
            Claim::Fresh
        } else {
            Claim::InProgress
        });
    }
    if existing.request_hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    match (existing.status, existing.key_id, existing.ciphertext) {
        (Some(status), Some(key_id), Some(ciphertext)) => Ok(Claim::Replay(StoredAnswer {
            status,
            content_type: existing.content_type,
            key_id,
            ciphertext,
        })),
        _ => Ok(Claim::InProgress),
    }
}

/// Stores the answer of the request that holds `key`.
pub async fn complete(
    conn: &mut AnyConnection,
    key: &KeyRef,
    request_hash: &str,
    answer: &StoredAnswer,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, content_type = $2, key_id = $3, ciphertext = $4 \
         WHERE tenant_id = $5 AND principal = $6 AND key_hash = $7 AND request_hash = $8 AND status IS NULL",
    )
    .bind(answer.status)
    .bind(&answer.content_type)
    .bind(&answer.key_id)
    .bind(&answer.ciphertext)
    .bind(&key.tenant_id)
    .bind(&key.principal)
    .bind(&key.key_hash)
    .bind(request_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives up a key held by a request that will not store an answer (it failed in a way worth
/// retrying), so the next request with it runs.
pub async fn release(
    conn: &mut AnyConnection,
    key: &KeyRef,
    request_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND principal = $2 AND key_hash = $3 \
         AND request_hash = $4 AND status IS NULL",
    )
    .bind(&key.tenant_id)
    .bind(&key.principal)
    .bind(&key.key_hash)
    .bind(request_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the rows of every tenant that expired by `now` (system transaction). Returns how
/// many.
pub async fn prune(conn: &mut AnyConnection, now: i64) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(now)
        .execute(conn)
        .await?;
    Ok(result.rows_affected())
}
