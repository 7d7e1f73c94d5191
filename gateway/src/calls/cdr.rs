//! Call detail records from a tenant's PBX: checked against the tenant's CDR credential
//! (password compared by hash in constant time) and stored once per PBX record id, all of a
//! batch or nothing.

use serde::{Deserialize, Serialize};

use super::CallStatus;
use crate::store::calls::{self, CallRow};
use crate::store::{Scope, Store, StoreError, constant_time_eq, new_id, now_ms, token_hash};

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

/// Why CDRs were not stored.
#[derive(Debug, thiserror::Error)]
pub enum CdrError {
    /// The credential does not match the tenant's (or the tenant has none).
    #[error("CDR credentials are invalid")]
    Unauthorized,
    /// A record's field is not acceptable; nothing of the batch was stored.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// Stable machine-readable code.
        code: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CdrError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

fn time(field: &'static str, value: &str) -> Result<i64, CdrError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| CdrError::Invalid {
            field,
            code: "invalid_time",
            message: "expected an RFC 3339 time",
        })
}

/// Checks `user`/`password` against the tenant's CDR credential and stores the records in
/// one transaction.
pub async fn ingest(
    store: &Store,
    tenant_id: &str,
    user: &str,
    password: &str,
    body: CdrBody,
) -> Result<CdrReply, CdrError> {
    let mut tx = store.write(&Scope::tenant(tenant_id)).await?;
    let (want_user, want_hash) = calls::cdr_credential(&mut tx, tenant_id)
        .await?
        .ok_or(CdrError::Unauthorized)?;
    let user_ok = constant_time_eq(user, &want_user);
    let password_ok = constant_time_eq(&token_hash(password), &want_hash);
    if !(user_ok & password_ok) {
        return Err(CdrError::Unauthorized);
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
            return Err(CdrError::Invalid {
                field: "direction",
                code: "invalid_direction",
                message: "expected inbound or outbound",
            });
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
            tenant_id: tenant_id.to_owned(),
            carrier: "pbx".to_owned(),
            carrier_call_id: Some(cdr.id.clone()),
            direction: cdr.direction,
            from_number: cdr.from,
            to_number: cdr.to,
            status: CallStatus::Completed.as_str().to_owned(),
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
    Ok(reply)
}
