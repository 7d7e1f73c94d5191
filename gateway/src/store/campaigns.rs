//! Campaigns registered by the operator and their contacts.

use sqlx::AnyConnection;

use super::StoreError;

/// A registered campaign.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignRow {
    /// Tenant id.
    pub tenant_id: String,
    /// Campaign (CR) name.
    pub name: String,
    /// Namespace of the CR.
    pub namespace: String,
    /// CR uid.
    pub uid: String,
    /// CR generation registered.
    pub generation: i64,
    /// `CampaignSpec` JSON.
    pub spec: String,
    /// E.164 caller id.
    pub from_number: String,
    /// `Pending`, `Running`, `Paused`, `Completed` or `Failed`.
    pub phase: String,
    /// Set when stopped (DELETE).
    pub deleted_at: Option<i64>,
    /// Why the dialer is not dialling (written by the dialer; `None` while it dials).
    pub reason: Option<String>,
}

/// The columns of [`CampaignRow`].
pub(crate) const COLUMNS: &str =
    "tenant_id, name, namespace, uid, generation, spec, from_number, phase, deleted_at, reason";

/// A campaign by name.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
) -> Result<Option<CampaignRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND name = $2"
    ))
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(conn)
    .await?)
}

/// A campaign as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CampaignListRow {
    /// Campaign (CR) name.
    pub name: String,
    /// Phase.
    pub phase: String,
    /// E.164 caller id.
    pub from_number: String,
    /// Why the dialer is not dialling, if it is not.
    pub reason: Option<String>,
    /// Registration time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

/// A tenant's campaigns (not stopped), by name, after `after`, at most `limit`.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<CampaignListRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT name, phase, from_number, reason, created_at, updated_at FROM campaigns \
         WHERE tenant_id = $1 AND deleted_at IS NULL AND name > $2 ORDER BY name LIMIT $3",
    )
    .bind(tenant_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Inserts or replaces a campaign registration (undeletes it).
pub async fn upsert(
    conn: &mut AnyConnection,
    row: &CampaignRow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO campaigns (tenant_id, name, namespace, uid, generation, spec, from_number, phase, deleted_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $9) ON CONFLICT (tenant_id, name) DO UPDATE SET \
         namespace = excluded.namespace, uid = excluded.uid, generation = excluded.generation, spec = excluded.spec, \
         from_number = excluded.from_number, phase = excluded.phase, deleted_at = NULL, updated_at = excluded.updated_at",
    )
    .bind(&row.tenant_id)
    .bind(&row.name)
    .bind(&row.namespace)
    .bind(&row.uid)
    .bind(row.generation)
    .bind(&row.spec)
    .bind(&row.from_number)
    .bind(&row.phase)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a campaign stopped; `false` when it was not registered.
pub async fn stop(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE campaigns SET deleted_at = COALESCE(deleted_at, $1), updated_at = $1 WHERE tenant_id = $2 AND name = $3",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Moves a campaign to `phase` unless it is there already; `true` when it moved.
pub async fn set_phase_if(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    phase: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE campaigns SET phase = $1, updated_at = $2 WHERE tenant_id = $3 AND name = $4 AND phase <> $1",
    )
    .bind(phase)
    .bind(now)
    .bind(tenant_id)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes every contact of a campaign with its attempts and answers (a recreated CR starts
/// afresh; its calls stay in the call records).
pub async fn clear_contacts(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
) -> Result<(), StoreError> {
    for table in ["campaign_contacts", "campaign_attempts", "campaign_answers"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE tenant_id = $1 AND campaign = $2"
        ))
        .bind(tenant_id)
        .bind(campaign)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Adds a contact unless its id exists (its dialing state is kept); `true` when added.
#[allow(clippy::too_many_arguments)]
pub async fn add_contact(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    id: &str,
    phone: &str,
    name: Option<&str>,
    variables: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO campaign_contacts (tenant_id, campaign, id, phone, name, variables, state, attempts, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7) ON CONFLICT (tenant_id, campaign, id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(id)
    .bind(phone)
    .bind(name)
    .bind(variables)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Contacts per state.
pub async fn state_counts(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT state, COUNT(*) FROM campaign_contacts WHERE tenant_id = $1 AND campaign = $2 GROUP BY state",
    )
    .bind(tenant_id)
    .bind(campaign)
    .fetch_all(conn)
    .await?)
}
