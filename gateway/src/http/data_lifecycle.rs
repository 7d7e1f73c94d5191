//! A tenant's and a person's data lifecycle (see `lifecycle`):
//!
//! * `GET`/`PUT /api/v1/tenants/{tenant}/retention` — retention settings (admin reads, owner
//!   sets), with the retention in force and the plan's cap;
//! * `DELETE /api/v1/tenants/{tenant}` (owner, signed in) — deletion after a grace period;
//!   `POST /api/v1/tenants/{tenant}/restore` (owner) cancels it;
//! * `GET /api/v1/tenants/{tenant}/export` (owner) — everything of the tenant as `tar.gz`;
//! * `GET /api/v1/auth/me/export` — a person's own data as `tar.gz`;
//! * `DELETE /api/v1/auth/me` — a person deletes their account (password confirms).

use axum::Json;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_crds::retention::{Retention, RetentionSettings};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson};
use super::principal::{Principal, TenantAccess};
use super::validate::rfc3339;
use crate::lifecycle::deletion::{self, Actor};
use crate::lifecycle::export;
use crate::lifecycle::retention::{self, RetentionView};
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::tenants::Role;

/// The routes of this module. `DELETE /api/v1/tenants/{tenant}` and `DELETE /api/v1/auth/me`
/// are merged onto the paths of `tenants` and `auth` by method.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_retention, put_retention))
        .routes(routes!(restore_tenant))
        .routes(routes!(export_tenant))
        .routes(routes!(export_me))
}

/// Retention settings, the retention in force and the plan's cap.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionAnswer {
    /// What the tenant set (absent kinds follow the platform defaults).
    pub settings: RetentionSettings,
    /// What is enforced: the settings over the defaults, capped by the plan.
    pub effective: Retention,
    /// The plan's cap in days.
    pub plan_cap_days: u32,
    /// The platform defaults.
    pub defaults: Retention,
}

impl From<RetentionView> for RetentionAnswer {
    fn from(view: RetentionView) -> Self {
        Self {
            settings: view.settings,
            effective: view.effective,
            plan_cap_days: view.plan_cap_days,
            defaults: switchboard_crds::retention::DEFAULT_RETENTION,
        }
    }
}

/// `GET /api/v1/tenants/{tenant}/retention` (admin).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/retention", tag = "data", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = RetentionAnswer)), security(("bearer" = [])))]
pub async fn get_retention(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<RetentionAnswer>, ApiError> {
    access.require(Role::Admin)?;
    let view = retention::get(&state.store, &access.tenant.id, &access.tenant.plan).await?;
    Ok(Json(view.into()))
}

/// `PUT /api/v1/tenants/{tenant}/retention` (owner): replaces the settings
/// (`callsDays`, `transcriptsDays`, `recordingsDays`, `auditDays`, each 1–3650 or absent for the default).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/retention", tag = "data", params(("tenant" = String, Path, description = "Tenant slug or id")),
    request_body = RetentionSettings,
    responses((status = 200, body = RetentionAnswer), (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn put_retention(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(settings): ApiJson<RetentionSettings>,
) -> Result<Json<RetentionAnswer>, ApiError> {
    access.require(Role::Owner)?;
    let now = now_ms();
    let view = retention::set(
        &state.store,
        &access.tenant.id,
        &access.tenant.plan,
        settings,
        now,
    )
    .await?;
    let mut tx = state.store.write(&access.scope()).await?;
    super::audit::record(
        &mut tx,
        &access,
        &client,
        "tenant.retention_changed",
        ("tenant", &access.tenant.id),
        serde_json::to_value(view.settings).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view.into()))
}

fn actor<'a>(access: &'a TenantAccess, client: &'a ClientInfo) -> Actor<'a> {
    let (kind, id) = access.principal.actor();
    Actor {
        kind,
        id: Some(id),
        ip: Some(&client.ip),
        request_id: client.request_id.as_deref(),
    }
}

/// A deletion pending its grace period.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionScheduled {
    /// `pendingDeletion`.
    pub status: String,
    /// When the data goes unless restored (RFC 3339).
    pub purge_after: String,
}

/// `DELETE /api/v1/tenants/{tenant}` (owner, a person's token): suspends the tenant at once
/// and removes everything of it after the grace period (`SWITCHBOARD_DELETION_GRACE_HOURS`).
/// 409 for a tenant whose Tenant manifest still exists, or one already pending deletion.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "data", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 202, body = DeletionScheduled), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
) -> Result<Response, ApiError> {
    access.require(Role::Owner)?;
    access.principal.require_user()?;
    let purge_after =
        deletion::request(&state, &access.tenant.id, actor(&access, &client), now_ms()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DeletionScheduled {
            status: "pendingDeletion".to_owned(),
            purge_after: rfc3339(purge_after),
        }),
    )
        .into_response())
}

/// The answer to a restore.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    /// Whether the tenant stays suspended (a platform admin suspended it).
    pub suspended: bool,
}

/// `POST /api/v1/tenants/{tenant}/restore` (owner): cancels a pending deletion.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/restore", tag = "data", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = Restored), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn restore_tenant(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
) -> Result<Json<Restored>, ApiError> {
    access.require(Role::Owner)?;
    access.principal.require_user()?;
    let suspended =
        deletion::restore(&state, &access.tenant.id, actor(&access, &client), now_ms()).await?;
    Ok(Json(Restored { suspended }))
}

/// Confirmation of an account deletion.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    /// The account's password.
    pub password: String,
}

/// `DELETE /api/v1/auth/me`: deletes the caller's account and every trace of the person.
/// 409 `sole_owner` naming the tenants the caller alone owns (transfer ownership or delete
/// them first); 403 for a wrong password.
#[utoipa::path(delete, path = "/api/v1/auth/me", tag = "data", request_body = DeleteAccount,
    responses((status = 204), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn delete_me(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<DeleteAccount>,
) -> Result<StatusCode, ApiError> {
    let user_id = principal.require_user()?;
    deletion::delete_account(&state, user_id, &body.password, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn archive_response(name: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /api/v1/tenants/{tenant}/export` (owner): a `tar.gz` of the tenant, its members,
/// numbers, agents, calls, transcripts, usage and audit log (one JSON file each, listed in
/// `manifest.json`).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/export", tag = "data", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, content_type = "application/gzip", body = Vec<u8>)), security(("bearer" = [])))]
pub async fn export_tenant(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
) -> Result<Response, ApiError> {
    access.require(Role::Owner)?;
    let bytes = export::tenant_archive(&state, &access.tenant, now_ms()).await?;
    let mut tx = state.store.write(&access.scope()).await?;
    super::audit::record(
        &mut tx,
        &access,
        &client,
        "tenant.exported",
        ("tenant", &access.tenant.id),
        serde_json::json!({"bytes": bytes.len()}),
    )
    .await?;
    tx.commit().await?;
    Ok(archive_response(
        &format!("{}-export.tar.gz", access.tenant.slug),
        bytes,
    ))
}

/// `GET /api/v1/auth/me/export`: a `tar.gz` of the caller's own data (account, memberships,
/// sessions, the caller's entries in the audit logs of their tenants).
#[utoipa::path(get, path = "/api/v1/auth/me/export", tag = "data",
    responses((status = 200, content_type = "application/gzip", body = Vec<u8>)), security(("bearer" = [])))]
pub async fn export_me(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let user_id = principal.require_user()?;
    let bytes = export::user_archive(&state, user_id, now_ms()).await?;
    Ok(archive_response("my-data.tar.gz", bytes))
}
