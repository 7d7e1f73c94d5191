//! Standard Kubernetes conditions (`metav1.Condition`) and the one way we update them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The three values a condition's `status` may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl ConditionStatus {
    /// The wire value (`"True"`, `"False"`, `"Unknown"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// Sets (adds or replaces) the condition of type `type_` in `conditions`.
///
/// `lastTransitionTime` changes only when the status changes, as API conventions require, so
/// repeated reconciles of an unchanged object write identical status and cause no churn.
/// Returns true when the condition's status changed (a transition worth an Event).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Timestamp,
) -> bool {
    let message = message.into();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        let transitioned = existing.status != status.as_str();
        if transitioned {
            existing.last_transition_time = Time(now);
        }
        existing.status = status.as_str().to_owned();
        existing.reason = reason.to_owned();
        existing.message = message;
        existing.observed_generation = observed_generation;
        return transitioned;
    }
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation,
        last_transition_time: Time(now),
    });
    true
}

/// The condition of type `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the condition of type `type_` is present with status `True`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::False,
            "Pending",
            "wait",
            Some(1),
            at(10)
        ));
        assert!(!set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::False,
            "Pending",
            "still",
            Some(2),
            at(20)
        ));
        assert_eq!(conditions[0].last_transition_time.0, at(10));
        assert_eq!(conditions[0].message, "still");
        assert_eq!(conditions[0].observed_generation, Some(2));

        assert!(set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::True,
            "Ready",
            "ok",
            Some(2),
            at(30)
        ));
        assert_eq!(conditions[0].last_transition_time.0, at(30));
        assert_eq!(conditions.len(), 1);
        assert!(is_condition_true(&conditions, "Ready"));
        assert!(!is_condition_true(&conditions, "Suspended"));
    }
}
