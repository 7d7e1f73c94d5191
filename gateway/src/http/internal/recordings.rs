//! `PUT /internal/v1/tenants/{tenant}/calls/{callId}/recording`: a runtime hands over the
//! WAV file of a recorded call (`switchboard_crds::recording`); the gateway stores it in the
//! tenant's storage and records it ([`crate::recordings::save`]). Authenticated like the
//! events ([`RuntimeCaller`]): a tenant's runtime for its own tenant only, in standalone mode
//! also the embedded runtime. Idempotent: a repeated upload answers 200 with the stored
//! recording, a new one 201.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use switchboard_crds::recording::max_bytes;

use super::events::RuntimeCaller;
use crate::http::errors::ApiError;
use crate::state::AppState;
use crate::store::tenants;

/// Stores one call's recording.
pub async fn receive(
    caller: RuntimeCaller,
    State(state): State<AppState>,
    Path((tenant, call_id)): Path<(String, String)>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(tenant) = tenants::load_by_key(&state.store, &tenant).await? else {
        return Err(ApiError::not_found("tenant"));
    };
    if let RuntimeCaller::Tenant(allowed) = &caller
        && *allowed != tenant.id
    {
        tracing::warn!(tenant = %tenant.slug, "a runtime uploaded a recording of another tenant; refused");
        return Err(ApiError::forbidden(
            "this runtime credential may only upload recordings of its own tenant",
        ));
    }
    let limit = usize::try_from(max_bytes(2)).unwrap_or(usize::MAX);
    let wav = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a recording is at most {limit} bytes (the longest call)"),
        )
    })?;
    let (row, created) = crate::recordings::save(&state, &tenant, &call_id, wav).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(
            json!({"id": row.id, "callId": row.call_id, "bytes": row.bytes, "durationMs": row.duration_ms}),
        ),
    ))
}
