//! Customer API keys. A key reads `sbk_<tenant id, 32 hex>_<secret>`; only its SHA-256 is
//! stored. Naming the tenant in the key lets authentication run in that tenant's
//! row-level-security scope without a cross-tenant lookup.

use sqlx::AnyConnection;

use super::{StoreError, constant_time_eq, new_id, random_secret, token_hash};

/// Prefix of every API key (also makes leaked keys easy to find with secret scanners).
pub const KEY_PREFIX: &str = "sbk_";

/// An API key (without its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    /// Key id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Label chosen by the customer.
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// Creator (user id).
    pub created_by: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last authenticated use (Unix ms, updated at most once a minute, written by the
    /// API-request meter's next flush).
    pub last_used_at: Option<i64>,
    /// When revoked (Unix ms).
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "id, tenant_id, name, prefix, scopes, created_by, created_at, last_used_at, revoked_at";

/// Creates a key; returns the row and the full key (shown once).
pub async fn create(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    scopes: &[String],
    created_by: &str,
    now: i64,
) -> Result<(ApiKeyRow, String), StoreError> {
    let compact_tenant = tenant_id.replace('-', "");
    let key = format!("{KEY_PREFIX}{compact_tenant}_{}", random_secret());
    let row = ApiKeyRow {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        name: name.to_owned(),
        prefix: key.chars().take(KEY_PREFIX.len() + 8).collect(),
        scopes: scopes.join(" "),
        created_by: created_by.to_owned(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.name)
    .bind(&row.prefix)
    .bind(token_hash(&key))
    .bind(&row.scopes)
    .bind(&row.created_by)
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok((row, key))
}

/// The tenant id named by a key, if it looks like one of ours.
pub fn tenant_of_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (compact, secret) = rest.split_once('_')?;
    if secret.is_empty() {
        return None;
    }
    uuid::Uuid::try_parse(compact)
        .ok()
        .map(|id| id.hyphenated().to_string())
}

/// The live (unrevoked) key matching `key` in `tenant_id`, in one query (it runs on every
/// API-key request).
pub async fn authenticate(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Found {
        #[sqlx(flatten)]
        row: ApiKeyRow,
        key_hash: String,
    }
    let hash = token_hash(key);
    let found: Option<Found> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, key_hash FROM api_keys \
         WHERE tenant_id = $1 AND key_hash = $2 AND revoked_at IS NULL"
    ))
    .bind(tenant_id)
    .bind(&hash)
    .fetch_optional(conn)
    .await?;
    // The index already matched the hash; compare again in constant time anyway, as before.
    Ok(found
        .filter(|f| constant_time_eq(&f.key_hash, &hash))
        .map(|f| f.row))
}

/// Records a use, at most once a minute per key. Called by the API-request meter's batched
/// flush (`usage::meter::ApiMeter`), never on the request path.
pub async fn touch(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 WHERE tenant_id = $2 AND id = $3 \
         AND (last_used_at IS NULL OR last_used_at < $4)",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(id)
    .bind(now - 60_000)
    .execute(conn)
    .await?;
    Ok(())
}

/// The keys of a tenant (live and revoked), newest first.
pub async fn list(conn: &mut AnyConnection, tenant_id: &str) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// One key of a tenant.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Revokes a key; `false` when the tenant has no live key with this id.
pub async fn revoke(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Revokes the live keys `user_id` minted in a tenant (the user was removed from it, or the
/// account's password was reset). Returns how many were revoked.
pub async fn revoke_created_by(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND created_by = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}
