//! Call detail records from a tenant's PBX: checked against the tenant's CDR credential
//! (password compared by hash in constant time) and stored once per PBX record id, all of a
//! batch or nothing.
//!
//! Two body shapes are accepted, told apart by the body itself (no tenant setting): the
//! project's own ([`Cdr`], one or `{"records": [...]}`) and the CDR JSON of a Grandstream
//! CloudUCM / Asterisk PBX (see [`asterisk`] for the detection and mapping).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use switchboard_crds::call_bounds;
use switchboard_crds::phone_number::is_e164;

use super::CallStatus;

pub mod asterisk;
pub mod credentials;
use self::asterisk::AsteriskCdr;
use super::writer::CallWriter;
use crate::store::calls::CallRow;
use crate::store::{StoreError, new_id, now_ms};

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

/// One CDR or a batch, in the project's schema or a PBX's.
#[derive(Debug)]
pub enum CdrBody {
    /// `{"records": [...]}`.
    Batch {
        /// Records.
        records: Vec<Cdr>,
    },
    /// A single record.
    One(Cdr),
    /// CloudUCM / Asterisk-shaped records (a top-level array, `{"cdr": [...]}`,
    /// `{"cdrs": [...]}` or one object with `uniqueid`).
    Asterisk(Vec<AsteriskCdr>),
}

/// The project's own shapes, as before PBX shapes were detected.
#[derive(Deserialize)]
#[serde(untagged)]
enum OwnBody {
    Batch { records: Vec<Cdr> },
    One(Cdr),
}

impl<'de> Deserialize<'de> for CdrBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The body is already bounded by the request size limit, so reading it as a value
        // first (to look at its shape) costs at most a copy of a bounded document.
        let value = serde_json::Value::deserialize(deserializer)?;
        if asterisk::is_asterisk_shaped(&value) {
            return asterisk::records(value)
                .map(CdrBody::Asterisk)
                .map_err(D::Error::custom);
        }
        match serde_json::from_value(value).map_err(D::Error::custom)? {
            OwnBody::Batch { records } => Ok(CdrBody::Batch { records }),
            OwnBody::One(record) => Ok(CdrBody::One(record)),
        }
    }
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

/// Most records in one request (a PBX batches; larger batches are split by the sender).
pub const MAX_RECORDS_PER_REQUEST: usize = 1000;
/// Longest PBX record id and disposition accepted.
const MAX_TEXT_LEN: usize = 128;

fn invalid(field: &'static str, code: &'static str, message: &'static str) -> CdrError {
    CdrError::Invalid {
        field,
        code,
        message,
    }
}

fn time(field: &'static str, value: &str, now: i64) -> Result<i64, CdrError> {
    let at = chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| invalid(field, "invalid_time", "expected an RFC 3339 time"))?;
    if !call_bounds::time_in_bounds(at, now) {
        return Err(invalid(
            field,
            "time_out_of_range",
            "must lie between 2000-01-01 and one day from now",
        ));
    }
    Ok(at)
}

/// `local` numbers (from a PBX, already checked by [`asterisk`]) may be extensions or
/// national numbers; the project's own schema requires E.164.
fn number(
    field: &'static str,
    value: Option<String>,
    local: bool,
) -> Result<Option<String>, CdrError> {
    match value {
        Some(n) if !local && !is_e164(&n) => Err(invalid(
            field,
            "invalid_number",
            "expected an E.164 number (+ and 2-15 digits)",
        )),
        other => Ok(other),
    }
}

