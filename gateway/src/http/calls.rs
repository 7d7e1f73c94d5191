//! Call records over the API: list with filters and cursor paging, stats, CSV export, one
//! call with its transcript, and the PBX CDR credential.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::errors::ApiError;
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, Page, PageQuery, split_key};
use super::principal::TenantAccess;
use crate::state::AppState;
use crate::store::calls::{self, CallFilter, CallRow, TurnRow};
use crate::store::tenants::Role;
use crate::store::{now_ms, random_secret, token_hash};

/// The call-record routes and the PBX CDR credential.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stats))
        .routes(routes!(export_csv))
        .routes(routes!(self::get))
        .routes(routes!(transcript))
        .routes(routes!(rotate_cdr_credential))
}

/// Query of the list, stats and export.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CallQuery {
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Final outcome.
    pub outcome: Option<String>,
    /// Campaign name.
    pub campaign: Option<String>,
    /// Started at or after (RFC 3339).
    pub from: Option<String>,
    /// Started before (RFC 3339).
    pub to: Option<String>,
    /// Page size (1–200, default 50).
    pub limit: Option<i64>,
    /// Cursor from the previous page's `nextCursor`.
    pub cursor: Option<String>,
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| ApiError::invalid(field, "invalid_time", "expected an RFC 3339 time"))
        })
        .transpose()
}

impl CallQuery {
    fn filter(&self) -> Result<CallFilter, ApiError> {
        Ok(CallFilter {
            direction: self.direction.clone(),
            outcome: self.outcome.clone(),
            campaign: self.campaign.clone(),
            from: parse_time("from", self.from.as_deref())?,
            to: parse_time("to", self.to.as_deref())?,
        })
    }

    fn page(&self) -> PageQuery {
        PageQuery {
            cursor: self.cursor.clone(),
            limit: self.limit,
        }
    }
}

