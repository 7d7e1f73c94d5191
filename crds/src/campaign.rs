//! `Campaign`: outbound calling from one of the tenant's numbers. Per-contact state lives in the
//! gateway's database, never in etcd; the operator mirrors counts into the status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition: the campaign validated and is registered with the gateway.
pub const CONDITION_READY: &str = "Ready";
/// Condition: the campaign passed validation (number ready, plan allows campaigns, sane window).
pub const CONDITION_VALID: &str = "Valid";
/// Condition: the gateway's dialer is placing calls now; when `False`, the reason says why not
/// (`OutsideWindow`, `Suspended`, `TenantSuspended`, `PlanLimitReached`, `Completed`, …).
pub const CONDITION_DIALING: &str = "Dialing";

/// Desired state of a campaign.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "voice.switchboard.dev",
    version = "v1alpha1",
    kind = "Campaign",
    plural = "campaigns",
    shortname = "cmp",
    category = "switchboard",
    namespaced,
    status = "CampaignStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "An outbound calling campaign: contacts called from one of the tenant's numbers within a calling window, paced and retried.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Lifecycle phase"
    ),
    printcolumn(
        name = "Total",
        type_ = "integer",
        json_path = ".status.total",
        description = "Contacts in the campaign"
    ),
    printcolumn(
        name = "Done",
        type_ = "integer",
        json_path = ".status.completed",
        description = "Contacts reached"
    ),
    printcolumn(
        name = "InProgress",
        type_ = "integer",
        json_path = ".status.inProgress",
        description = "Calls under way"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.progress",
        description = "Share of contacts finished"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSpec {
    /// Name of the PhoneNumber (in this namespace) the calls are placed from.
    #[schemars(length(min = 1, max = 253))]
    pub from_number: String,

    /// Where the contacts come from.
    pub contacts: ContactsSource,

    /// When calls may be placed.
    #[serde(default)]
    pub schedule: Schedule,

    /// How fast calls are placed.
    #[serde(default)]
    pub pacing: Pacing,

    /// What happens when a contact does not answer.
    #[serde(default)]
    pub retry: RetryPolicy,

    /// Agent behaviour for this campaign, overriding the tenant's default agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<CampaignAgent>,

    /// When true no new calls are placed; calls under way finish.
    #[serde(default)]
    pub suspend: bool,
}

/// The campaign's contact list: CSV with a header row and at least a `phone` column (E.164).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.configMapRef) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) + (self.uploaded ? 1 : 0) == 1").message("set exactly one of configMapRef, secretRef or uploaded"))]
pub struct ContactsSource {
    /// A key of a ConfigMap in this namespace holding the CSV (for GitOps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<KeyReference>,
    /// A key of a Secret in this namespace holding the CSV (contacts are personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeyReference>,
    /// Contacts are uploaded through the gateway's API instead.
    #[serde(default)]
    pub uploaded: bool,
}

/// A key in a ConfigMap or Secret of the same namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyReference {
    /// Name of the ConfigMap or Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within it.
    #[serde(default = "default_contacts_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_contacts_key() -> String {
    "contacts.csv".into()
}

/// Calling window in the campaign's time zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.windowStart != self.windowEnd").message("windowStart and windowEnd must differ"))]
pub struct Schedule {
    /// IANA time zone of the window, e.g. `America/New_York`.
    #[serde(default = "default_time_zone")]
    #[schemars(regex(pattern = r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$"), length(max = 64))]
    pub time_zone: String,
    /// Local time calls may start, `HH:MM` (24 h).
    #[serde(default = "default_window_start")]
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub window_start: String,
    /// Local time after which no call starts, `HH:MM` (24 h). Earlier than the start: the window spans midnight.
    #[serde(default = "default_window_end")]
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub window_end: String,
    /// Weekdays calls may be placed on. Empty: every day.
    #[serde(default = "default_days")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub days: Vec<Weekday>,
}

fn default_time_zone() -> String {
    "UTC".into()
}
fn default_window_start() -> String {
    "09:00".into()
}
fn default_window_end() -> String {
    "17:00".into()
}
fn default_days() -> Vec<Weekday> {
    vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            time_zone: default_time_zone(),
            window_start: default_window_start(),
            window_end: default_window_end(),
            days: default_days(),
        }
    }
}

/// A day of the week.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// Limits on how fast calls are placed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pacing {
    /// Calls under way at once, at most.
    #[serde(default = "default_max_concurrent")]
    #[schemars(range(min = 1, max = 500))]
    pub max_concurrent: i32,
    /// Calls started per minute, at most.
    #[serde(default = "default_calls_per_minute")]
    #[schemars(range(min = 1, max = 1000))]
    pub calls_per_minute: i32,
}

fn default_max_concurrent() -> i32 {
    2
}
fn default_calls_per_minute() -> i32 {
    10
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            max_concurrent: default_max_concurrent(),
            calls_per_minute: default_calls_per_minute(),
        }
    }
}

