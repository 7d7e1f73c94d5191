//! The dialer's rows: attempts, per-contact dialing state, survey answers and the
//! do-not-call list.
//!
//! Every function takes the caller's transaction, which is scoped to the tenant (row-level
//! security on Postgres) except [`campaigns_to_work`], which runs under the system scope.

use serde::Serialize;
use sqlx::AnyConnection;

use super::campaigns::{COLUMNS as CAMPAIGN_COLUMNS, CampaignRow};
use super::{Backend, StoreError};

/// A contact that is due for a call.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueContact {
    /// Contact id.
    pub id: String,
    /// E.164 number.
    pub phone: String,
    /// Claims made so far (the next attempt's sequence number is this plus one).
    pub dial_seq: i64,
}

/// An attempt about to be dialled.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    /// Attempt id, also the idempotency key given to the carrier.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Campaign name.
    pub campaign: String,
    /// Contact id.
    pub contact_id: String,
    /// Sequence number of this attempt for the contact (1, 2, …).
    pub seq: i64,
    /// Gateway call id of the call record written with the attempt.
    pub call_id: String,
    /// Which dialer instance claimed it.
    pub dialer: String,
    /// When (dialer clock, Unix ms).
    pub created_at: i64,
}

/// An ended attempt whose contact has not been updated yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndedAttempt {
    /// Attempt id.
    pub id: String,
    /// Contact id.
    pub contact_id: String,
    /// Stored outcome.
    pub outcome: String,
    /// 1 when the attempt counts against the retry policy's attempts, 0 when it never
    /// reached the carrier (rate limited, plan limit).
    pub counts: i64,
    /// Gateway call id.
    pub call_id: String,
    /// Counted attempts the contact has had, this one included.
    pub attempts: i64,
}

/// One contact's result.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactResult {
    /// Contact id.
    pub id: String,
    /// E.164 number.
    pub phone: String,
    /// Name.
    pub name: Option<String>,
    /// `pending`, `dialing`, `completed`, `no_answer` or `failed`.
    pub state: String,
    /// Counted attempts.
    pub attempts: i64,
    /// Outcome of the latest attempt (`do-not-call` when the number is on the list).
    pub last_outcome: Option<String>,
    /// Gateway call id of the latest attempt.
    pub last_call_id: Option<String>,
    /// Variables from the contacts CSV (JSON object).
    #[serde(skip)]
    pub variables: String,
}

/// One stored survey answer.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AnswerRow {
    /// Contact id.
    #[serde(skip)]
    pub contact_id: String,
    /// The question's field.
    pub field: String,
    /// The caller's words.
    pub raw: String,
    /// The structured value (JSON text).
    #[serde(skip)]
    pub value: String,
    /// Call the answer was given on.
    pub call_id: String,
}

/// An entry of a tenant's do-not-call list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoNotCallRow {
    /// E.164 number.
    pub phone: String,
    /// Why it was added.
    pub reason: Option<String>,
    /// When (Unix ms).
    pub created_at: i64,
}

/// Campaigns the dialer has work on, across tenants (system scope): live ones, and stopped
/// or finished ones that still have attempts to settle.
pub async fn campaigns_to_work(conn: &mut AnyConnection) -> Result<Vec<CampaignRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns c \
         WHERE (c.deleted_at IS NULL AND c.phase NOT IN ('Completed', 'Failed')) \
         OR EXISTS (SELECT 1 FROM campaign_attempts a WHERE a.tenant_id = c.tenant_id AND a.campaign = c.name \
         AND a.settled_at IS NULL) ORDER BY c.tenant_id, c.name"
    ))
    .fetch_all(conn)
    .await?)
}

/// Locks the campaign row for this claim (Postgres: `FOR UPDATE SKIP LOCKED`, so a second
/// replica skips a campaign another one is claiming for instead of waiting; SQLite: the
/// write transaction already holds the database lock). `false`: someone else holds it.
pub async fn lock_campaign(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant_id: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let row: Option<(String,)> = sqlx::query_as(&format!(
        "SELECT name FROM campaigns WHERE tenant_id = $1 AND name = $2 AND deleted_at IS NULL{lock}"
    ))
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Attempts of a campaign that are dialling or on a call.
pub async fn count_active(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM campaign_attempts WHERE tenant_id = $1 AND campaign = $2 AND state IN ('dialing', 'placed')",
    )
    .bind(tenant_id)
    .bind(campaign)
    .fetch_one(conn)
    .await?)
}

/// Attempts started at or after `since_ms`, and the latest start ever (for pacing). Two
/// index range reads on `(tenant_id, campaign, created_at)`.
pub async fn started_since(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    since_ms: i64,
) -> Result<(i64, Option<i64>), StoreError> {
    let in_window: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM campaign_attempts WHERE tenant_id = $1 AND campaign = $2 AND created_at >= $3",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(since_ms)
    .fetch_one(&mut *conn)
    .await?;
    let latest: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(created_at) FROM campaign_attempts WHERE tenant_id = $1 AND campaign = $2",
    )
    .bind(tenant_id)
    .bind(campaign)
    .fetch_one(conn)
    .await?;
    Ok((in_window, latest))
}

