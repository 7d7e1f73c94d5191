//! Tenants and memberships (who belongs to which tenant, with which role).

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::{Flag, Scope, Store, StoreError, system};

/// A member's role. Each role can do everything the roles below it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the tenant, its members and its configuration.
    Viewer,
    /// Viewer, plus reads provider credentials (masked) and uses the tenant's resources.
    Member,
    /// Member, plus manages configuration, members, invitations, API keys and credentials.
    Admin,
    /// Admin, plus grants and revokes ownership.
    Owner,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    /// Tenant id.
    pub id: String,
    /// DNS-1123 label; also the `Tenant` CR name (namespace `tenant-<slug>`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan name (see `switchboard_crds::Plan`).
    pub plan: String,
    /// Whether the tenant is suspended.
    pub suspended: Flag,
    /// The default agent, as `AgentSpec` JSON.
    pub agent: String,
    /// The named agents, as a JSON object of name → `AgentSpec` (`Tenant.spec.agents`).
    pub agents: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// Who made the tenant: [`ORIGIN_SIGNUP`] or [`ORIGIN_MANIFEST`].
    pub origin: String,
    /// Uid of the Tenant CR a manifest tenant was adopted from.
    pub cr_uid: Option<String>,
    /// When the tenant's Tenant CR may exist (Unix ms): a signup tenant once an owner's
    /// e-mail address is verified, a manifest tenant when adopted.
    pub activated_at: Option<i64>,
    /// When its Tenant CR was deleted (Unix ms): kept as a suspended archive, never re-created.
    pub detached_at: Option<i64>,
    /// The CR's `spec.limits`, as mirrored by the gateway (`switchboard_crds::LimitPatch` JSON).
    pub limits: String,
    /// The CR's `spec.carrier` (`switchboard_crds::tenant::CarrierSpec` JSON).
    pub carrier: String,
}

/// [`TenantRow::origin`] of a tenant made by signup (the gateway created its Tenant CR).
pub const ORIGIN_SIGNUP: &str = "signup";
/// [`TenantRow::origin`] of a tenant adopted from a Tenant CR applied by someone else.
pub const ORIGIN_MANIFEST: &str = "manifest";

const TENANT_COLUMNS: &str = "t.id, t.slug, t.name, t.plan, t.suspended, t.agent, t.agents, \
     t.created_at, t.updated_at, t.origin, t.cr_uid, t.activated_at, t.detached_at, t.limits, \
     t.carrier";

/// Inserts a tenant under `slug`; `false` when the slug is taken.
pub async fn try_insert(conn: &mut AnyConnection, tenant: &TenantRow) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO tenants (id, slug, name, plan, suspended, agent, created_at, updated_at, \
         origin, cr_uid, activated_at, detached_at, limits, carrier, agents) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (slug) DO NOTHING",
    )
    .bind(&tenant.id)
    .bind(&tenant.slug)
    .bind(&tenant.name)
    .bind(&tenant.plan)
    .bind(tenant.suspended.0)
    .bind(&tenant.agent)
    .bind(tenant.created_at)
    .bind(&tenant.origin)
    .bind(&tenant.cr_uid)
    .bind(tenant.activated_at)
    .bind(tenant.detached_at)
    .bind(&tenant.limits)
    .bind(&tenant.carrier)
    .bind(&tenant.agents)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Whether `slug` names no tenant (by slug or by id).
pub async fn slug_is_free(conn: &mut AnyConnection, slug: &str) -> Result<bool, StoreError> {
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tenants WHERE slug = $1 OR id = $1")
            .bind(slug)
            .fetch_one(conn)
            .await?;
    Ok(count == 0)
}

/// Writes what a Tenant CR says into the tenant's row (the CR is the truth in Kubernetes
/// mode): name, plan, suspension, agent, limits, carrier, the CR's uid, and the
/// activation/detachment times (and a slug chosen at activation).
pub async fn mirror(
    conn: &mut AnyConnection,
    tenant: &TenantRow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tenants SET name = $1, plan = $2, suspended = $3, agent = $4, limits = $5, \
         cr_uid = $6, activated_at = $7, detached_at = $8, slug = $9, carrier = $10, \
         updated_at = $11, agents = $13 WHERE id = $12",
    )
    .bind(&tenant.name)
    .bind(&tenant.plan)
    .bind(tenant.suspended.0)
    .bind(&tenant.agent)
    .bind(&tenant.limits)
    .bind(&tenant.cr_uid)
    .bind(tenant.activated_at)
    .bind(tenant.detached_at)
    .bind(&tenant.slug)
    .bind(&tenant.carrier)
    .bind(now)
    .bind(&tenant.id)
    .bind(&tenant.agents)
    .execute(conn)
    .await?;
    Ok(())
}