/// Which failed attempts are retried, how often and after how long.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts per contact, the first included.
    #[serde(default = "default_max_attempts")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: i32,
    /// Seconds before the first retry; doubled for each later one.
    #[serde(default = "default_backoff_seconds")]
    #[schemars(range(min = 30, max = 86400))]
    pub backoff_seconds: i32,
    /// Outcomes that are retried.
    #[serde(default = "default_retry_on")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub retry_on: Vec<RetryableOutcome>,
}

fn default_max_attempts() -> i32 {
    3
}
fn default_backoff_seconds() -> i32 {
    900
}
fn default_retry_on() -> Vec<RetryableOutcome> {
    vec![
        RetryableOutcome::NoAnswer,
        RetryableOutcome::Busy,
        RetryableOutcome::Failed,
    ]
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            backoff_seconds: default_backoff_seconds(),
            retry_on: default_retry_on(),
        }
    }
}

/// Attempt outcomes that may be retried.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum RetryableOutcome {
    /// Rang out without an answer.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// The carrier could not place the call.
    Failed,
}

/// Agent behaviour for a campaign.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CampaignAgent {
    /// The tenant's named agent that makes these calls (`Tenant.spec.agents`); unset: the
    /// agent of the from-number, else the tenant's default agent. The fields below override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: Option<String>,
    /// Instructions replacing the tenant's system prompt for these calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20000))]
    pub system_prompt: Option<String>,
    /// First sentence once the contact answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub greeting: Option<String>,
    /// Survey questions asked in order; answers are stored raw and as structured fields.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub questions: Vec<SurveyQuestion>,
}

/// One survey question.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SurveyQuestion {
    /// Field name the structured answer is stored under, e.g. `satisfaction`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub field: String,
    /// What the agent asks.
    #[schemars(length(min = 1, max = 1000))]
    pub text: String,
    /// Expected kind of answer, guiding the structured mapping.
    #[serde(default)]
    pub answer_type: AnswerType,
    /// Allowed answers when `answerType` is `choice`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// How a survey answer is mapped into a structured field.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnswerType {
    /// Free text.
    #[default]
    Text,
    /// Yes or no.
    Boolean,
    /// A number.
    Number,
    /// One of `choices`.
    Choice,
}

/// Lifecycle phase of a campaign.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub enum CampaignPhase {
    /// Validating or waiting for its window.
    #[default]
    Pending,
    /// Placing calls.
    Running,
    /// Suspended by the user, or stopped by a plan limit.
    Paused,
    /// Every contact reached a final outcome.
    Completed,
    /// Cannot run (invalid spec, number gone, …).
    Failed,
}

impl CampaignPhase {
    /// Every phase, in lifecycle order.
    pub const ALL: [CampaignPhase; 5] = [
        CampaignPhase::Pending,
        CampaignPhase::Running,
        CampaignPhase::Paused,
        CampaignPhase::Completed,
        CampaignPhase::Failed,
    ];

    /// The wire (and stored) name: `Pending`, `Running`, `Paused`, `Completed`, `Failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignPhase::Pending => "Pending",
            CampaignPhase::Running => "Running",
            CampaignPhase::Paused => "Paused",
            CampaignPhase::Completed => "Completed",
            CampaignPhase::Failed => "Failed",
        }
    }
}

impl std::str::FromStr for CampaignPhase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CampaignPhase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown campaign phase {s:?}"))
    }
}

/// Observed state of a campaign.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CampaignStatus {
    /// Lifecycle phase.
    #[serde(default)]
    pub phase: CampaignPhase,
    /// Contacts in the campaign.
    #[serde(default)]
    pub total: i64,
    /// Contacts not yet called (or waiting for a retry).
    #[serde(default)]
    pub pending: i64,
    /// Calls under way.
    #[serde(default)]
    pub in_progress: i64,
    /// Contacts reached.
    #[serde(default)]
    pub completed: i64,
    /// Contacts that failed after every attempt.
    #[serde(default)]
    pub failed: i64,
    /// Contacts that never answered after every attempt.
    #[serde(default)]
    pub no_answer: i64,
    /// Share of contacts with a final outcome, e.g. `42%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Digest (`sha256:<hex>`) of the contacts CSV last registered with the gateway; an edit of
    /// the ConfigMap or Secret changes it and re-registers the contacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_contacts: Option<String>,
    /// Standard conditions: `Ready`, `Valid`, `Dialing`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A campaign spec field that breaks a rule the CRD's schema and CEL rules enforce at
/// admission; the gateway's API (standalone mode has no admission) and the operator check
/// the same rules here, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The field at fault, as a JSON path (`pacing.maxConcurrent`, `schedule.timeZone`, …).
    pub field: &'static str,
    /// Stable machine-readable code (`out_of_range`, `invalid_schedule`, …).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

fn in_range(field: &'static str, value: i32, low: i32, high: i32) -> Result<(), SpecError> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            "out_of_range",
            format!("{field} must be between {low} and {high}"),
        ))
    }
}

