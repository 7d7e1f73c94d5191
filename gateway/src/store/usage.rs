//! Monthly usage counters and the metered events behind them.

use serde::Serialize;
use sqlx::AnyConnection;

use super::StoreError;

/// A metered quantity. Columns of `usage_counters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Calls admitted.
    CallCount,
    /// Call minutes (each call rounded up to whole minutes, as carriers bill).
    CallMinutes,
    /// Customer API requests (API keys).
    ApiRequests,
    /// Speech-to-text audio, milliseconds.
    SttMs,
    /// Text-to-speech characters.
    TtsCharacters,
}

impl Metric {
    /// The counter column (a fixed identifier, never input).
    pub fn column(self) -> &'static str {
        match self {
            Metric::CallCount => "call_count",
            Metric::CallMinutes => "call_minutes",
            Metric::ApiRequests => "api_requests",
            Metric::SttMs => "stt_ms",
            Metric::TtsCharacters => "tts_characters",
        }
    }
}

/// One tenant's usage in one month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct UsageRow {
    /// `YYYY-MM` (UTC).
    pub period: String,
    /// Calls admitted.
    pub call_count: i64,
    /// Billed call minutes.
    pub call_minutes: i64,
    /// API requests.
    pub api_requests: i64,
    /// Speech-to-text milliseconds.
    pub stt_ms: i64,
    /// Text-to-speech characters.
    pub tts_characters: i64,
}

impl UsageRow {
    /// The value of one metric.
    pub fn get(&self, metric: Metric) -> i64 {
        match metric {
            Metric::CallCount => self.call_count,
            Metric::CallMinutes => self.call_minutes,
            Metric::ApiRequests => self.api_requests,
            Metric::SttMs => self.stt_ms,
            Metric::TtsCharacters => self.tts_characters,
        }
    }
}

const COLUMNS: &str = "period, call_count, call_minutes, api_requests, stt_ms, tts_characters";

/// Creates the month's counter row if missing.
pub async fn ensure_row(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO usage_counters (tenant_id, period, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, period) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(period)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records an event id once; `false` when it was seen before (nothing to count).
pub async fn claim_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
    period: &str,
    metric: Metric,
    amount: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO usage_events (tenant_id, id, period, metric, amount, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(event_id)
    .bind(period)
    .bind(metric.column())
    .bind(amount)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Adds `amount` to a counter unconditionally (usage that already happened); returns the new value.
pub async fn add(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
    metric: Metric,
    amount: i64,
    now: i64,
) -> Result<i64, StoreError> {
    ensure_row(&mut *conn, tenant_id, period, now).await?;
    let column = metric.column();
    Ok(sqlx::query_scalar(&format!(
        "UPDATE usage_counters SET {column} = {column} + $1, updated_at = $2 \
         WHERE tenant_id = $3 AND period = $4 RETURNING {column}"
    ))
    .bind(amount)
    .bind(now)
    .bind(tenant_id)
    .bind(period)
    .fetch_one(conn)
    .await?)
}

/// Adds `amount` to a counter in one statement, creating the month's row if missing (the
/// API-request meter's batched write); returns the new value.
pub async fn add_upsert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
    metric: Metric,
    amount: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let column = metric.column();
    Ok(sqlx::query_scalar(&format!(
        "INSERT INTO usage_counters (tenant_id, period, {column}, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, period) DO UPDATE \
         SET {column} = usage_counters.{column} + excluded.{column}, updated_at = excluded.updated_at \
         RETURNING {column}"
    ))
    .bind(tenant_id)
    .bind(period)
    .bind(amount)
    .bind(now)
    .fetch_one(conn)
    .await?)
}

/// Adds one to `metric` only while every `(column, limit)` guard is below its limit, in one
/// atomic statement (so concurrent requests cannot overshoot). `None` when a limit is reached.
pub async fn increment_within(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
    metric: Metric,
    guards: &[(Metric, i64)],
    now: i64,
) -> Result<Option<i64>, StoreError> {
    increment_within_by(conn, tenant_id, period, metric, 1, guards, now).await
}

/// Adds `amount` (≥ 1) to `metric` only if afterwards `metric` stays within its own guard and
/// every other guarded column is below its limit, in one atomic statement: what `amount`
/// separate [`increment_within`] calls would all admit. `None` when that is not so (the
/// caller then admits one at a time).
pub async fn increment_within_by(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
    metric: Metric,
    amount: i64,
    guards: &[(Metric, i64)],
    now: i64,
) -> Result<Option<i64>, StoreError> {
    ensure_row(&mut *conn, tenant_id, period, now).await?;
    let amount = amount.max(1);
    let column = metric.column();
    let mut sql = format!(
        "UPDATE usage_counters SET {column} = {column} + $1, updated_at = $2 \
         WHERE tenant_id = $3 AND period = $4"
    );
    for (i, (guard, _)) in guards.iter().enumerate() {
        sql.push_str(&format!(" AND {} < ${}", guard.column(), i + 5));
    }
    sql.push_str(&format!(" RETURNING {column}"));
    let mut query = sqlx::query_scalar(&sql)
        .bind(amount)
        .bind(now)
        .bind(tenant_id)
        .bind(period);
    for (guard, limit) in guards {
        // `column + amount <= limit` for the counted metric itself, as `column < limit - amount + 1`.
        let bound = if *guard == metric {
            limit.saturating_sub(amount - 1)
        } else {
            *limit
        };
        query = query.bind(bound);
    }
    Ok(query.fetch_optional(conn).await?)
}

/// Claims many metered events of one tenant in multi-row statements (the group-commit
/// writer's [`claim_event`]); returns the ids claimed now (not claimed before, not repeated
/// earlier in `event_ids`).
pub async fn claim_events(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_ids: &[&str],
    period: &str,
    metric: Metric,
    amount: i64,
    now: i64,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut claimed = std::collections::HashSet::new();
    let mut rest = event_ids;
    for size in super::calls::chunk_sizes(event_ids.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = format!(
            "INSERT INTO usage_events (tenant_id, id, period, metric, amount, created_at) \
             VALUES {} ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id",
            super::calls::values_placeholders(size, 6)
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for id in chunk {
            query = query
                .bind(tenant_id)
                .bind(*id)
                .bind(period)
                .bind(metric.column())
                .bind(amount)
                .bind(now);
        }
        claimed.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(claimed)
}

/// The month's usage (zeros when nothing was recorded).
pub async fn get(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
) -> Result<UsageRow, StoreError> {
    let row: Option<UsageRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM usage_counters WHERE tenant_id = $1 AND period = $2"
    ))
    .bind(tenant_id)
    .bind(period)
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_else(|| UsageRow {
        period: period.to_owned(),
        ..UsageRow::default()
    }))
}

