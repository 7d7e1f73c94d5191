//! A call's recording over the API (`crate::recordings` stores them):
//!
//! * `GET /api/v1/tenants/{tenant}/calls/{id}/recording` — what was recorded (every role,
//!   like the transcript);
//! * `GET /api/v1/tenants/{tenant}/calls/{id}/recording/audio` — the WAV file, streamed from
//!   the tenant's bucket or the data folder through the gateway with the caller's own
//!   authorization (no signed URL: the bucket need not be reachable from the listener's
//!   browser, and nothing outlives the session). Members and above: a viewer reads the
//!   transcript but does not hear the caller's voice. Each download is in the audit log.
//!
//! A call of another tenant, or one without a recording, is 404.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::record;
use super::context::ClientInfo;
use super::errors::ApiError;
use super::principal::TenantAccess;
use super::validate::rfc3339;
use crate::recordings::download_path;
use crate::state::AppState;
use crate::store::recordings::{self, RecordingRow};
use crate::store::tenants::Role;

/// The recording routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(self::get))
        .routes(routes!(audio))
}

/// A call's recording.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingView {
    /// Recording id.
    pub id: String,
    /// The call recorded.
    pub call_id: String,
    /// `wav` (16-bit PCM, 8 kHz).
    pub format: String,
    /// 1: both legs mixed; 2: the caller left, the agent right.
    pub channels: i64,
    /// Length in milliseconds.
    pub duration_ms: i64,
    /// Size in bytes.
    pub bytes: i64,
    /// SHA-256 of the file (hex).
    pub sha256: String,
    /// `s3` (the tenant's own bucket) or `local` (the standalone data folder).
    pub storage: String,
    /// `s3`: the bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The object's key (in the bucket, or the tenant's recordings folder).
    pub object_key: String,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// API path of the audio.
    pub download: String,
}

fn view(tenant_slug: &str, row: RecordingRow) -> RecordingView {
    RecordingView {
        download: download_path(tenant_slug, &row.call_id),
        id: row.id,
        call_id: row.call_id,
        format: row.format,
        channels: row.channels,
        duration_ms: row.duration_ms,
        bytes: row.bytes,
        sha256: row.sha256,
        storage: row.storage,
        bucket: row.bucket,
        object_key: row.object_key,
        created_at: rfc3339(row.created_at),
    }
}

async fn load(
    state: &AppState,
    access: &TenantAccess,
    call_id: &str,
) -> Result<RecordingRow, ApiError> {
    let mut tx = state.store.read(&access.scope()).await?;
    let row = recordings::for_call(&mut tx, &access.tenant.id, call_id).await?;
    tx.commit().await?;
    row.ok_or_else(|| ApiError::not_found("recording"))
}

/// `GET /api/v1/tenants/{tenant}/calls/{id}/recording`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/calls/{id}/recording", tag = "calls",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Call id")),
    responses((status = 200, body = RecordingView, description = "The call's recording"),
        (status = 404, body = super::errors::ErrorBody, description = "No such call, or it was not recorded"),
        (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    access: TenantAccess,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<RecordingView>, ApiError> {
    let row = load(&state, &access, &id).await?;
    Ok(Json(view(&access.tenant.slug, row)))
}

/// `GET /api/v1/tenants/{tenant}/calls/{id}/recording/audio` (member): the WAV file.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/calls/{id}/recording/audio", tag = "calls",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Call id")),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>, description = "The recording (WAV, streamed)"),
        (status = 404, body = super::errors::ErrorBody, description = "No such call, or it was not recorded"),
        (status = 403, body = super::errors::ErrorBody, description = "Viewers do not hear recordings"),
        (status = 410, body = super::errors::ErrorBody, description = "The file (or the s3 credential it was stored with) is gone"),
        (status = 502, body = super::errors::ErrorBody, description = "The tenant's storage failed")),
    security(("bearer" = [])))]
pub async fn audio(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    access.require(Role::Member)?;
    let row = load(&state, &access, &id).await?;
    let stream = crate::recordings::open(&state, &row).await?;
    let mut tx = state.store.write(&access.scope()).await?;
    record(
        &mut tx,
        &access,
        &client,
        "recording.downloaded",
        ("call", &row.call_id),
        json!({"recordingId": row.id}),
    )
    .await?;
    tx.commit().await?;
    let body = Body::from_stream(stream.map(|chunk| chunk.map_err(std::io::Error::other)));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                switchboard_crds::recording::CONTENT_TYPE.to_owned(),
            ),
            (header::CONTENT_LENGTH, row.bytes.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.wav\"", row.call_id),
            ),
        ],
        body,
    )
        .into_response())
}