impl CampaignSpec {
    /// Checks every rule of the CRD's schema and CEL validations, in field order; the first
    /// broken rule is the error.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.pacing.validate()?;
        self.retry.validate()?;
        self.schedule.validate()?;
        self.contacts.validate()?;
        if let Some(agent) = &self.agent {
            agent.validate()?;
        }
        Ok(())
    }
}

impl Pacing {
    /// `maxConcurrent` 1–500, `callsPerMinute` 1–1000.
    pub fn validate(&self) -> Result<(), SpecError> {
        in_range("pacing.maxConcurrent", self.max_concurrent, 1, 500)?;
        in_range("pacing.callsPerMinute", self.calls_per_minute, 1, 1000)
    }
}

impl RetryPolicy {
    /// `maxAttempts` 1–10, `backoffSeconds` 30–86400.
    pub fn validate(&self) -> Result<(), SpecError> {
        in_range("retry.maxAttempts", self.max_attempts, 1, 10)?;
        in_range("retry.backoffSeconds", self.backoff_seconds, 30, 86_400)
    }
}

impl ContactsSource {
    /// Exactly one of `configMapRef`, `secretRef` and `uploaded`.
    pub fn validate(&self) -> Result<(), SpecError> {
        let sources = [
            self.config_map_ref.is_some(),
            self.secret_ref.is_some(),
            self.uploaded,
        ];
        if sources.iter().filter(|s| **s).count() == 1 {
            Ok(())
        } else {
            Err(SpecError::new(
                "contacts",
                "invalid_contacts",
                "set exactly one of contacts.configMapRef, contacts.secretRef, contacts.uploaded",
            ))
        }
    }
}

impl CampaignAgent {
    /// At most 50 questions, a greeting of at most 1000 and a prompt of at most 20000
    /// characters.
    pub fn validate(&self) -> Result<(), SpecError> {
        if let Some(name) = &self.name
            && let Err(message) = crate::agents::check_agent_name(name)
        {
            return Err(SpecError::new("agent.name", "invalid_agent_name", message));
        }
        if self.questions.len() > 50 {
            return Err(SpecError::new(
                "agent.questions",
                "too_many",
                "at most 50 questions",
            ));
        }
        if self
            .greeting
            .as_ref()
            .is_some_and(|g| g.chars().count() > 1000)
        {
            return Err(SpecError::new(
                "agent.greeting",
                "too_long",
                "greeting must be at most 1000 characters",
            ));
        }
        if self
            .system_prompt
            .as_ref()
            .is_some_and(|p| p.chars().count() > 20_000)
        {
            return Err(SpecError::new(
                "agent.systemPrompt",
                "too_long",
                "systemPrompt must be at most 20000 characters",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod validation_tests {
    use super::*;

    fn spec(patch: serde_json::Value) -> CampaignSpec {
        let mut base = serde_json::json!({
            "fromNumber": "main",
            "contacts": {"uploaded": true},
            "schedule": {"timeZone": "Europe/Berlin", "windowStart": "22:00", "windowEnd": "06:00"}
        });
        for (k, v) in patch.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn field(patch: serde_json::Value) -> &'static str {
        spec(patch).validate().unwrap_err().field
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(spec(serde_json::json!({})).validate(), Ok(()));
        assert_eq!(
            field(serde_json::json!({"pacing": {"maxConcurrent": 501, "callsPerMinute": 1}})),
            "pacing.maxConcurrent"
        );
        assert_eq!(
            field(serde_json::json!({"retry": {"maxAttempts": 3, "backoffSeconds": 10}})),
            "retry.backoffSeconds"
        );
        let schedule = |zone: &str, start: &str, end: &str| serde_json::json!({"schedule": {"timeZone": zone, "windowStart": start, "windowEnd": end}});
        assert_eq!(
            field(schedule("UTC", "09:00", "09:00")),
            "schedule.windowEnd"
        );
        assert_eq!(
            field(schedule("Mars/Base", "09:00", "17:00")),
            "schedule.timeZone"
        );
        assert_eq!(
            field(schedule("UTC", "9:00", "17:00")),
            "schedule.windowStart"
        );
        assert_eq!(
            field(schedule("UTC", "09:00", "24:00")),
            "schedule.windowEnd"
        );
        assert_eq!(
            field(
                serde_json::json!({"contacts": {"uploaded": true, "configMapRef": {"name": "c"}}})
            ),
            "contacts"
        );
        assert_eq!(
            field(serde_json::json!({"agent": {"greeting": "x".repeat(1001)}})),
            "agent.greeting"
        );
        let error = spec(serde_json::json!({"pacing": {"maxConcurrent": 0, "callsPerMinute": 1}}))
            .validate()
            .unwrap_err();
        assert_eq!(error.code, "out_of_range");
        assert_eq!(
            error.message,
            "pacing.maxConcurrent must be between 1 and 500"
        );
    }
}
