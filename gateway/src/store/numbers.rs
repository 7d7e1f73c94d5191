//! Dialled-number routing rows: number → tenant, carrier and owning account.

use sqlx::AnyConnection;

use super::StoreError;

/// One routed number.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NumberRow {
    /// E.164 number.
    pub e164: String,
    /// Tenant id.
    pub tenant_id: String,
    /// `twilio`, `telnyx` or `sandbox`.
    pub carrier: String,
    /// `platform` (the platform's carrier account) or `tenant` (the tenant's own account).
    pub account: String,
    /// Agent name to use for calls to this number, when not the tenant's default.
    pub agent: Option<String>,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

/// Inserts or moves a number (a number belongs to one tenant at a time).
pub async fn upsert(conn: &mut AnyConnection, row: &NumberRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO phone_numbers (e164, tenant_id, carrier, account, agent, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (e164) DO UPDATE SET tenant_id = excluded.tenant_id, \
         carrier = excluded.carrier, account = excluded.account, agent = excluded.agent, updated_at = excluded.updated_at",
    )
    .bind(&row.e164)
    .bind(&row.tenant_id)
    .bind(&row.carrier)
    .bind(&row.account)
    .bind(&row.agent)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes which agent answers one of the tenant's numbers (`None`: the default agent);
/// `false` when the tenant routes no such number.
pub async fn set_agent(
    conn: &mut AnyConnection,
    tenant_id: &str,
    e164: &str,
    agent: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE phone_numbers SET agent = $1, updated_at = $2 WHERE e164 = $3 AND tenant_id = $4",
    )
    .bind(agent)
    .bind(now)
    .bind(e164)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes a number from routing.
pub async fn delete(conn: &mut AnyConnection, e164: &str) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM phone_numbers WHERE e164 = $1")
        .bind(e164)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Every routed number (in a system transaction).
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<NumberRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT e164, tenant_id, carrier, account, agent, updated_at FROM phone_numbers",
    )
    .fetch_all(conn)
    .await?)
}

/// The routing rows of one tenant, by number (scoped by tenant in the query as well as by
/// row-level security on Postgres).
pub async fn for_tenant(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<NumberRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT e164, tenant_id, carrier, account, agent, updated_at FROM phone_numbers \
         WHERE tenant_id = $1 ORDER BY e164",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// How many numbers a tenant routes.
pub async fn count_for_tenant(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM phone_numbers WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(conn)
            .await?,
    )
}
