//! `POST /api/v1/webhooks/cdr/{tenant}`: call detail records from a tenant's PBX, with the
//! tenant's own basic-auth credential (password compared by hash in constant time). Each
//! record is stored once per PBX record id.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::http::errors::{ApiError, ApiJson};
use crate::internal::tenant_by_key;
use crate::state::AppState;
use crate::store::calls::{self, CallRow};
use crate::store::{Scope, constant_time_eq, new_id, now_ms, token_hash};

/// One CDR.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cdr {
    /// The PBX's record id (dedupe key).
    pub id: String,
    /// Caller.
    pub from: Option<String>,
    /// Callee.
    pub to: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Start, RFC 3339.
    pub start: String,
    /// Answer, RFC 3339.
    pub answer: Option<String>,
    /// End, RFC 3339.
    pub end: Option<String>,
    /// Seconds (computed from answer/end when absent).
    pub duration: Option<i64>,
    /// `answered`, `busy`, `no-answer`, `failed`, …
    pub disposition: String,
}

/// One CDR or a batch.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CdrBody {
    /// `{"records": [...]}`.
    Batch {
        /// Records.
        records: Vec<Cdr>,
    },
    /// A single record.
    One(Cdr),
}

/// Result of an ingestion.
#[derive(Debug, Serialize)]
pub struct CdrReply {
    /// Records stored now.
    pub stored: usize,
    /// Records seen before.
    pub duplicates: usize,
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "CDR credentials are invalid")
}

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

fn time(field: &str, value: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::invalid(field, "invalid_time", "expected an RFC 3339 time"))
}

/// `POST /api/v1/webhooks/cdr/{tenant}`.
pub async fn ingest(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CdrBody>,
) -> Result<Json<CdrReply>, ApiError> {
    let (user, password) = basic(&headers).ok_or_else(unauthorized)?;
    // Unknown tenants and bad passwords look the same to the caller.
    let tenant = tenant_by_key(&state, &key)
        .await?
        .ok_or_else(unauthorized)?;
    let scope = Scope::tenant(&tenant.id);
    let mut tx = state.store.write(&scope).await?;
    let (want_user, want_hash) = calls::cdr_credential(&mut tx, &tenant.id)
        .await?
        .ok_or_else(unauthorized)?;
    let user_ok = constant_time_eq(&user, &want_user);
    let password_ok = constant_time_eq(&token_hash(&password), &want_hash);
    if !(user_ok & password_ok) {
        return Err(unauthorized());
    }
    let records = match body {
        CdrBody::Batch { records } => records,
        CdrBody::One(record) => vec![record],
    };
    let mut reply = CdrReply {
        stored: 0,
        duplicates: 0,
    };
    for cdr in records {
        if !matches!(cdr.direction.as_str(), "inbound" | "outbound") {
            return Err(ApiError::invalid(
                "direction",
                "invalid_direction",
                "expected inbound or outbound",
            ));
        }
        let started_at = time("start", &cdr.start)?;
        let answered_at = cdr
            .answer
            .as_deref()
            .map(|a| time("answer", a))
            .transpose()?;
        let ended_at = cdr.end.as_deref().map(|e| time("end", e)).transpose()?;
        let duration = cdr
            .duration
            .or_else(|| Some((ended_at? - answered_at?) / 1000));
        let row = CallRow {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            carrier: "pbx".to_owned(),
            carrier_call_id: Some(cdr.id.clone()),
            direction: cdr.direction,
            from_number: cdr.from,
            to_number: cdr.to,
            status: "completed".to_owned(),
            outcome: Some(cdr.disposition),
            started_at,
            answered_at,
            ended_at,
            duration_seconds: duration,
            source: "cdr".to_owned(),
            updated_at: now_ms(),
            ..CallRow::default()
        };
        let stored = calls::insert_or_get(&mut tx, &row).await?;
        if stored.id == row.id {
            reply.stored += 1;
        } else {
            reply.duplicates += 1;
        }
    }
    tx.commit().await?;
    Ok(Json(reply))
}
