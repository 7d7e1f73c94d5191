//! Plans and their default limits, shared by the operator (quota, number limits) and the
//! gateway (metering, billing).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Trial use: small quota, one number, 50 calls a month.
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
                campaigns: false,
            },
            Plan::Starter => PlanLimits {
                monthly_calls: Some(500),
                monthly_minutes: Some(1_000),
                monthly_api_requests: Some(10_000),
                phone_numbers: Some(2),
                campaigns: true,
            },
            Plan::Professional => PlanLimits {
                monthly_calls: Some(5_000),
                monthly_minutes: Some(10_000),
                monthly_api_requests: Some(100_000),
                phone_numbers: Some(5),
                campaigns: true,
            },
            Plan::Enterprise | Plan::Onprem => PlanLimits {
                monthly_calls: None,
                monthly_minutes: None,
                monthly_api_requests: None,
                phone_numbers: None,
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
    /// Whether outbound campaigns are allowed.
    pub campaigns: bool,
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
    }

    #[test]
    fn plan_names_round_trip() {
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>(), Ok(plan));
        }
        assert!("gold".parse::<Plan>().is_err());
    }
}
