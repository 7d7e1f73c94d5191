//! Whether a tenant's `provider-keys` Secret is behind its stored credentials (migration
//! 0002): `provider_keys_generation` is bumped with every credential change, in the change's
//! transaction; `provider_keys_projected` is the generation the last successful write of the
//! Secret carried. `projected < generation` = pending.

use sqlx::AnyConnection;

use super::StoreError;

/// Bumps the tenant's credential generation (call in the transaction that changes a
/// credential); returns the new generation.
pub async fn bump(conn: &mut AnyConnection, tenant_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE tenants SET provider_keys_generation = provider_keys_generation + 1 \
         WHERE id = $1 RETURNING provider_keys_generation",
    )
    .bind(tenant_id)
    .fetch_one(conn)
    .await?)
}

/// `(generation, projected)` of a tenant, `None` when the tenant does not exist.
pub async fn state(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT provider_keys_generation, provider_keys_projected FROM tenants WHERE id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?)
}

/// Records that the Secret now carries `generation`, only if no credential changed since
/// that generation was read. `false` = something changed: the Secret may be stale.
pub async fn mark_projected(
    conn: &mut AnyConnection,
    tenant_id: &str,
    generation: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE tenants SET provider_keys_projected = $2 \
         WHERE id = $1 AND provider_keys_generation = $2",
    )
    .bind(tenant_id)
    .bind(generation)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records that the Secret may be as old as `generation` (a write whose data may have landed
/// after a newer one's), which makes the tenant pending again unless already behind that.
pub async fn mark_possibly_stale(
    conn: &mut AnyConnection,
    tenant_id: &str,
    generation: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tenants SET provider_keys_projected = $2 \
         WHERE id = $1 AND provider_keys_projected > $2",
    )
    .bind(tenant_id)
    .bind(generation)
    .execute(conn)
    .await?;
    Ok(())
}

/// Tenants whose Secret is behind with an id greater than `after` (empty: from the start),
/// in id order, at most `limit` (needs a system transaction on Postgres:
/// `store::system::read`).
pub async fn pending(
    conn: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tenants WHERE provider_keys_projected < provider_keys_generation \
         AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
