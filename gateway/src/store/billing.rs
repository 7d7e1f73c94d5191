//! Stripe customer and subscription per tenant, and processed Stripe event ids.

use serde::Serialize;
use sqlx::AnyConnection;

use super::StoreError;

/// A tenant's billing state.
#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingRow {
    /// Tenant id.
    #[serde(skip)]
    pub tenant_id: String,
    /// Stripe customer (`cus_…`).
    pub stripe_customer_id: Option<String>,
    /// Stripe subscription (`sub_…`).
    pub subscription_id: Option<String>,
    /// Stripe subscription status (`active`, `past_due`, `canceled`, …).
    pub subscription_status: Option<String>,
    /// Price of the subscription.
    pub price_id: Option<String>,
    /// End of the paid period (Unix ms).
    pub current_period_end: Option<i64>,
    /// Per-tenant limit overrides (JSON object of `PlanLimits` fields).
    #[serde(skip)]
    pub limit_overrides: String,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "tenant_id, stripe_customer_id, subscription_id, subscription_status, price_id, current_period_end, limit_overrides, updated_at";

/// The billing row of a tenant.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<BillingRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM billing_accounts WHERE tenant_id = $1"
    ))
    .bind(tenant_id)
    .fetch_optional(conn)
    .await?)
}

/// The tenant of a Stripe customer (system transaction).
pub async fn tenant_of_customer(
    conn: &mut AnyConnection,
    customer: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT tenant_id FROM billing_accounts WHERE stripe_customer_id = $1")
            .bind(customer)
            .fetch_optional(conn)
            .await?,
    )
}

/// Writes a tenant's billing row.
pub async fn upsert(conn: &mut AnyConnection, row: &BillingRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO billing_accounts (tenant_id, stripe_customer_id, subscription_id, subscription_status, price_id, \
         current_period_end, limit_overrides, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id) DO UPDATE SET stripe_customer_id = excluded.stripe_customer_id, \
         subscription_id = excluded.subscription_id, subscription_status = excluded.subscription_status, \
         price_id = excluded.price_id, current_period_end = excluded.current_period_end, \
         limit_overrides = excluded.limit_overrides, updated_at = excluded.updated_at",
    )
    .bind(&row.tenant_id)
    .bind(&row.stripe_customer_id)
    .bind(&row.subscription_id)
    .bind(&row.subscription_status)
    .bind(&row.price_id)
    .bind(row.current_period_end)
    .bind(&row.limit_overrides)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a Stripe event id; `false` when it was processed before.
pub async fn claim_event(
    conn: &mut AnyConnection,
    id: &str,
    kind: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO stripe_events (id, type, received_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Sets a tenant's plan (scoped to the tenant).
pub async fn set_plan(
    conn: &mut AnyConnection,
    tenant_id: &str,
    plan: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET plan = $1, updated_at = $2 WHERE id = $3")
        .bind(plan)
        .bind(now)
        .bind(tenant_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Subscriptions per status, for metrics (system transaction).
pub async fn subscription_counts(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT COALESCE(subscription_status, 'none'), COUNT(*) FROM billing_accounts GROUP BY COALESCE(subscription_status, 'none')",
    )
    .fetch_all(conn)
    .await?)
}

/// Number of tenants, for metrics (system transaction).
pub async fn tenant_count(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(conn)
        .await?)
}
