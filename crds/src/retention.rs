//! How long a tenant's data is kept: the platform defaults, the plan's caps and the tenant's
//! own settings, combined in one place ([`effective_retention`]) for the gateway's API and its
//! data-lifecycle worker. Also the grace period of a tenant deletion.
//!
//! Layers, each bounded by the next: the tenant's setting (or [`DEFAULT_RETENTION`] for a kind
//! it leaves unset), then the plan's cap ([`plan_cap_days`]). Days are whole UTC days counted
//! back from now; the worker deletes what is older.

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// The smallest retention a tenant may set, in days.
pub const MIN_RETENTION_DAYS: u32 = 1;
/// The largest retention a tenant may set, in days (ten years); plans cap it further.
pub const MAX_RETENTION_DAYS: u32 = 3650;
/// How long a deleted tenant can be restored before its data is removed, in hours (the
/// gateway's `SWITCHBOARD_DELETION_GRACE_HOURS` default).
pub const DEFAULT_DELETION_GRACE_HOURS: u64 = 7 * 24;

/// Retention per kind of data, in days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Call records (with their transcripts, campaign answers of those calls excepted).
    pub calls_days: u32,
    /// Transcript turns of calls (never longer than the call records).
    pub transcripts_days: u32,
    /// The tenant's audio recordings of calls (never longer than the call records).
    pub recordings_days: u32,
    /// The tenant's audit log.
    pub audit_days: u32,
}

/// The platform's defaults for a tenant that set nothing: a year of call records and audit
/// log, 90 days of transcripts and recordings (the most personal parts).
pub const DEFAULT_RETENTION: Retention = Retention {
    calls_days: 365,
    transcripts_days: 90,
    recordings_days: 90,
    audit_days: 365,
};

/// A tenant's own settings: each kind optional (`null`/absent: the platform default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days of call records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_days: Option<u32>,
    /// Days of transcripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcripts_days: Option<u32>,
    /// Days of call recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recordings_days: Option<u32>,
    /// Days of audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_days: Option<u32>,
}

/// A setting outside [`MIN_RETENTION_DAYS`]..=[`MAX_RETENTION_DAYS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days")]
pub struct RetentionError {
    /// The camelCase field name (`callsDays`, …).
    pub field: &'static str,
}

impl RetentionSettings {
    /// Checks every set value is within bounds.
    pub fn validate(&self) -> Result<(), RetentionError> {
        for (field, value) in [
            ("callsDays", self.calls_days),
            ("transcriptsDays", self.transcripts_days),
            ("recordingsDays", self.recordings_days),
            ("auditDays", self.audit_days),
        ] {
            if let Some(days) = value
                && !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days)
            {
                return Err(RetentionError { field });
            }
        }
        Ok(())
    }
}

/// The longest retention a plan allows, in days: free 30, starter 90, professional 365,
/// enterprise and on-prem [`MAX_RETENTION_DAYS`].
pub fn plan_cap_days(plan: Plan) -> u32 {
    match plan {
        Plan::Free => 30,
        Plan::Starter => 90,
        Plan::Professional => 365,
        Plan::Enterprise | Plan::Onprem => MAX_RETENTION_DAYS,
    }
}

/// The retention in force: the tenant's settings over the defaults, each capped by the plan;
/// transcripts and recordings never outlive their calls.
pub fn effective_retention(plan: Plan, settings: &RetentionSettings) -> Retention {
    let cap = plan_cap_days(plan);
    let pick = |own: Option<u32>, default: u32| {
        own.unwrap_or(default)
            .clamp(MIN_RETENTION_DAYS, MAX_RETENTION_DAYS)
            .min(cap)
    };
    let calls_days = pick(settings.calls_days, DEFAULT_RETENTION.calls_days);
    Retention {
        calls_days,
        transcripts_days: pick(
            settings.transcripts_days,
            DEFAULT_RETENTION.transcripts_days,
        )
        .min(calls_days),
        recordings_days: pick(settings.recordings_days, DEFAULT_RETENTION.recordings_days)
            .min(calls_days),
        audit_days: pick(settings.audit_days, DEFAULT_RETENTION.audit_days),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_capped_by_the_plan_and_transcripts_follow_calls() {
        let none = RetentionSettings::default();
        assert_eq!(
            effective_retention(Plan::Enterprise, &none),
            DEFAULT_RETENTION
        );
        assert_eq!(
            effective_retention(Plan::Free, &none),
            Retention {
                calls_days: 30,
                transcripts_days: 30,
                recordings_days: 30,
                audit_days: 30
            }
        );
        let own = RetentionSettings {
            calls_days: Some(10),
            transcripts_days: Some(400),
            recordings_days: Some(20),
            audit_days: Some(2000),
        };
        assert_eq!(
            effective_retention(Plan::Professional, &own),
            Retention {
                calls_days: 10,
                transcripts_days: 10,
                recordings_days: 10,
                audit_days: 365
            }
        );
    }

    #[test]
    fn settings_out_of_bounds_are_named() {
        let zero = RetentionSettings {
            audit_days: Some(0),
            ..Default::default()
        };
        assert_eq!(zero.validate().unwrap_err().field, "auditDays");
        let huge: Result<RetentionSettings, _> = serde_json::from_str(r#"{"callsDays": 3651}"#);
        assert_eq!(huge.unwrap().validate().unwrap_err().field, "callsDays");
        assert!(serde_json::from_str::<RetentionSettings>(r#"{"calls": 3}"#).is_err());
    }
}
