//! `POST /api/v1/webhooks/cdr/{tenant}`: call detail records from a tenant's PBX, with the
//! tenant's own basic-auth credential (see [`crate::calls::cdr`]), in the project's schema or as
//! a Grandstream CloudUCM / Asterisk PBX sends them (detected from the body, see
//! [`crate::calls::cdr::asterisk`]). Failed attempts are throttled per tenant
//! (`SWITCHBOARD_RATE_LIMIT_CDR_AUTH_FAILURES_PER_MINUTE`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;

use crate::calls::cdr::{self, CdrBody, CdrError, CdrReply};
use crate::http::errors::{ApiError, ApiJson};
use crate::state::AppState;

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?,
    )
    .ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `POST /api/v1/webhooks/cdr/{tenant}`.
pub async fn ingest(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CdrBody>,
) -> Result<Json<CdrReply>, ApiError> {
    // Guessing is throttled per tenant key: past its budget of failures the key is refused
    // before anything is looked up.
    if let Some(retry_after_secs) = state.cdr_auth.blocked(&key) {
        return Err(ApiError::too_many_requests(retry_after_secs));
    }
    let result = async {
        let (user, password) = basic(&headers).ok_or(CdrError::Unauthorized)?;
        // Unknown tenants and bad passwords look the same to the caller.
        let tenant_id = state
            .cdr_credentials
            .verify(&state.store, &key, &user, &password)
            .await?;
        cdr::ingest(&state.call_writer, &tenant_id, body).await
    }
    .await;
    match result {
        Ok(reply) => Ok(Json(reply)),
        Err(CdrError::Unauthorized) => match state.cdr_auth.failed(&key).await {
            Some(retry_after_secs) => Err(ApiError::too_many_requests(retry_after_secs)),
            None => Err(CdrError::Unauthorized.into()),
        },
        Err(error) => Err(error.into()),
    }
}
