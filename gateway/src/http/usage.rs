//! `GET /api/v1/tenants/{tenant}/usage` and `/usage/history`: a tenant's usage against its
//! effective limits (see [`crate::usage`]).

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use switchboard_crds::PlanLimits;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::errors::ApiError;
use super::page::{Page, PageQuery};
use super::principal::TenantAccess;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::usage::{self, UsageRow};
use crate::usage::limits::period_of;

/// The usage routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(self::get))
        .routes(routes!(history))
}

/// Usage of the current month against the plan's limits.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReply {
    /// `YYYY-MM`.
    pub period: String,
    /// Plan name.
    pub plan: String,
    /// Counters.
    pub usage: UsageView,
    /// Effective limits (`null` = unlimited).
    pub limits: PlanLimits,
}

/// Counters in customer units.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    /// `YYYY-MM`.
    pub period: String,
    /// Calls.
    pub call_count: i64,
    /// Billed call minutes.
    pub call_minutes: i64,
    /// API requests.
    pub api_requests: i64,
    /// Speech-to-text minutes (fractional).
    pub stt_minutes: f64,
    /// Text-to-speech characters.
    pub tts_characters: i64,
}

impl From<UsageRow> for UsageView {
    fn from(row: UsageRow) -> Self {
        Self {
            period: row.period,
            call_count: row.call_count,
            call_minutes: row.call_minutes,
            api_requests: row.api_requests,
            stt_minutes: row.stt_ms as f64 / 60_000.0,
            tts_characters: row.tts_characters,
        }
    }
}

/// The current month's usage and limits of a tenant (used by billing status too).
pub async fn current(state: &AppState, access: &TenantAccess) -> Result<UsageReply, ApiError> {
    let period = period_of(now_ms());
    let mut tx = state.store.read(&access.scope()).await?;
    let mut row = usage::get(&mut tx, &access.tenant.id, &period).await?;
    let limits = access.limits(state, &mut tx).await?;
    tx.commit().await?;
    // API requests admitted but not yet written by the meter count too.
    row.api_requests += state.api_meter.unflushed(&access.tenant.id, &period);
    Ok(UsageReply {
        period,
        plan: access.tenant.plan.clone(),
        usage: row.into(),
        limits,
    })
}

/// `GET /api/v1/tenants/{tenant}/usage`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/usage", tag = "usage", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = UsageReply, description = "This month's usage against the plan's limits"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<UsageReply>, ApiError> {
    Ok(Json(current(&state, &access).await?))
}

/// `GET /api/v1/tenants/{tenant}/usage/history`: months with usage, newest first (pages of
/// 1–36 months, default 12).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/usage/history", tag = "usage", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<UsageView>, description = "Usage of past months, newest first"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<UsageView>>, ApiError> {
    let limit = page.limit(12, 36)?;
    let before = page.cursor()?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = usage::history(
        &mut tx,
        &access.tenant.id,
        before.as_deref(),
        PageQuery::fetch_limit(limit),
    )
    .await?;
    tx.commit().await?;
    let page = Page::from_fetched(rows, limit, |row| row.period.clone());
    Ok(Json(page.map(UsageView::from)))
}
