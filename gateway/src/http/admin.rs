//! `/api/v1/admin/…`: the platform admins' API (see `lifecycle::platform` for who they are).
//! List tenants, suspend and resume, override plan and limits, the system health view.
//! Everyone else gets 403 `platform_admin_required`, API keys included.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use switchboard_crds::{LimitPatch, Plan};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::errors::{ApiError, ApiJson};
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery};
use super::principal::Principal;
use super::validate::rfc3339;
use crate::lifecycle::platform::{self, Check};
use crate::state::AppState;
use crate::store::lifecycle::AdminTenantRow;
use crate::store::now_ms;
use crate::store::tenants::TenantRow;

/// The admin routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(override_plan))
        .routes(routes!(suspend))
        .routes(routes!(resume))
        .routes(routes!(health))
}

/// A caller that is a platform admin (a user listed in `SWITCHBOARD_PLATFORM_ADMINS` with a
/// verified address).
#[derive(Debug, Clone)]
pub struct PlatformAdmin {
    /// The admin's user id.
    pub user_id: String,
}

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let refused = || {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "platform_admin_required",
                "this needs a platform admin's access token",
            )
        };
        let Principal::User { user_id, .. } = principal else {
            return Err(refused());
        };
        if !platform::is_platform_admin(state, &user_id).await? {
            return Err(refused());
        }
        Ok(PlatformAdmin { user_id })
    }
}

/// A tenant as the platform admins see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminTenantView {
    /// Tenant id.
    pub id: String,
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan.
    pub plan: String,
    /// `active`, `suspended`, `pendingDeletion` or `detached`.
    pub status: String,
    /// Whether calls are refused (by an admin, a manifest, a deletion or a detached Tenant).
    pub suspended: bool,
    /// Whether a platform admin suspended it.
    pub suspended_by_admin: bool,
    /// `signup` or `manifest`.
    pub origin: String,
    /// When the data goes unless restored (RFC 3339), for a tenant pending deletion.
    pub purge_after: Option<String>,
    /// The stored limit overrides (a `LimitPatch`).
    #[schema(value_type = Object)]
    pub limit_overrides: serde_json::Value,
    /// Creation (RFC 3339).
    pub created_at: String,
}

impl From<AdminTenantRow> for AdminTenantView {
    fn from(row: AdminTenantRow) -> Self {
        let status = if row.deletion_requested_at.is_some() {
            "pendingDeletion"
        } else if row.detached_at.is_some() {
            "detached"
        } else if row.suspended.0 {
            "suspended"
        } else {
            "active"
        };
        Self {
            id: row.id,
            slug: row.slug,
            name: row.name,
            plan: row.plan,
            status: status.to_owned(),
            suspended: row.suspended.0,
            suspended_by_admin: row.admin_suspended_at.is_some(),
            origin: row.origin,
            purge_after: row.purge_after.map(rfc3339),
            limit_overrides: row
                .limit_overrides
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_else(|| serde_json::json!({})),
            created_at: rfc3339(row.created_at),
        }
    }
}

/// `GET /api/v1/admin/tenants`: every tenant, by id, `{items, nextCursor}`.
#[utoipa::path(get, path = "/api/v1/admin/tenants", tag = "admin", params(PageQuery),
    responses((status = 200, body = Page<AdminTenantView>), (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<AdminTenantView>>, ApiError> {
    let limit = query.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = query.cursor()?;
    let rows =
        platform::list_tenants(&state, after.as_deref(), PageQuery::fetch_limit(limit)).await?;
    Ok(Json(
        Page::from_fetched(rows, limit, |row| row.id.clone()).map(AdminTenantView::from),
    ))
}

/// The answer to a suspension, resumption or override.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminTenantChanged {
    /// Tenant id.
    pub id: String,
    /// Slug.
    pub slug: String,
    /// Plan now.
    pub plan: String,
    /// Whether calls are refused now.
    pub suspended: bool,
}

impl From<TenantRow> for AdminTenantChanged {
    fn from(row: TenantRow) -> Self {
        Self {
            id: row.id,
            slug: row.slug,
            plan: row.plan,
            suspended: row.suspended.0,
        }
    }
}

/// `POST /api/v1/admin/tenants/{tenant}/suspend`: calls refused, the runtime scaled to zero
/// (Kubernetes). 409 `field_managed_elsewhere` when the tenant's manifest holds
/// `spec.suspended`.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant}/suspend", tag = "admin", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = AdminTenantChanged), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn suspend(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Path(tenant): Path<String>,
) -> Result<Json<AdminTenantChanged>, ApiError> {
    let row = platform::set_suspended(&state, &tenant, true, now_ms()).await?;
    Ok(Json(row.into()))
}

