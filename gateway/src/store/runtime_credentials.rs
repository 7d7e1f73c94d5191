//! The epoch of each tenant's runtime credential (migration 0013; see
//! [`crate::runtime_credential`]): 1 at creation, bumped by a rotation.

use sqlx::AnyConnection;

use super::StoreError;

/// The tenant's current credential epoch, `None` when the tenant does not exist.
pub async fn epoch(conn: &mut AnyConnection, tenant_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT runtime_credential_epoch FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Rotates the tenant's credential (the previous one stops working at once) and returns the
/// new epoch. Call with [`super::provider_keys::bump`] in the same transaction, so the new
/// credential is written into the tenant's namespace.
pub async fn rotate(conn: &mut AnyConnection, tenant_id: &str) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE tenants SET runtime_credential_epoch = runtime_credential_epoch + 1 \
         WHERE id = $1 RETURNING runtime_credential_epoch",
    )
    .bind(tenant_id)
    .fetch_one(conn)
    .await?)
}
