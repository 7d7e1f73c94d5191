//! Cross-tenant transactions for the few paths that must find the tenant first (routing a
//! dialled number, matching a Stripe customer, draining the webhook outbox).
//!
//! On Postgres the transaction sets `app.system = 'on'` (transaction-local), which the
//! policies of migration 0010 admit. Never call these with a tenant taken from request
//! input; resolve the tenant here, then switch to a tenant-scoped transaction.

use super::{Backend, Scope, Store, StoreError, Tx};

async fn mark_system(store: &Store, mut tx: Tx) -> Result<Tx, StoreError> {
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT set_config('app.system', 'on', true)")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// A read transaction that may see every tenant's routing and billing rows.
pub async fn read(store: &Store) -> Result<Tx, StoreError> {
    let tx = store.read(&Scope::none()).await?;
    mark_system(store, tx).await
}

/// A write transaction that may touch every tenant's rows (outbox worker, Stripe).
pub async fn write(store: &Store) -> Result<Tx, StoreError> {
    let tx = store.write(&Scope::none()).await?;
    mark_system(store, tx).await
}

/// A write transaction scoped to one tenant that may also touch the platform's own rows
/// (`platform_audit`): purging a tenant and recording that it was purged commit together.
pub async fn write_for_tenant(store: &Store, tenant_id: &str) -> Result<Tx, StoreError> {
    let tx = store.write(&Scope::tenant(tenant_id)).await?;
    mark_system(store, tx).await
}