/// Finishes pending contacts whose number is on the tenant's do-not-call list.
pub async fn skip_do_not_call(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE campaign_contacts SET state = 'failed', last_outcome = 'do-not-call', updated_at = $3 \
         WHERE tenant_id = $1 AND campaign = $2 AND state = 'pending' \
         AND phone IN (SELECT phone FROM do_not_call WHERE tenant_id = $1)",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Pending contacts due at `now_ms`, oldest due first, at most `limit`; on Postgres the rows
/// are locked with `SKIP LOCKED` so concurrent claimers take disjoint contacts.
pub async fn due_contacts(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant_id: &str,
    campaign: &str,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<DueContact>, StoreError> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    Ok(sqlx::query_as(&format!(
        "SELECT id, phone, dial_seq FROM campaign_contacts WHERE tenant_id = $1 AND campaign = $2 \
         AND state = 'pending' AND next_attempt_at <= $3 \
         AND phone NOT IN (SELECT phone FROM do_not_call WHERE tenant_id = $1) \
         ORDER BY next_attempt_at, id LIMIT $4{lock}"
    ))
    .bind(tenant_id)
    .bind(campaign)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Moves a pending contact to `dialing` and records the attempt; `false` (nothing written)
/// when the contact was no longer pending or the attempt exists. The call record is written
/// by the caller in the same transaction.
pub async fn start_attempt(
    conn: &mut AnyConnection,
    attempt: &NewAttempt,
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE campaign_contacts SET state = 'dialing', dial_seq = $4, attempts = attempts + 1, \
         last_call_id = $5, updated_at = $6 \
         WHERE tenant_id = $1 AND campaign = $2 AND id = $3 AND state = 'pending' AND dial_seq = $4 - 1",
    )
    .bind(&attempt.tenant_id)
    .bind(&attempt.campaign)
    .bind(&attempt.contact_id)
    .bind(attempt.seq)
    .bind(&attempt.call_id)
    .bind(attempt.created_at)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO campaign_attempts (id, tenant_id, campaign, contact_id, seq, call_id, dialer, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'dialing', $8)",
    )
    .bind(&attempt.id)
    .bind(&attempt.tenant_id)
    .bind(&attempt.campaign)
    .bind(&attempt.contact_id)
    .bind(attempt.seq)
    .bind(&attempt.call_id)
    .bind(&attempt.dialer)
    .bind(attempt.created_at)
    .execute(conn)
    .await?;
    Ok(true)
}

/// Records that the carrier accepted the attempt's call.
pub async fn attempt_placed(
    conn: &mut AnyConnection,
    tenant_id: &str,
    attempt_id: &str,
    carrier_call_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE campaign_attempts SET state = 'placed', carrier_call_id = $3, placed_at = $4 \
         WHERE tenant_id = $1 AND id = $2 AND state = 'dialing'",
    )
    .bind(tenant_id)
    .bind(attempt_id)
    .bind(carrier_call_id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends an attempt that has not ended yet; `counts` = false when it never reached the
/// carrier and must not use up one of the contact's attempts.
pub async fn end_attempt(
    conn: &mut AnyConnection,
    tenant_id: &str,
    attempt_id: &str,
    outcome: &str,
    counts: bool,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE campaign_attempts SET state = 'ended', outcome = $3, counts = $4, ended_at = $5 \
         WHERE tenant_id = $1 AND id = $2 AND state <> 'ended'",
    )
    .bind(tenant_id)
    .bind(attempt_id)
    .bind(outcome)
    .bind(i64::from(counts))
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends the attempt a finished call belongs to (from the carrier's status callback or the
/// runtime's `callEnded`, whichever comes first).
pub async fn end_attempt_for_call(
    conn: &mut AnyConnection,
    tenant_id: &str,
    call_id: &str,
    outcome: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE campaign_attempts SET state = 'ended', outcome = $3, ended_at = $4 \
         WHERE tenant_id = $1 AND call_id = $2 AND state <> 'ended'",
    )
    .bind(tenant_id)
    .bind(call_id)
    .bind(outcome)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Ends attempts nobody heard back about: `dialing` since before `dialing_before` (the
/// dialer died between writing the attempt and recording the carrier's answer) and `placed`
/// since before `placed_before` (the end of the call was never reported). Their outcome is
/// `unknown`, which is never retried.
pub async fn expire_stuck(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    dialing_before: i64,
    placed_before: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE campaign_attempts SET state = 'ended', outcome = 'unknown', ended_at = $5 \
         WHERE tenant_id = $1 AND campaign = $2 AND \
         ((state = 'dialing' AND created_at < $3) OR (state = 'placed' AND placed_at < $4))",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(dialing_before)
    .bind(placed_before)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Ended attempts whose contacts still wait for the verdict.
pub async fn unsettled(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
) -> Result<Vec<EndedAttempt>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.contact_id, COALESCE(a.outcome, 'unknown') AS outcome, a.counts, a.call_id, c.attempts \
         FROM campaign_attempts a JOIN campaign_contacts c \
         ON c.tenant_id = a.tenant_id AND c.campaign = a.campaign AND c.id = a.contact_id \
         WHERE a.tenant_id = $1 AND a.campaign = $2 AND a.state = 'ended' AND a.settled_at IS NULL \
         ORDER BY a.ended_at, a.id",
    )
    .bind(tenant_id)
    .bind(campaign)
    .fetch_all(conn)
    .await?)
}

/// Applies an attempt's verdict to its contact: back to `pending` at `retry_at`, or the
/// final `state`; an attempt that did not count gives its attempt back.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    attempt: &EndedAttempt,
    state: &str,
    retry_at: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE campaign_contacts SET state = $4, next_attempt_at = $5, last_outcome = $6, \
         attempts = attempts - (1 - $7), updated_at = $8 \
         WHERE tenant_id = $1 AND campaign = $2 AND id = $3 AND state = 'dialing'",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(&attempt.contact_id)
    .bind(state)
    .bind(retry_at)
    .bind(&attempt.outcome)
    .bind(attempt.counts)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE campaign_attempts SET settled_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(&attempt.id)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a campaign's phase and the reason it is not dialling (`None`: it is); `true` when
/// something changed.
pub async fn set_phase(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    phase: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE campaigns SET phase = $3, reason = $4, updated_at = $5 WHERE tenant_id = $1 AND name = $2 \
         AND phase <> 'Completed' AND (phase <> $3 OR COALESCE(reason, '') <> COALESCE($4, ''))",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(phase)
    .bind(reason)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The attempt behind an outbound call being answered.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptCall {
    /// Campaign name.
    pub campaign: String,
    /// Contact id.
    pub contact_id: String,
    /// Gateway call id.
    pub call_id: String,
}

/// An attempt by id (the id travels in the answer URL).
pub async fn attempt(
    conn: &mut AnyConnection,
    tenant_id: &str,
    attempt_id: &str,
) -> Result<Option<AttemptCall>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT campaign, contact_id, call_id FROM campaign_attempts WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(attempt_id)
    .fetch_optional(conn)
    .await?)
}

/// Stores (or replaces) a survey answer.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_answer(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    contact_id: &str,
    field: &str,
    raw: &str,
    value: &str,
    call_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO campaign_answers (tenant_id, campaign, contact_id, field, raw, value, call_id, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, campaign, contact_id, field) DO UPDATE SET \
         raw = excluded.raw, value = excluded.value, call_id = excluded.call_id, updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(contact_id)
    .bind(field)
    .bind(raw)
    .bind(value)
    .bind(call_id)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// A page of contact results ordered by id, after `after` (exclusive).
pub async fn results(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<ContactResult>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, phone, name, state, attempts, last_outcome, last_call_id, variables FROM campaign_contacts \
         WHERE tenant_id = $1 AND campaign = $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Answers of the contacts with ids in `first..=last`.
pub async fn answers_between(
    conn: &mut AnyConnection,
    tenant_id: &str,
    campaign: &str,
    first: &str,
    last: &str,
) -> Result<Vec<AnswerRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT contact_id, field, raw, value, call_id FROM campaign_answers \
         WHERE tenant_id = $1 AND campaign = $2 AND contact_id >= $3 AND contact_id <= $4 \
         ORDER BY contact_id, field",
    )
    .bind(tenant_id)
    .bind(campaign)
    .bind(first)
    .bind(last)
    .fetch_all(conn)
    .await?)
}