/// The Tenant CR's `spec.limits` mirrored for the tenant (`LimitPatch` JSON).
pub async fn limits_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT limits FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Every tenant, for the Tenant CR sync's full pass (system read), paged by id.
pub async fn page(
    conn: &mut AnyConnection,
    after_id: &str,
    limit: i64,
) -> Result<Vec<TenantRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id > $1 ORDER BY t.id LIMIT $2"
    ))
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Signup tenants owned by `user_id` that are not activated yet (their Tenant CR is due once
/// the owner's address is verified).
pub async fn unactivated_owned_by(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT t.id FROM tenants t JOIN memberships m ON m.tenant_id = t.id \
         WHERE m.user_id = $1 AND m.role = 'owner' AND t.activated_at IS NULL \
         AND t.origin = 'signup' ORDER BY t.id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?)
}

/// The tenant with this id.
pub async fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<TenantRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The tenant's row, locked for the rest of the transaction (Postgres: `FOR UPDATE`; SQLite's
/// write transactions hold the database lock already), so a read-modify-write of a JSON
/// column (the agents) cannot lose a concurrent writer's change: the second writer waits and
/// then reads the first one's result.
pub async fn by_id_for_update(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<TenantRow>, StoreError> {
    let lock = if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        " FOR UPDATE"
    } else {
        ""
    };
    Ok(sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The column a tenant key names, unambiguously: a UUID-shaped key is an id, anything else a
/// slug (slugs are never UUIDs, see `http::validate::slugify`). `slug = $1 OR id = $1` picked
/// whichever row came first when a slug equalled another tenant's id (issue 15).
fn key_column(key: &str) -> &'static str {
    if uuid::Uuid::try_parse(key).is_ok() {
        "id"
    } else {
        "slug"
    }
}

/// Whether the tenant key `key` (slug or id) names `tenant`, as [`by_slug_or_id`] reads it.
pub fn key_names(key: &str, tenant: &TenantRow) -> bool {
    match key_column(key) {
        "id" => tenant.id == key,
        _ => tenant.slug == key,
    }
}

/// The tenant with this slug or id.
pub async fn by_slug_or_id(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<TenantRow>, StoreError> {
    let column = key_column(key);
    Ok(sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.{column} = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

/// Updates a tenant's display name and agents (default and named).
pub async fn update(
    conn: &mut AnyConnection,
    tenant: &TenantRow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tenants SET name = $1, agent = $2, agents = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(&tenant.name)
    .bind(&tenant.agent)
    .bind(&tenant.agents)
    .bind(now)
    .bind(&tenant.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a member; `false` when the user is already a member.
pub async fn add_member(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    role: Role,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, user_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The role of `user_id` in the tenant named by `key` (slug or id), with the tenant.
pub async fn tenant_for_member(
    conn: &mut AnyConnection,
    key: &str,
    user_id: &str,
) -> Result<Option<(TenantRow, Role)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        tenant: TenantRow,
        role: String,
    }
    let column = key_column(key);
    let row: Option<Joined> = sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS}, m.role FROM tenants t JOIN memberships m ON m.tenant_id = t.id \
         WHERE t.{column} = $1 AND m.user_id = $2"
    ))
    .bind(key)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.map(|j| Ok((j.tenant, parse_role(&j.role)?)))
        .transpose()
}

/// Every tenant `user_id` belongs to, with the role, oldest first.
pub async fn tenants_of_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<(TenantRow, Role)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        tenant: TenantRow,
        role: String,
    }
    let rows: Vec<Joined> = sqlx::query_as(&format!(
        "SELECT {TENANT_COLUMNS}, m.role FROM tenants t JOIN memberships m ON m.tenant_id = t.id \
         WHERE m.user_id = $1 ORDER BY m.created_at, t.id"
    ))
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|j| Ok((j.tenant, parse_role(&j.role)?)))
        .collect()
}

