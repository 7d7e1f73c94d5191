//! Plans, their default limits, and a tenant's effective limits, shared by the operator
//! (quota, number limits, campaign validation) and the gateway (metering, billing).
//!
//! Effective limits are layered, each layer replacing the fields it sets:
//! 1. the plan's defaults ([`Plan::limits`]);
//! 2. the platform's overrides per plan ([`PlanOverrides`], `SWITCHBOARD_PLAN_LIMITS`, read by
//!    the operator and the gateway from the same setting);
//! 3. the tenant's own overrides (`Tenant.spec.limits`; the gateway's stored overrides).
//!
//! [`effective_limits`] is the one implementation both binaries call.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A tenant's commercial plan. Larger plans get more quota, numbers and monthly usage.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// Trial use: small quota, one number, one agent, 50 calls a month.
    #[default]
    Free,
    /// Small teams.
    Starter,
    /// Production use.
    Professional,
    /// Unlimited usage, largest quota.
    Enterprise,
    /// Self-hosted single-customer installs: unlimited usage.
    Onprem,
}

impl Plan {
    /// Every plan, smallest first.
    pub const ALL: [Plan; 5] = [
        Plan::Free,
        Plan::Starter,
        Plan::Professional,
        Plan::Enterprise,
        Plan::Onprem,
    ];

    /// The wire name (`free`, `starter`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
            Plan::Onprem => "onprem",
        }
    }

    /// The plan's default monthly and standing limits (`None` = unlimited).
    pub fn limits(self) -> PlanLimits {
        match self {
            Plan::Free => PlanLimits {
                monthly_calls: Some(50),
                monthly_minutes: Some(100),
                monthly_api_requests: Some(1_000),
                phone_numbers: Some(1),
                agents: Some(1),
                campaigns: false,
            },
            Plan::Starter => PlanLimits {
                monthly_calls: Some(500),
                monthly_minutes: Some(1_000),
                monthly_api_requests: Some(10_000),
                phone_numbers: Some(2),
                agents: Some(2),
                campaigns: true,
            },
            Plan::Professional => PlanLimits {
                monthly_calls: Some(5_000),
                monthly_minutes: Some(10_000),
                monthly_api_requests: Some(100_000),
                phone_numbers: Some(5),
                agents: Some(10),
                campaigns: true,
            },
            Plan::Enterprise => PlanLimits {
                agents: Some(100),
                ..Plan::Onprem.limits()
            },
            Plan::Onprem => PlanLimits {
                monthly_calls: None,
                monthly_minutes: None,
                monthly_api_requests: None,
                phone_numbers: None,
                agents: None,
                campaigns: true,
            },
        }
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Plan {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown plan {s:?}: expected one of free, starter, professional, enterprise, onprem"))
    }
}

/// Effective limits of a tenant. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PlanLimits {
    /// Calls per calendar month.
    pub monthly_calls: Option<u64>,
    /// Call minutes per calendar month.
    pub monthly_minutes: Option<u64>,
    /// API requests per calendar month.
    pub monthly_api_requests: Option<u64>,
    /// Phone numbers owned at once.
    pub phone_numbers: Option<u32>,
    /// Agents a tenant may have, its default agent included (the named agents of
    /// `Tenant.spec.agents` plus `spec.agent`).
    pub agents: Option<u32>,
    /// Whether outbound campaigns are allowed.
    pub campaigns: bool,
}

/// A partial set of limits: each field present replaces the one below it. A numeric field
/// set to `null` means unlimited; absent means "keep".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitPatch {
    /// Calls per calendar month.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub monthly_calls: Option<Option<u64>>,
    /// Call minutes per calendar month.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub monthly_minutes: Option<Option<u64>>,
    /// API requests per calendar month.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub monthly_api_requests: Option<Option<u64>>,
    /// Phone numbers owned at once.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone_numbers: Option<Option<u32>>,
    /// Agents, the default agent included.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub agents: Option<Option<u32>>,
    /// Whether outbound campaigns are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaigns: Option<bool>,
}

/// A field that is present (even as `null`) becomes `Some(value)`, so `null` can mean
/// "unlimited" while an absent field keeps the layer below.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl LimitPatch {
    /// `limits` with this patch's fields replaced.
    pub fn apply(&self, mut limits: PlanLimits) -> PlanLimits {
        if let Some(v) = self.monthly_calls {
            limits.monthly_calls = v;
        }
        if let Some(v) = self.monthly_minutes {
            limits.monthly_minutes = v;
        }
        if let Some(v) = self.monthly_api_requests {
            limits.monthly_api_requests = v;
        }
        if let Some(v) = self.phone_numbers {
            limits.phone_numbers = v;
        }
        if let Some(v) = self.agents {
            limits.agents = v;
        }
        if let Some(v) = self.campaigns {
            limits.campaigns = v;
        }
        limits
    }
}

