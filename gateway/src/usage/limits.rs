//! Effective plan limits: the plan's defaults (`switchboard_crds::Plan::limits`), then the
//! operator's overrides per plan (`SWITCHBOARD_PLAN_LIMITS`), then the tenant's own overrides
//! (stored with its billing row). Pure functions, unit tested.

use std::collections::HashMap;

use chrono::{Datelike, TimeZone, Utc};
use serde_json::Value;
use switchboard_crds::{Plan, PlanLimits};

/// Overrides per plan name, each a JSON object of `PlanLimits` fields (camelCase).
#[derive(Debug, Clone, Default)]
pub struct PlanOverrides(HashMap<String, Value>);

/// `SWITCHBOARD_PLAN_LIMITS` is not a JSON object of objects.
#[derive(Debug, thiserror::Error)]
#[error("SWITCHBOARD_PLAN_LIMITS must be a JSON object of plan name to limits: {0}")]
pub struct OverridesError(String);

impl PlanOverrides {
    /// Parses `{"free": {"monthlyCalls": 100}, …}`.
    pub fn parse(text: Option<&str>) -> Result<Self, OverridesError> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let map: HashMap<String, Value> =
            serde_json::from_str(text).map_err(|e| OverridesError(e.to_string()))?;
        for (plan, limits) in &map {
            plan.parse::<Plan>().map_err(OverridesError)?;
            merge(Plan::Free.limits(), limits)
                .ok_or_else(|| OverridesError(format!("bad limits for {plan}")))?;
        }
        Ok(Self(map))
    }
}

fn merge(base: PlanLimits, patch: &Value) -> Option<PlanLimits> {
    let mut value = serde_json::to_value(base).ok()?;
    let (Value::Object(target), Value::Object(patch)) = (&mut value, patch) else {
        return None;
    };
    for (key, v) in patch {
        target.insert(key.clone(), v.clone());
    }
    serde_json::from_value(value).ok()
}

/// The limits of a tenant on `plan` (unknown plan names get the free plan's, the safe side).
pub fn effective(plan: &str, overrides: &PlanOverrides, tenant_overrides: &str) -> PlanLimits {
    let plan: Plan = plan.parse().unwrap_or(Plan::Free);
    let mut limits = plan.limits();
    if let Some(patch) = overrides.0.get(plan.as_str()) {
        limits = merge(limits, patch).unwrap_or(limits);
    }
    if let Ok(patch) = serde_json::from_str::<Value>(tenant_overrides) {
        limits = merge(limits, &patch).unwrap_or(limits);
    }
    limits
}

/// The metering period of a Unix-ms instant: `YYYY-MM` in UTC.
pub fn period_of(now_ms: i64) -> String {
    let at = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_else(Utc::now);
    format!("{:04}-{:02}", at.year(), at.month())
}

/// Seconds from `now_ms` to the start of the next period (the `Retry-After` of a monthly limit).
pub fn seconds_until_next_period(now_ms: i64) -> u64 {
    let at = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_else(Utc::now);
    let (year, month) = if at.month() == 12 {
        (at.year() + 1, 1)
    } else {
        (at.year(), at.month() + 1)
    };
    let next = Utc
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .map(|t| t.timestamp_millis())
        .unwrap_or(now_ms + 86_400_000);
    u64::try_from((next - now_ms).max(1_000) / 1_000).unwrap_or(1)
}

/// Threshold levels (percent) that `value` has reached against `limit`.
pub fn levels_reached(value: i64, limit: Option<u64>) -> Vec<i64> {
    let Some(limit) = limit.and_then(|l| i64::try_from(l).ok()).filter(|l| *l > 0) else {
        return Vec::new();
    };
    [80, 100]
        .into_iter()
        .filter(|level| value.saturating_mul(100) >= level * limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_in_order() {
        let overrides = PlanOverrides::parse(Some(r#"{"free":{"monthlyCalls":70}}"#)).unwrap();
        let free = effective("free", &overrides, "{}");
        assert_eq!(free.monthly_calls, Some(70));
        assert_eq!(free.monthly_api_requests, Some(1_000));
        let tenant = effective("free", &overrides, r#"{"monthlyCalls":null}"#);
        assert_eq!(tenant.monthly_calls, None);
        assert_eq!(effective("gold", &overrides, "{}").monthly_calls, Some(70));
        assert_eq!(
            effective("enterprise", &PlanOverrides::default(), "{}").monthly_calls,
            None
        );
        assert!(PlanOverrides::parse(Some(r#"{"gold":{}}"#)).is_err());
        assert!(PlanOverrides::parse(Some("[1]")).is_err());
    }

    #[test]
    fn periods_and_retry_after() {
        // 2026-11-30T23:59:00Z
        let late = 1_796_083_140_000;
        assert_eq!(period_of(late), "2026-11");
        assert_eq!(seconds_until_next_period(late), 60);
        // 2026-12-31T23:00:00Z rolls into January.
        assert_eq!(seconds_until_next_period(1_798_758_000_000), 3_600);
    }

    #[test]
    fn threshold_levels() {
        assert!(levels_reached(39, Some(50)).is_empty());
        assert_eq!(levels_reached(40, Some(50)), vec![80]);
        assert_eq!(levels_reached(50, Some(50)), vec![80, 100]);
        assert!(levels_reached(10_000, None).is_empty());
    }
}
