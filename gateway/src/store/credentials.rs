//! Provider credentials (bring-your-own keys), stored sealed with AES-256-GCM (see `crypto`).

use sqlx::AnyConnection;

use super::{Flag, StoreError};

/// A stored provider credential. `ciphertext` never leaves the gateway.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    /// Credential id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Vendor (`openai`, `groq`, `deepgram`, …).
    pub provider: String,
    /// Label, unique per vendor in the tenant.
    pub label: String,
    /// Whether this is the vendor's default credential in the tenant.
    pub is_default: Flag,
    /// Id of the master key that sealed the secret.
    pub key_id: String,
    /// base64(nonce ‖ ciphertext ‖ tag).
    pub ciphertext: String,
    /// Last four characters of the secret, for the masked display.
    pub hint: String,
    /// Non-secret settings (JSON object), e.g. a base URL or an account SID.
    pub metadata: String,
    /// Creator (user id or `api-key:<id>`).
    pub created_by: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, provider, label, is_default, key_id, ciphertext, hint, metadata, created_by, created_at, updated_at";

/// Inserts a credential; `false` when the tenant already has this vendor + label.
pub async fn insert(conn: &mut AnyConnection, row: &CredentialRow) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO provider_credentials (id, tenant_id, provider, label, is_default, key_id, ciphertext, hint, metadata, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (tenant_id, provider, label) DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.provider)
    .bind(&row.label)
    .bind(row.is_default.0)
    .bind(&row.key_id)
    .bind(&row.ciphertext)
    .bind(&row.hint)
    .bind(&row.metadata)
    .bind(&row.created_by)
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Rewrites a credential's label, default flag, secret and metadata.
pub async fn update(
    conn: &mut AnyConnection,
    row: &CredentialRow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE provider_credentials SET label = $1, is_default = $2, key_id = $3, ciphertext = $4, hint = $5, \
         metadata = $6, updated_at = $7 WHERE tenant_id = $8 AND id = $9",
    )
    .bind(&row.label)
    .bind(row.is_default.0)
    .bind(&row.key_id)
    .bind(&row.ciphertext)
    .bind(&row.hint)
    .bind(&row.metadata)
    .bind(now)
    .bind(&row.tenant_id)
    .bind(&row.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Clears the default flag of the vendor's other credentials (before setting a new default).
pub async fn clear_default(
    conn: &mut AnyConnection,
    tenant_id: &str,
    provider: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE provider_credentials SET is_default = $1, updated_at = $2 \
         WHERE tenant_id = $3 AND provider = $4 AND is_default = $5",
    )
    .bind(false)
    .bind(now)
    .bind(tenant_id)
    .bind(provider)
    .bind(true)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the vendor already has a default credential in the tenant.
pub async fn has_default(
    conn: &mut AnyConnection,
    tenant_id: &str,
    provider: &str,
) -> Result<bool, StoreError> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM provider_credentials WHERE tenant_id = $1 AND provider = $2 AND is_default = $3",
    )
    .bind(tenant_id)
    .bind(provider)
    .bind(true)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// The credentials of a tenant, by vendor then label.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<CredentialRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM provider_credentials WHERE tenant_id = $1 ORDER BY provider, label"
    ))
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// One credential of a tenant.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<CredentialRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM provider_credentials WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Deletes a credential; `false` when the tenant has none with this id.
pub async fn delete(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM provider_credentials WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}