/// The platform's overrides per plan: `SWITCHBOARD_PLAN_LIMITS`, a JSON object of plan name
/// to a [`LimitPatch`], e.g. `{"free": {"monthlyCalls": 100}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOverrides(BTreeMap<Plan, LimitPatch>);

/// `SWITCHBOARD_PLAN_LIMITS` is not a JSON object of plan names to limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SWITCHBOARD_PLAN_LIMITS must be a JSON object of plan name to limits: {0}")]
pub struct OverridesError(String);

impl PlanOverrides {
    /// Parses the setting; unset or blank means no overrides.
    pub fn parse(text: Option<&str>) -> Result<Self, OverridesError> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let raw: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| OverridesError(e.to_string()))?;
        let mut overrides = BTreeMap::new();
        for (plan, limits) in raw {
            let plan_kind = plan.parse::<Plan>().map_err(OverridesError)?;
            if !limits.is_object() {
                return Err(OverridesError(format!("bad limits for {plan}")));
            }
            let patch: LimitPatch = serde_json::from_value(limits)
                .map_err(|e| OverridesError(format!("bad limits for {plan}: {e}")))?;
            overrides.insert(plan_kind, patch);
        }
        Ok(Self(overrides))
    }

    /// The override of one plan, if any.
    pub fn get(&self, plan: Plan) -> Option<&LimitPatch> {
        self.0.get(&plan)
    }
}

/// A tenant's effective limits: `plan`'s defaults, then the platform's override of that plan,
/// then the tenant's own overrides.
pub fn effective_limits(
    plan: Plan,
    platform: &PlanOverrides,
    tenant: Option<&LimitPatch>,
) -> PlanLimits {
    let mut limits = plan.limits();
    if let Some(patch) = platform.get(plan) {
        limits = patch.apply(limits);
    }
    if let Some(patch) = tenant {
        limits = patch.apply(limits);
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_grow_monotonically() {
        let limits: Vec<_> = Plan::ALL.iter().map(|p| p.limits()).collect();
        for pair in limits.windows(2) {
            let bigger = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(a), Some(b)) => b >= a,
            };
            assert!(bigger(pair[0].monthly_calls, pair[1].monthly_calls));
            assert!(bigger(pair[0].monthly_minutes, pair[1].monthly_minutes));
        }
        assert_eq!(Plan::Free.limits().phone_numbers, Some(1));
        assert_eq!(Plan::Starter.limits().phone_numbers, Some(2));
        assert_eq!(Plan::Professional.limits().phone_numbers, Some(5));
        assert_eq!(Plan::Enterprise.limits().phone_numbers, None);
        let agents: Vec<_> = Plan::ALL.iter().map(|p| p.limits().agents).collect();
        assert_eq!(agents, [Some(1), Some(2), Some(10), Some(100), None]);
    }

    #[test]
    fn layers_apply_in_order_and_null_means_unlimited() {
        let platform = PlanOverrides::parse(Some(r#"{"free":{"monthlyCalls":70}}"#)).unwrap();
        let free = effective_limits(Plan::Free, &platform, None);
        assert_eq!(free.monthly_calls, Some(70));
        assert_eq!(free.monthly_api_requests, Some(1_000));
        let unlimited: LimitPatch = serde_json::from_str(r#"{"monthlyCalls":null}"#).unwrap();
        assert_eq!(
            effective_limits(Plan::Free, &platform, Some(&unlimited)).monthly_calls,
            None
        );
        let tenant: LimitPatch =
            serde_json::from_str(r#"{"monthlyCalls":5,"campaigns":true}"#).unwrap();
        let tenant = effective_limits(Plan::Free, &platform, Some(&tenant));
        assert_eq!((tenant.monthly_calls, tenant.campaigns), (Some(5), true));
        assert_eq!(
            effective_limits(Plan::Enterprise, &PlanOverrides::default(), None).monthly_calls,
            None
        );
        assert!(PlanOverrides::parse(Some(r#"{"gold":{}}"#)).is_err());
        assert!(PlanOverrides::parse(Some("[1]")).is_err());
        assert!(PlanOverrides::parse(Some(r#"{"free":{"monthlyCalls":"many"}}"#)).is_err());
        assert_eq!(
            PlanOverrides::parse(Some("  ")),
            Ok(PlanOverrides::default())
        );
    }

    #[test]
    fn plan_names_round_trip() {
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>(), Ok(plan));
        }
        assert!("gold".parse::<Plan>().is_err());
    }
}