/// One CDR checked against the bounds of [`call_bounds`] and turned into a call record with
/// `status` (the project's own schema records completed calls; a PBX's disposition says).
fn record(
    tenant_id: &str,
    cdr: Cdr,
    status: CallStatus,
    local_numbers: bool,
    now: i64,
) -> Result<CallRow, CdrError> {
    if cdr.id.is_empty() || cdr.id.len() > MAX_TEXT_LEN {
        return Err(invalid("id", "invalid_id", "expected 1-128 characters"));
    }
    if cdr.disposition.is_empty() || cdr.disposition.len() > MAX_TEXT_LEN {
        return Err(invalid(
            "disposition",
            "invalid_disposition",
            "expected 1-128 characters",
        ));
    }
    if !matches!(cdr.direction.as_str(), "inbound" | "outbound") {
        return Err(invalid(
            "direction",
            "invalid_direction",
            "expected inbound or outbound",
        ));
    }
    let from = number("from", cdr.from, local_numbers)?;
    let to = number("to", cdr.to, local_numbers)?;
    let started_at = time("start", &cdr.start, now)?;
    let answered_at = cdr
        .answer
        .as_deref()
        .map(|a| time("answer", a, now))
        .transpose()?;
    let ended_at = cdr
        .end
        .as_deref()
        .map(|e| time("end", e, now))
        .transpose()?;
    if answered_at.is_some_and(|a| a < started_at) {
        return Err(invalid(
            "answer",
            "answer_before_start",
            "must not be before start",
        ));
    }
    if ended_at.is_some_and(|e| e < answered_at.unwrap_or(started_at)) {
        return Err(invalid(
            "end",
            "end_before_start",
            "must not be before start or answer",
        ));
    }
    let duration = match cdr.duration {
        Some(seconds) => Some(seconds),
        // Both times are bounded, so the difference cannot overflow.
        None => ended_at.zip(answered_at).map(|(e, a)| (e - a) / 1000),
    };
    if duration.is_some_and(|d| !call_bounds::duration_in_bounds(d)) {
        return Err(invalid(
            "duration",
            "duration_out_of_range",
            "must be between 0 and 86400 seconds",
        ));
    }
    Ok(CallRow {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        carrier: "pbx".to_owned(),
        carrier_call_id: Some(cdr.id),
        direction: cdr.direction,
        from_number: from,
        to_number: to,
        status: status.as_str().to_owned(),
        outcome: Some(cdr.disposition),
        started_at,
        answered_at,
        ended_at,
        duration_seconds: duration,
        source: "cdr".to_owned(),
        updated_at: now,
        ..CallRow::default()
    })
}

/// Every record of a body checked and turned into call records (all or none). Errors on a
/// PBX-shaped body name the PBX's field (`src`, not `from`).
fn rows(tenant_id: &str, body: CdrBody, now: i64) -> Result<Vec<CallRow>, CdrError> {
    let too_many = |field| {
        invalid(
            field,
            "too_many_records",
            "at most 1000 records per request",
        )
    };
    match body {
        CdrBody::Batch { records } if records.len() > MAX_RECORDS_PER_REQUEST => {
            Err(too_many("records"))
        }
        CdrBody::Batch { records } => records
            .into_iter()
            .map(|cdr| record(tenant_id, cdr, CallStatus::Completed, false, now))
            .collect(),
        CdrBody::One(cdr) => Ok(vec![record(
            tenant_id,
            cdr,
            CallStatus::Completed,
            false,
            now,
        )?]),
        CdrBody::Asterisk(records) if records.len() > MAX_RECORDS_PER_REQUEST => {
            Err(too_many("cdr"))
        }
        CdrBody::Asterisk(records) => records
            .into_iter()
            .map(|pbx| {
                let mapped = asterisk::map(pbx)?;
                record(tenant_id, mapped.cdr, mapped.status, true, now).map_err(|error| match error
                {
                    CdrError::Invalid {
                        field,
                        code,
                        message,
                    } => CdrError::Invalid {
                        field: asterisk::pbx_field(field),
                        code,
                        message,
                    },
                    other => other,
                })
            })
            .collect(),
    }
}

/// Checks every record of a body for the tenant `tenant_id` (whose credential the caller
/// verified, see [`credentials::CdrCredentials`]) and stores them through the group-commit
/// writer: all of a body or nothing, answered once committed.
pub async fn ingest(
    writer: &CallWriter,
    tenant_id: &str,
    body: CdrBody,
) -> Result<CdrReply, CdrError> {
    let rows = rows(tenant_id, body, now_ms())?;
    let stored = writer.store_cdrs(tenant_id, rows).await?;
    Ok(CdrReply {
        stored: stored.stored,
        duplicates: stored.duplicates,
    })
}