/// Months with usage, newest first: at most `months` of them, before the period `before` when given.
pub async fn history(
    conn: &mut AnyConnection,
    tenant_id: &str,
    before: Option<&str>,
    months: i64,
) -> Result<Vec<UsageRow>, StoreError> {
    // `YYYY-MM` sorts as text; "~" sorts after every digit.
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM usage_counters WHERE tenant_id = $1 AND period < $2 ORDER BY period DESC LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(before.unwrap_or("~"))
    .bind(months)
    .fetch_all(conn)
    .await?)
}

/// Records that a threshold notice was raised; `false` when it already was this month.
pub async fn raise_alert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    period: &str,
    metric: Metric,
    level: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO usage_alerts (tenant_id, period, metric, level, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, period, metric, level) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(period)
    .bind(metric.column())
    .bind(level)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// A billed-minutes event not yet reported to Stripe, with its tenant's Stripe customer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnreportedMinutes {
    /// Tenant id.
    pub tenant_id: String,
    /// Usage event id.
    pub id: String,
    /// Minutes.
    pub amount: i64,
    /// When recorded (Unix ms).
    pub created_at: i64,
    /// The tenant's Stripe customer.
    pub stripe_customer_id: String,
}

/// Up to `limit` call-minute events newer than `since` that are not yet reported, of tenants
/// with a Stripe customer and a live subscription, oldest first (in a system transaction).
pub async fn unreported_minutes(
    conn: &mut AnyConnection,
    since: i64,
    limit: i64,
) -> Result<Vec<UnreportedMinutes>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT e.tenant_id, e.id, e.amount, e.created_at, b.stripe_customer_id FROM usage_events e \
         JOIN billing_accounts b ON b.tenant_id = e.tenant_id \
         WHERE e.metric = 'call_minutes' AND e.meter_reported_at IS NULL AND e.created_at > $1 \
         AND b.stripe_customer_id IS NOT NULL AND b.subscription_status IN ('active', 'trialing', 'past_due') \
         ORDER BY e.created_at LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// Marks a usage event as reported to Stripe.
pub async fn mark_reported(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE usage_events SET meter_reported_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(at)
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
