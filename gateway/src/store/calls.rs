//! Call records and transcript turns.

use serde::Serialize;
use sqlx::AnyConnection;

use super::StoreError;

/// One call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct CallRow {
    /// Gateway call id (also the runtime's `callId`).
    pub id: String,
    /// Tenant id.
    #[serde(skip)]
    pub tenant_id: String,
    /// `twilio`, `telnyx`, `sandbox` or `pbx`.
    pub carrier: String,
    /// The carrier's id (`CallSid`, `call_control_id`, CDR id).
    pub carrier_call_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Caller.
    pub from_number: Option<String>,
    /// Callee.
    pub to_number: Option<String>,
    /// Latest carrier status (`ringing`, `in-progress`, `completed`, …).
    pub status: String,
    /// Final outcome (`completed`, `busy`, `no-answer`, `failed`, `canceled`, `refused`, …).
    pub outcome: Option<String>,
    /// Start (Unix ms).
    pub started_at: i64,
    /// Answer (Unix ms).
    pub answered_at: Option<i64>,
    /// End (Unix ms).
    pub ended_at: Option<i64>,
    /// Duration in seconds.
    pub duration_seconds: Option<i64>,
    /// Conversation turns.
    pub turns: Option<i64>,
    /// Campaign name for campaign calls.
    pub campaign: Option<String>,
    /// Contact id for campaign calls.
    pub contact: Option<String>,
    /// `carrier`, `runtime` or `cdr`.
    pub source: String,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, carrier, carrier_call_id, direction, from_number, to_number, status, outcome, \
    started_at, answered_at, ended_at, duration_seconds, turns, campaign, contact, source, updated_at";

/// Most rows in one multi-row statement (18 parameters a row: 4,608 parameters, below both
/// backends' limits).
pub const MAX_ROWS_PER_STATEMENT: usize = 256;

/// Splits `n` rows into statement sizes that are powers of two (at most
/// [`MAX_ROWS_PER_STATEMENT`]), largest first: a handful of distinct statements, so each
/// connection's prepared-statement cache keeps them all instead of preparing one per batch size.
pub fn chunk_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    while n > 0 {
        let size = if n >= MAX_ROWS_PER_STATEMENT {
            MAX_ROWS_PER_STATEMENT
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        sizes.push(size);
        n -= size;
    }
    sizes
}

/// `($1, $2, …), (…)` for `rows` rows of `columns` placeholders.
pub(crate) fn values_placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * columns + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Inserts call rows in multi-row statements, skipping those whose id or `(tenant, carrier,
/// carrier call id)` is stored already or repeated earlier in `rows`;
/// returns the `(carrier, carrier call id)` of the rows inserted now (their ids are the rows').
/// The group-commit writer's insert ([`crate::calls::writer`]).
pub async fn insert_new(
    conn: &mut AnyConnection,
    rows: &[&CallRow],
) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
    let mut inserted = std::collections::HashSet::new();
    let mut rest = rows;
    for size in chunk_sizes(rows.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = format!(
            "INSERT INTO calls (id, tenant_id, carrier, carrier_call_id, direction, from_number, to_number, status, outcome, \
             started_at, answered_at, ended_at, duration_seconds, turns, campaign, contact, source, updated_at) \
             VALUES {} ON CONFLICT DO NOTHING RETURNING carrier, carrier_call_id",
            values_placeholders(size, 18)
        );
        let mut query = sqlx::query_as::<_, (String, Option<String>)>(&sql);
        for row in chunk {
            query = query
                .bind(&row.id)
                .bind(&row.tenant_id)
                .bind(&row.carrier)
                .bind(&row.carrier_call_id)
                .bind(&row.direction)
                .bind(&row.from_number)
                .bind(&row.to_number)
                .bind(&row.status)
                .bind(&row.outcome)
                .bind(row.started_at)
                .bind(row.answered_at)
                .bind(row.ended_at)
                .bind(row.duration_seconds)
                .bind(row.turns)
                .bind(&row.campaign)
                .bind(&row.contact)
                .bind(&row.source)
                .bind(row.updated_at);
        }
        for (carrier, carrier_call_id) in query.fetch_all(&mut *conn).await? {
            if let Some(carrier_call_id) = carrier_call_id {
                inserted.insert((carrier, carrier_call_id));
            }
        }
    }
    Ok(inserted)
}

/// Inserts a call unless the carrier id is known; returns the stored record either way.
pub async fn insert_or_get(conn: &mut AnyConnection, row: &CallRow) -> Result<CallRow, StoreError> {
    // The one-row case of the group-commit insert: one column list, one statement shape.
    insert_new(&mut *conn, &[row]).await?;
    let found = match &row.carrier_call_id {
        Some(carrier_id) => {
            by_carrier_id(&mut *conn, &row.tenant_id, &row.carrier, carrier_id).await?
        }
        None => get(&mut *conn, &row.tenant_id, &row.id).await?,
    };
    found.ok_or_else(|| StoreError::Corrupt("call vanished after insert".into()))
}