/// `POST /api/v1/admin/tenants/{tenant}/resume`: ends an admin's suspension. 409 for a tenant
/// pending deletion (its owner restores it).
#[utoipa::path(post, path = "/api/v1/admin/tenants/{tenant}/resume", tag = "admin", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = AdminTenantChanged), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn resume(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Path(tenant): Path<String>,
) -> Result<Json<AdminTenantChanged>, ApiError> {
    let row = platform::set_suspended(&state, &tenant, false, now_ms()).await?;
    Ok(Json(row.into()))
}

/// A plan and/or limit override.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanOverride {
    /// The plan (`free`, `starter`, `professional`, `enterprise`, `onprem`).
    pub plan: Option<String>,
    /// Limit overrides replacing the stored ones (a `LimitPatch`: `monthlyCalls`,
    /// `monthlyMinutes`, `monthlyApiRequests`, `phoneNumbers`, …; `null` = unlimited).
    #[schema(value_type = Object)]
    pub limits: Option<serde_json::Value>,
}

/// `PATCH /api/v1/admin/tenants/{tenant}`: overrides the plan and/or the limits.
#[utoipa::path(patch, path = "/api/v1/admin/tenants/{tenant}", tag = "admin", params(("tenant" = String, Path, description = "Tenant slug or id")),
    request_body = PlanOverride,
    responses((status = 200, body = AdminTenantChanged), (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn override_plan(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<PlanOverride>,
) -> Result<Json<AdminTenantChanged>, ApiError> {
    let plan = body
        .plan
        .as_deref()
        .map(|p| {
            p.parse::<Plan>()
                .map_err(|_| ApiError::invalid("plan", "invalid", "not a plan name"))
        })
        .transpose()?;
    let limits = body
        .limits
        .map(|value| {
            serde_json::from_value::<LimitPatch>(value)
                .map_err(|e| ApiError::invalid("limits", "invalid", e.to_string()))
        })
        .transpose()?;
    if plan.is_none() && limits.is_none() {
        return Err(ApiError::invalid(
            "plan",
            "required",
            "give a plan, limits or both",
        ));
    }
    let row = platform::override_plan(&state, &tenant, plan, limits.as_ref(), now_ms()).await?;
    Ok(Json(row.into()))
}

/// One dependency.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckView {
    /// Whether this gateway uses it.
    pub configured: bool,
    /// Whether it answered.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

impl From<Check> for CheckView {
    fn from(check: Check) -> Self {
        Self {
            configured: check.configured,
            ok: check.ok,
            error: check.error,
        }
    }
}

/// The customer-webhook backlog.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxView {
    /// Deliveries pending.
    pub pending: i64,
    /// Deliveries given up on.
    pub failed: i64,
    /// Age of the oldest pending delivery in seconds.
    pub oldest_pending_seconds: Option<i64>,
}

/// Tenants of one plan in one status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantCount {
    /// Plan.
    pub plan: String,
    /// `active`, `suspended`, `pendingDeletion` or `detached`.
    pub status: String,
    /// How many.
    pub count: i64,
}

/// The system health view.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// `true` when every configured dependency answered.
    pub ok: bool,
    /// The database.
    pub database: CheckView,
    /// Redis (rate limits shared by replicas).
    pub redis: CheckView,
    /// The Kubernetes API.
    pub kubernetes: CheckView,
    /// Customer webhooks.
    pub outbox: OutboxView,
    /// Tenants by plan and status.
    pub tenants: Vec<TenantCount>,
}

/// `GET /api/v1/admin/health`: database, Redis, Kubernetes API, webhook backlog, tenants by
/// plan and status.
#[utoipa::path(get, path = "/api/v1/admin/health", tag = "admin",
    responses((status = 200, body = HealthView), (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn health(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
) -> Result<Json<HealthView>, ApiError> {
    let health = platform::health(&state, now_ms()).await?;
    Ok(Json(HealthView {
        ok: health.database.ok && health.redis.ok && health.kubernetes.ok,
        database: health.database.into(),
        redis: health.redis.into(),
        kubernetes: health.kubernetes.into(),
        outbox: OutboxView {
            pending: health.outbox_pending,
            failed: health.outbox_failed,
            oldest_pending_seconds: health.outbox_oldest_pending_seconds,
        },
        tenants: health
            .tenants
            .into_iter()
            .map(|(plan, status, count)| TenantCount {
                plan,
                status,
                count,
            })
            .collect(),
    }))
}