fn rfc3339(ms: Option<i64>) -> Option<String> {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A call as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallView {
    /// Call id.
    pub id: String,
    /// Carrier.
    pub carrier: String,
    /// Carrier call id.
    pub carrier_call_id: Option<String>,
    /// Direction.
    pub direction: String,
    /// Caller.
    pub from: Option<String>,
    /// Callee.
    pub to: Option<String>,
    /// Latest status.
    pub status: String,
    /// Final outcome.
    pub outcome: Option<String>,
    /// Start.
    pub started_at: Option<String>,
    /// Answer.
    pub answered_at: Option<String>,
    /// End.
    pub ended_at: Option<String>,
    /// Seconds.
    pub duration_seconds: Option<i64>,
    /// Conversation turns.
    pub turns: Option<i64>,
    /// Campaign.
    pub campaign: Option<String>,
    /// Where the record came from.
    pub source: String,
    /// Path of the transcript.
    pub transcript: String,
}

fn view(slug: &str, row: CallRow) -> CallView {
    CallView {
        transcript: format!("/api/v1/tenants/{slug}/calls/{}/transcript", row.id),
        id: row.id,
        carrier: row.carrier,
        carrier_call_id: row.carrier_call_id,
        direction: row.direction,
        from: row.from_number,
        to: row.to_number,
        status: row.status,
        outcome: row.outcome,
        started_at: rfc3339(Some(row.started_at)),
        answered_at: rfc3339(row.answered_at),
        ended_at: rfc3339(row.ended_at),
        duration_seconds: row.duration_seconds,
        turns: row.turns,
        campaign: row.campaign,
        source: row.source,
    }
}

/// `GET /api/v1/tenants/{tenant}/calls`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/calls", tag = "calls", params(("tenant" = String, Path, description = "Tenant slug or id"), CallQuery),
    responses((status = 200, body = Page<CallView>, description = "Call records, newest first, filtered by direction, outcome, time and campaign; paged"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(query): Query<CallQuery>,
) -> Result<Json<Page<CallView>>, ApiError> {
    let page = query.page();
    let limit = page.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = page.cursor()?.as_deref().map(split_key).transpose()?;
    let filter = query.filter()?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = calls::list(
        &mut tx,
        &access.tenant.id,
        &filter,
        after,
        PageQuery::fetch_limit(limit),
    )
    .await?;
    tx.commit().await?;
    let page = Page::from_fetched(rows, limit, |r| format!("{}:{}", r.started_at, r.id));
    Ok(Json(page.map(|r| view(&access.tenant.slug, r))))
}

/// Aggregates of the filtered calls.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    /// Calls.
    pub total: i64,
    /// Answered calls.
    pub answered: i64,
    /// answered / total (0 when there are none).
    pub answer_rate: f64,
    /// Sum of durations in minutes.
    pub total_minutes: f64,
    /// Mean duration of answered calls, seconds.
    pub average_duration_seconds: f64,
}

/// `GET /api/v1/tenants/{tenant}/calls/stats`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/calls/stats", tag = "calls", params(("tenant" = String, Path, description = "Tenant slug or id"), CallQuery),
    responses((status = 200, body = StatsView, description = "Counts and minutes of the filtered calls"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(query): Query<CallQuery>,
) -> Result<Json<StatsView>, ApiError> {
    let filter = query.filter()?;
    let mut tx = state.store.read(&access.scope()).await?;
    let s = calls::stats(&mut tx, &access.tenant.id, &filter).await?;
    tx.commit().await?;
    let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(Json(StatsView {
        total: s.total,
        answered: s.answered,
        answer_rate: ratio(s.answered, s.total),
        total_minutes: s.total_seconds as f64 / 60.0,
        average_duration_seconds: ratio(s.total_seconds, s.answered),
    }))
}

/// Largest CSV export, in rows.
const EXPORT_LIMIT: i64 = 100_000;

/// `GET /api/v1/tenants/{tenant}/calls/export.csv`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/calls/export.csv", tag = "calls", params(("tenant" = String, Path, description = "Tenant slug or id"), CallQuery),
    responses((status = 200, content_type = "text/csv", body = String, description = "Call records as CSV"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn export_csv(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(query): Query<CallQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = calls::list(&mut tx, &access.tenant.id, &filter, None, EXPORT_LIMIT).await?;
    tx.commit().await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "id",
        "direction",
        "from",
        "to",
        "status",
        "outcome",
        "started_at",
        "answered_at",
        "ended_at",
        "duration_seconds",
        "turns",
        "campaign",
        "carrier",
        "carrier_call_id",
        "source",
    ];
    let csv_error = |e: csv::Error| ApiError::internal(&e);
    super::csv_export::write_row(&mut writer, header).map_err(csv_error)?;
    for row in rows {
        let v = view(&access.tenant.slug, row);
        super::csv_export::write_row(
            &mut writer,
            [
                v.id,
                v.direction,
                v.from.unwrap_or_default(),
                v.to.unwrap_or_default(),
                v.status,
                v.outcome.unwrap_or_default(),
                v.started_at.unwrap_or_default(),
                v.answered_at.unwrap_or_default(),
                v.ended_at.unwrap_or_default(),
                v.duration_seconds
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                v.turns.map(|t| t.to_string()).unwrap_or_default(),
                v.campaign.unwrap_or_default(),
                v.carrier,
                v.carrier_call_id.unwrap_or_default(),
                v.source,
            ],
        )
        .map_err(csv_error)?;
    }
    let bytes = writer.into_inner().map_err(|e| ApiError::internal(&e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"calls.csv\"",
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/v1/tenants/{tenant}/calls/{id}`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/calls/{id}", tag = "calls", params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Call id")),
    responses((status = 200, body = CallView, description = "One call record"), (status = 404, body = super::errors::ErrorBody, description = "No such call"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    access: TenantAccess,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<CallView>, ApiError> {
    let mut tx = state.store.read(&access.scope()).await?;
    let row = calls::get(&mut tx, &access.tenant.id, &id).await?;
    tx.commit().await?;
    let row = row.ok_or_else(|| ApiError::not_found("call"))?;
    Ok(Json(view(&access.tenant.slug, row)))
}

/// `GET /api/v1/tenants/{tenant}/calls/{id}/transcript`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/calls/{id}/transcript", tag = "calls", params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Call id"), PageQuery),
    responses((status = 200, body = Page<TurnRow>, description = "The conversation's turns in order (1–1000 a page, default 500)"), (status = 404, body = super::errors::ErrorBody, description = "No such call"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn transcript(
    State(state): State<AppState>,
    access: TenantAccess,
    Path((_, id)): Path<(String, String)>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<TurnRow>>, ApiError> {
    let mut tx = state.store.read(&access.scope()).await?;
    if calls::get(&mut tx, &access.tenant.id, &id).await?.is_none() {
        return Err(ApiError::not_found("call"));
    }
    let turns = calls::turns(&mut tx, &access.tenant.id, &id).await?;
    tx.commit().await?;
    Ok(Json(Page::of_all_sized(turns, &page, 500, 1000)?))
}

/// A new CDR credential, shown once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CdrCredentialView {
    /// Basic-auth user name.
    pub username: String,
    /// Basic-auth password (not stored; only its hash is).
    pub password: String,
    /// Where the PBX posts CDRs.
    pub url: String,
}

/// `POST /api/v1/tenants/{tenant}/cdr-credentials`: creates or rotates the PBX's credential
/// (admins only).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/cdr-credentials", tag = "calls", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 201, body = CdrCredentialView, description = "New basic-auth credentials for PBX CDR posts (shown once)"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn rotate_cdr_credential(
    State(state): State<AppState>,
    access: TenantAccess,
    client: super::context::ClientInfo,
) -> Result<(StatusCode, Json<CdrCredentialView>), ApiError> {
    access.require(Role::Admin)?;
    let username = format!("pbx-{}", access.tenant.slug);
    let password = random_secret();
    let mut tx = state.store.write(&access.scope()).await?;
    calls::set_cdr_credential(
        &mut tx,
        &access.tenant.id,
        &username,
        &token_hash(&password),
        now_ms(),
    )
    .await?;
    super::audit::record(
        &mut tx,
        &access,
        &client,
        "cdr_credential.rotated",
        ("cdr_credential", &username),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    // The old password stops working here at once (other replicas: within the cache's TTL).
    state.cdr_credentials.forget_tenant(&access.tenant.id);
    Ok((
        StatusCode::CREATED,
        Json(CdrCredentialView {
            url: format!(
                "{}/api/v1/webhooks/cdr/{}",
                state.config.public_base(),
                access.tenant.slug
            ),
            username,
            password,
        }),
    ))
}