/// A call by gateway id.
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<CallRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// A call by carrier id.
pub async fn by_carrier_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    carrier: &str,
    carrier_call_id: &str,
) -> Result<Option<CallRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM calls WHERE tenant_id = $1 AND carrier = $2 AND carrier_call_id = $3"
    ))
    .bind(tenant_id)
    .bind(carrier)
    .bind(carrier_call_id)
    .fetch_optional(conn)
    .await?)
}

/// Writes the mutable fields of a call.
pub async fn update(conn: &mut AnyConnection, row: &CallRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE calls SET status = $1, outcome = $2, answered_at = $3, ended_at = $4, duration_seconds = $5, \
         turns = $6, from_number = $7, to_number = $8, campaign = $9, contact = $10, updated_at = $11 \
         WHERE tenant_id = $12 AND id = $13",
    )
    .bind(&row.status)
    .bind(&row.outcome)
    .bind(row.answered_at)
    .bind(row.ended_at)
    .bind(row.duration_seconds)
    .bind(row.turns)
    .bind(&row.from_number)
    .bind(&row.to_number)
    .bind(&row.campaign)
    .bind(&row.contact)
    .bind(row.updated_at)
    .bind(&row.tenant_id)
    .bind(&row.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the carrier's id of an outbound call once the carrier accepted it.
pub async fn set_carrier_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    carrier_call_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE calls SET carrier_call_id = $3, status = CASE WHEN status = 'dialing' THEN 'queued' ELSE status END, \
         updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND carrier_call_id IS NULL",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(carrier_call_id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends a call that never reached (or never came back from) the carrier with `outcome`.
pub async fn end_unconnected(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    outcome: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE calls SET status = $3, outcome = $3, ended_at = $4, duration_seconds = 0, updated_at = $4 \
         WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(outcome)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Filters of the call list.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Only this direction.
    pub direction: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Calls started at or after (Unix ms).
    pub from: Option<i64>,
    /// Calls started before (Unix ms).
    pub to: Option<i64>,
    /// Only calls of this campaign.
    pub campaign: Option<String>,
}

fn where_clause(filter: &CallFilter) -> (String, Vec<FilterValue>) {
    let mut sql = String::from(" WHERE tenant_id = $1");
    let mut values = Vec::new();
    let mut push = |sql: &mut String, column: &str, op: &str, value: FilterValue| {
        values.push(value);
        sql.push_str(&format!(" AND {column} {op} ${}", values.len() + 1));
    };
    if let Some(v) = &filter.direction {
        push(&mut sql, "direction", "=", FilterValue::Text(v.clone()));
    }
    if let Some(v) = &filter.outcome {
        push(&mut sql, "outcome", "=", FilterValue::Text(v.clone()));
    }
    if let Some(v) = &filter.campaign {
        push(&mut sql, "campaign", "=", FilterValue::Text(v.clone()));
    }
    if let Some(v) = filter.from {
        push(&mut sql, "started_at", ">=", FilterValue::Int(v));
    }
    if let Some(v) = filter.to {
        push(&mut sql, "started_at", "<", FilterValue::Int(v));
    }
    (sql, values)
}

enum FilterValue {
    Text(String),
    Int(i64),
}

/// A page of calls, newest first; `before` is the cursor (`started_at`, `id`) of the last
/// call of the previous page.
pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &CallFilter,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<CallRow>, StoreError> {
    let (mut sql, values) = where_clause(filter);
    let mut next = values.len() + 2;
    if before.is_some() {
        sql.push_str(&format!(
            " AND (started_at < ${next} OR (started_at = ${next} AND id < ${}))",
            next + 1
        ));
        next += 2;
    }
    let sql =
        format!("SELECT {COLUMNS} FROM calls{sql} ORDER BY started_at DESC, id DESC LIMIT ${next}");
    let mut query = sqlx::query_as(&sql).bind(tenant_id);
    for value in values {
        query = match value {
            FilterValue::Text(t) => query.bind(t),
            FilterValue::Int(i) => query.bind(i),
        };
    }
    if let Some((at, id)) = before {
        query = query.bind(at).bind(id);
    }
    Ok(query.bind(limit).fetch_all(conn).await?)
}

/// Aggregates over the filtered calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallStats {
    /// Calls.
    pub total: i64,
    /// Calls that were answered.
    pub answered: i64,
    /// Sum of durations, seconds.
    pub total_seconds: i64,
}