/// A member as listed to the tenant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// User id.
    pub user_id: String,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role name.
    pub role: String,
    /// When the user joined (Unix ms).
    pub created_at: i64,
}

/// The members of a tenant, oldest first.
pub async fn members(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<MemberRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.user_id, u.email, u.name, m.role, m.created_at FROM memberships m \
         JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY m.created_at, u.email",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// One member of a tenant.
pub async fn member(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<Option<MemberRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT m.user_id, u.email, u.name, m.role, m.created_at FROM memberships m \
         JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND m.user_id = $2",
    )
    .bind(tenant_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// Changes a member's role.
pub async fn set_role(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    role: Role,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("UPDATE memberships SET role = $1 WHERE tenant_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(tenant_id)
            .bind(user_id)
            .execute(conn)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes a member.
pub async fn remove_member(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// How many owners the tenant has (the last one cannot leave or be demoted).
///
/// On Postgres the tenant's row is locked first (`FOR UPDATE`) and the count runs after the
/// lock is held, so two transactions that each take away an owner (two owners demoting each
/// other at once) run one after the other and the second sees the first's change: a tenant
/// never ends with no owner. SQLite's write transactions are serial already.
pub async fn count_owners(conn: &mut AnyConnection, tenant_id: &str) -> Result<i64, StoreError> {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(tenant_id)
            .fetch_optional(&mut *conn)
            .await?;
    }
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'")
            .bind(tenant_id)
            .fetch_one(conn)
            .await?;
    Ok(count)
}

/// An entry of a manifest's `spec.owners` as the gateway keeps it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ManifestOwnerRow {
    /// Tenant id.
    pub tenant_id: String,
    /// Lower-cased e-mail address.
    pub email: String,
    /// Role name.
    pub role: String,
    /// When the invitation e-mail went out (Unix ms).
    pub invited_at: Option<i64>,
}

/// The manifest owners of a tenant, by address.
pub async fn manifest_owners(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Vec<ManifestOwnerRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, email, role, invited_at FROM manifest_owners WHERE tenant_id = $1 \
         ORDER BY email",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?)
}

/// Adds or updates a manifest owner (keeps `invited_at` unless given).
pub async fn upsert_manifest_owner(
    conn: &mut AnyConnection,
    row: &ManifestOwnerRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO manifest_owners (tenant_id, email, role, invited_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, email) DO UPDATE SET role = excluded.role, \
         invited_at = COALESCE(excluded.invited_at, manifest_owners.invited_at)",
    )
    .bind(&row.tenant_id)
    .bind(&row.email)
    .bind(&row.role)
    .bind(row.invited_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a manifest owner and the membership its address was granted.
pub async fn remove_manifest_owner(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM manifest_owners WHERE tenant_id = $1 AND email = $2")
        .bind(tenant_id)
        .bind(email)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "DELETE FROM memberships WHERE tenant_id = $1 \
         AND user_id IN (SELECT id FROM users WHERE email = $2)",
    )
    .bind(tenant_id)
    .bind(email)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tenants whose manifest names `email` (system read: the caller is the address's own,
/// verified user).
pub async fn manifest_owner_entries(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Vec<ManifestOwnerRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, email, role, invited_at FROM manifest_owners WHERE email = $1 \
         ORDER BY tenant_id",
    )
    .bind(email)
    .fetch_all(conn)
    .await?)
}

/// Parses a stored role.
pub fn parse_role(name: &str) -> Result<Role, StoreError> {
    Role::parse(name).ok_or_else(|| StoreError::Corrupt(format!("unknown role {name:?}")))
}

/// A tenant by id, in a read transaction of its own scope.
pub async fn load(store: &Store, tenant_id: &str) -> Result<Option<TenantRow>, StoreError> {
    let mut tx = store.read(&Scope::tenant(tenant_id)).await?;
    let tenant = by_id(&mut tx, tenant_id).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// A tenant by slug or id across tenants (for callers that name a tenant: the operator, the
/// runtime, a PBX), in a system read transaction.
pub async fn load_by_key(store: &Store, key: &str) -> Result<Option<TenantRow>, StoreError> {
    let mut tx = system::read(store).await?;
    let tenant = by_slug_or_id(&mut tx, key).await?;
    tx.commit().await?;
    Ok(tenant)
}
