//! Call recordings (migration 0025): where each recorded call's WAV file is stored and what
//! it is. The objects themselves live in the tenant's bucket or the data folder
//! (`crate::recordings`).

use sqlx::AnyConnection;

use super::StoreError;

/// One stored recording.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecordingRow {
    /// Recording id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// The call recorded.
    pub call_id: String,
    /// `s3` (the tenant's bucket) or `local` (standalone data folder).
    pub storage: String,
    /// `s3`: the stored credential the object was written with.
    pub credential_id: Option<String>,
    /// `s3`: the bucket.
    pub bucket: Option<String>,
    /// The object's key (`local`: relative to the recordings folder).
    pub object_key: String,
    /// `wav`.
    pub format: String,
    /// 1 (mixed) or 2 (caller left, agent right).
    pub channels: i64,
    /// Length in milliseconds.
    pub duration_ms: i64,
    /// Size of the file.
    pub bytes: i64,
    /// SHA-256 of the file (hex), to check what is played back.
    pub sha256: String,
    /// When it was stored (Unix ms).
    pub created_at: i64,
}

const COLUMNS: &str = "id, tenant_id, call_id, storage, credential_id, bucket, object_key, format, channels, duration_ms, bytes, sha256, created_at";

/// Inserts the recording of a call; `false` when the call already has one (a retried
/// upload), which is left as it is.
pub async fn insert(conn: &mut AnyConnection, row: &RecordingRow) -> Result<bool, StoreError> {
    let result = sqlx::query(&format!(
        "INSERT INTO call_recordings ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (tenant_id, call_id) DO NOTHING"
    ))
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.call_id)
    .bind(&row.storage)
    .bind(&row.credential_id)
    .bind(&row.bucket)
    .bind(&row.object_key)
    .bind(&row.format)
    .bind(row.channels)
    .bind(row.duration_ms)
    .bind(row.bytes)
    .bind(&row.sha256)
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The recording of a call of the tenant.
pub async fn for_call(
    conn: &mut AnyConnection,
    tenant_id: &str,
    call_id: &str,
) -> Result<Option<RecordingRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM call_recordings WHERE tenant_id = $1 AND call_id = $2"
    ))
    .bind(tenant_id)
    .bind(call_id)
    .fetch_optional(conn)
    .await?)
}

/// Up to `limit` recordings of the tenant stored before `before` (Unix ms), oldest first;
/// `before` = `i64::MAX` lists them all (export, tenant purge).
pub async fn older_than(
    conn: &mut AnyConnection,
    tenant_id: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<RecordingRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM call_recordings WHERE tenant_id = $1 AND created_at < $2 \
         ORDER BY created_at, id LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Removes one recording's row (after its object is gone).
pub async fn delete(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM call_recordings WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}
