//! Invitations to join a tenant. The token is `<tenant id>.<invitation id>.<secret>`: naming the
//! tenant lets acceptance run inside that tenant's row-level-security scope.

use sqlx::AnyConnection;

use super::tenants::Role;
use super::{StoreError, constant_time_eq, new_id, random_secret, token_hash};

/// An invitation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    /// Invitation id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Invited (lower-cased) e-mail address.
    pub email: String,
    /// Role granted on acceptance.
    pub role: String,
    /// Who invited (user id).
    pub invited_by: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Expiry (Unix ms).
    pub expires_at: i64,
    /// When accepted (Unix ms).
    pub accepted_at: Option<i64>,
    /// When revoked (Unix ms).
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "id, tenant_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

/// Creates an invitation and returns it with its token (shown once, e-mailed).
pub async fn create(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
    role: Role,
    invited_by: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<(InvitationRow, String), StoreError> {
    let row = InvitationRow {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        email: email.to_owned(),
        role: role.as_str().to_owned(),
        invited_by: invited_by.to_owned(),
        created_at: now,
        expires_at: now + ttl_ms,
        accepted_at: None,
        revoked_at: None,
    };
    let token = format!("{}.{}.{}", row.tenant_id, row.id, random_secret());
    sqlx::query(
        "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.email)
    .bind(&row.role)
    .bind(token_hash(&token))
    .bind(&row.invited_by)
    .bind(row.created_at)
    .bind(row.expires_at)
    .execute(conn)
    .await?;
    Ok((row, token))
}

/// Pending (not accepted, not revoked) invitations of a tenant, newest first.
pub async fn pending(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<InvitationRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL \
         AND revoked_at IS NULL ORDER BY created_at DESC"
    ))
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// Revokes a pending invitation; `false` when there is none with this id in the tenant.
pub async fn revoke(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE invitations SET revoked_at = $1 WHERE tenant_id = $2 AND id = $3 \
         AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Splits a token into (tenant id, invitation id).
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let mut parts = token.splitn(3, '.');
    let tenant = parts.next()?;
    let id = parts.next()?;
    parts.next()?;
    Some((tenant, id))
}

/// The pending, unexpired invitation matching `token` in `tenant_id`.
pub async fn find_by_token(
    conn: &mut AnyConnection,
    tenant_id: &str,
    token: &str,
    now: i64,
) -> Result<Option<InvitationRow>, StoreError> {
    let Some((_, id)) = parse_token(token) else {
        return Ok(None);
    };
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT token_hash FROM invitations WHERE tenant_id = $1 AND id = $2 \
         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some((hash,)) if constant_time_eq(&hash, &token_hash(token)) => Ok(sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 AND id = $2"),
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await?),
        _ => Ok(None),
    }
}

/// Marks an invitation accepted.
pub async fn mark_accepted(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE invitations SET accepted_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