/// Adds a number to the do-not-call list (already listed: reason kept); `true` when new.
pub async fn add_do_not_call(
    conn: &mut AnyConnection,
    tenant_id: &str,
    phone: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO do_not_call (tenant_id, phone, reason, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, phone) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(phone)
    .bind(reason)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes a number from the list; `true` when it was there.
pub async fn remove_do_not_call(
    conn: &mut AnyConnection,
    tenant_id: &str,
    phone: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM do_not_call WHERE tenant_id = $1 AND phone = $2")
        .bind(tenant_id)
        .bind(phone)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// A page of the tenant's do-not-call list, by number: at most `limit` entries after `after`.
pub async fn list_do_not_call(
    conn: &mut AnyConnection,
    tenant_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<DoNotCallRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT phone, reason, created_at FROM do_not_call WHERE tenant_id = $1 AND phone > $2 ORDER BY phone LIMIT $3",
    )
    .bind(tenant_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The numbers on the tenant's list (to check a whole contact list with one read).
pub async fn do_not_call_numbers(
    conn: &mut AnyConnection,
    tenant_id: &str,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let numbers: Vec<String> =
        sqlx::query_scalar("SELECT phone FROM do_not_call WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(conn)
            .await?;
    Ok(numbers.into_iter().collect())
}