/// Counts, answered calls and total seconds of the filtered calls.
pub async fn stats(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &CallFilter,
) -> Result<CallStats, StoreError> {
    let (sql, values) = where_clause(filter);
    let sql = format!(
        // CAST: Postgres sums BIGINT into NUMERIC, which does not decode as i64.
        "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(duration_seconds), 0) AS BIGINT) FROM calls{sql}"
    );
    let mut query = sqlx::query_as::<_, (i64, i64, i64)>(&sql).bind(tenant_id);
    for value in values {
        query = match value {
            FilterValue::Text(t) => query.bind(t),
            FilterValue::Int(i) => query.bind(i),
        };
    }
    let (total, answered, total_seconds) = query.fetch_one(conn).await?;
    Ok(CallStats {
        total,
        answered,
        total_seconds,
    })
}

/// Stores a transcript turn (replays overwrite nothing).
pub async fn insert_turn(
    conn: &mut AnyConnection,
    tenant_id: &str,
    call_id: &str,
    index: i64,
    role: &str,
    text: &str,
    offset_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO call_turns (tenant_id, call_id, idx, role, text, offset_ms) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, call_id, idx) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(call_id)
    .bind(index)
    .bind(role)
    .bind(text)
    .bind(offset_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// One transcript turn.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnRow {
    /// Position in the call.
    pub idx: i64,
    /// `caller` or `agent`.
    pub role: String,
    /// Text.
    pub text: String,
    /// Milliseconds from stream start.
    pub offset_ms: i64,
}

/// The transcript of a call.
pub async fn turns(
    conn: &mut AnyConnection,
    tenant_id: &str,
    call_id: &str,
) -> Result<Vec<TurnRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT idx, role, text, offset_ms FROM call_turns WHERE tenant_id = $1 AND call_id = $2 ORDER BY idx",
    )
    .bind(tenant_id)
    .bind(call_id)
    .fetch_all(conn)
    .await?)
}

/// Records a runtime event id; `false` when it was applied before.
pub async fn claim_runtime_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO runtime_events (tenant_id, id, received_at) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(event_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The CDR basic-auth credential of a tenant: (username, password hash).
pub async fn cdr_credential(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT username, password_hash FROM cdr_credentials WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Sets (or replaces) the CDR credential of a tenant.
pub async fn set_cdr_credential(
    conn: &mut AnyConnection,
    tenant_id: &str,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO cdr_credentials (tenant_id, username, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) DO UPDATE SET username = excluded.username, password_hash = excluded.password_hash, \
         created_at = excluded.created_at",
    )
    .bind(tenant_id)
    .bind(username)
    .bind(password_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where a call is (`calls::lifecycle` moves it). Stored in [`CallRow::status`] as its wire
/// name: the carriers' own words, Twilio's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// The dialer wrote the attempt; the carrier has not been asked yet.
    Dialing,
    /// The carrier accepted the call request.
    Queued,
    /// The carrier started the call.
    Initiated,
    /// The callee's phone rings.
    Ringing,
    /// Answered and connected.
    InProgress,
    /// Ended after being answered.
    Completed,
    /// The callee was busy.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// The call could not be placed.
    Failed,
    /// Hung up (or rejected) before being answered.
    Canceled,
}

impl CallStatus {
    /// Every status.
    pub const ALL: [CallStatus; 10] = [
        CallStatus::Dialing,
        CallStatus::Queued,
        CallStatus::Initiated,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    /// The stored and wire name (`in-progress`, `no-answer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Dialing => "dialing",
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// The status a carrier names (Twilio's `CallStatus` words), `None` for others.
    pub fn parse(text: &str) -> Option<Self> {
        CallStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the status ends the call.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::NoAnswer
                | CallStatus::Failed
                | CallStatus::Canceled
        )
    }
}

impl std::fmt::Display for CallStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Claims the media stream of a call; `false` when a stream of this call was opened before
/// (a call token opens one stream, however often it is replayed within its lifetime).
pub async fn claim_media_stream(
    conn: &mut AnyConnection,
    tenant_id: &str,
    call_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO media_stream_claims (tenant_id, call_id, claimed_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(call_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the media stream claims made before `before` (Unix ms) of every tenant the
/// transaction sees (a system transaction: all); returns how many.
pub async fn delete_media_stream_claims_before(
    conn: &mut AnyConnection,
    before: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query("DELETE FROM media_stream_claims WHERE claimed_at < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_ends_are_terminal() {
        for status in CallStatus::ALL {
            assert_eq!(CallStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            CallStatus::parse("in-progress"),
            Some(CallStatus::InProgress)
        );
        assert_eq!(CallStatus::parse("answered"), None);
        let terminal: Vec<_> = CallStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(CallStatus::as_str)
            .collect();
        assert_eq!(
            terminal,
            ["completed", "busy", "no-answer", "failed", "canceled"]
        );
    }
}
