//! Campaign registration by the operator: `PUT`/`DELETE
//! /internal/v1/tenants/{tenant}/campaigns/{name}` and `GET …/progress` (see
//! [`crate::campaigns`] for what registration does).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use switchboard_crds::internal_api::{Progress, Registration, RegistrationResult};

use super::Internal;
use crate::campaigns::{progress_of, register_campaign, stop as stop_campaign};
use crate::http::errors::{ApiError, ApiJson};
use crate::state::AppState;
use crate::store::tenants;

async fn tenant_id(state: &AppState, key: &str) -> Result<String, ApiError> {
    Ok(tenants::load_by_key(&state.store, key)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?
        .id)
}

/// `PUT /internal/v1/tenants/{tenant}/campaigns/{name}`.
pub async fn register(
    _: Internal,
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<Registration>,
) -> Result<Json<RegistrationResult>, ApiError> {
    let tenant = tenant_id(&state, &tenant).await?;
    Ok(Json(
        register_campaign(&state.store, &tenant, &name, body).await?,
    ))
}

/// `GET /internal/v1/tenants/{tenant}/campaigns/{name}/progress`.
pub async fn progress(
    _: Internal,
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<Progress>, ApiError> {
    let tenant = tenant_id(&state, &tenant).await?;
    progress_of(&state.store, &tenant, &name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("campaign"))
}

/// `DELETE /internal/v1/tenants/{tenant}/campaigns/{name}` (idempotent).
pub async fn stop(
    _: Internal,
    State(state): State<AppState>,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = tenant_id(&state, &tenant).await?;
    stop_campaign(&state.store, &tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
