//! `Tenant`: one customer's isolated voice stack (cluster-scoped, it owns a namespace).

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::{LimitPatch, Plan, PlanLimits, PlanOverrides, effective_limits};
use crate::recording::RecordingSpec;
use crate::turn_taking::TurnTakingSpec;

/// Condition: every child object is applied and the runtime is available (or suspended).
pub const CONDITION_READY: &str = "Ready";
/// Condition: the tenant's namespace and its guard rails (quota, policies) are applied.
pub const CONDITION_NAMESPACE_READY: &str = "NamespaceReady";
/// Condition: the runtime Deployment has its desired replicas available.
pub const CONDITION_RUNTIME_READY: &str = "RuntimeReady";
/// Condition: the tenant is suspended (runtime scaled to zero, calls refused).
pub const CONDITION_SUSPENDED: &str = "Suspended";

/// Desired state of a tenant.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "voice.switchboard.dev",
    version = "v1alpha1",
    kind = "Tenant",
    plural = "tenants",
    shortname = "tn",
    category = "switchboard",
    status = "TenantStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A customer of the platform: an isolated namespace with quota, network policy and its own voice runtime.",
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= 50").message("tenant names must be DNS labels of at most 50 characters, so that the tenant namespace name fits in 63"),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan", description = "Commercial plan"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace", description = "Namespace holding the tenant's stack"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "Whether the stack is ready"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspended", description = "Whether the tenant is suspended"),
    printcolumn(name = "Numbers", type_ = "integer", json_path = ".status.phoneNumbers", description = "Ready phone numbers"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Human-readable name of the customer, shown in the gateway and on dashboards.
    #[schemars(length(min = 1, max = 128))]
    pub display_name: String,

    /// Commercial plan: sets quota, number limit and monthly usage limits unless overridden in `limits`.
    #[serde(default)]
    pub plan: Plan,

    /// When true the runtime is scaled to zero and new calls are refused; numbers and data are kept.
    #[serde(default)]
    pub suspended: bool,

    /// The tenant's voice-runtime pods.
    #[serde(default)]
    pub runtime: RuntimeSpec,

    /// The default agent (named `default`): it answers every number and campaign that names
    /// no other agent.
    #[serde(default)]
    pub agent: AgentSpec,

    /// Named agents besides the default one, by name (DNS labels other than `default`). A
    /// PhoneNumber's `spec.agent` and a Campaign's `spec.agent.name` select one; the plan
    /// limits how many a tenant has (`agents`, the default agent included). See
    /// `switchboard_crds::agents`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 1000))]
    pub agents: std::collections::BTreeMap<String, AgentSpec>,

    /// Name of a Secret in the tenant's namespace holding the tenant's own provider API keys
    /// (keys such as `OPENAI_API_KEY`, `DEEPGRAM_API_KEY`, `ELEVENLABS_API_KEY`). The gateway
    /// manages `provider-keys` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub provider_secret_ref: Option<String>,

    /// Which carrier buys the tenant's numbers and places its calls.
    #[serde(default)]
    pub carrier: CarrierSpec,

    /// Limits that override the plan's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitOverrides>,

    /// People who run this tenant in the gateway, by verified e-mail address (like Capsule's
    /// `owners`). A listed address that has a verified account becomes a member with `role`
    /// (default `owner`) as soon as the gateway sees the Tenant; otherwise it is invited by
    /// e-mail and becomes a member when that address is verified. Removing an address from
    /// the list removes the membership it granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub owners: Vec<TenantOwner>,
}

/// One person named in a Tenant's `spec.owners`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TenantOwner {
    /// E-mail address (compared case-insensitively).
    #[schemars(length(min = 3, max = 254), regex(pattern = r"^[^@\s]+@[^@\s]+$"))]
    pub email: String,
    /// Role in the gateway; `owner` unless set.
    #[serde(default)]
    pub role: OwnerRole,
}

/// The gateway role a Tenant's `spec.owners` entry grants.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OwnerRole {
    /// Everything, including granting and revoking ownership.
    #[default]
    Owner,
    /// Manages configuration, members, API keys and credentials.
    Admin,
    /// Uses the tenant's resources.
    Member,
    /// Reads only.
    Viewer,
}

/// How the fields of a Tenant's spec are shared between the manifest (kubectl, GitOps) and
/// the gateway: the gateway server-side-applies, under its field manager and never with
/// force, only [`GATEWAY_FIELDS`], and among them only those no other manager holds. Every
/// other spec field (`suspended`, `runtime`, `limits`, `owners`) belongs to the manifest
/// alone; the gateway reads them (and honours `suspended` and `limits`).
pub const GATEWAY_FIELDS: [&str; 6] = [
    "displayName",
    "plan",
    "agent",
    "agents",
    "providerSecretRef",
    "carrier",
];

/// Spec fields the gateway writes only on a platform operator's decision: `suspended`, set by a
/// platform admin's suspend/resume and by a tenant deletion's grace period (issue 19). Like
/// [`GATEWAY_FIELDS`] it is applied without force: when a manifest holds `spec.suspended`, the
/// gateway refuses to suspend or resume (409 naming the field manager) and the manifest decides.
/// Once the gateway holds it, every later write of the gateway carries it.
pub const ADMIN_FIELDS: [&str; 1] = ["suspended"];

/// Keys of the Secret a Tenant's `spec.carrier.credentialsSecretRef` names (the tenant's own
/// carrier account): written by the gateway from a tenant's stored credential, read by the
/// operator.
pub mod carrier_secret_keys {
    /// Twilio account SID.
    pub const TWILIO_ACCOUNT_SID: &str = "accountSid";
    /// Twilio auth token.
    pub const TWILIO_AUTH_TOKEN: &str = "authToken";
    /// Telnyx API key.
    pub const TELNYX_API_KEY: &str = "apiKey";
    /// Telnyx Call Control connection id.
    pub const TELNYX_CONNECTION_ID: &str = "connectionId";
    /// Telnyx webhook public key (base64 Ed25519).
    pub const TELNYX_PUBLIC_KEY: &str = "publicKey";
}

/// Annotation the gateway puts on a Tenant it created, naming its own tenant id. The gateway
/// applies to a Tenant only when this names the gateway tenant being written, or when it
/// adopted the Tenant from a manifest (matched by uid).
pub const GATEWAY_TENANT_ID_ANNOTATION: &str = "voice.switchboard.dev/tenant-id";

impl TenantSpec {
    /// The tenant's effective limits: the plan's, then the platform's override of that plan
    /// (`SWITCHBOARD_PLAN_LIMITS`), then `spec.limits` (see [`crate::plan::effective_limits`]).
    pub fn effective_limits(&self, platform: &PlanOverrides) -> PlanLimits {
        let tenant = self.limits.as_ref().map(LimitPatch::from);
        effective_limits(self.plan, platform, tenant.as_ref())
    }
}

/// Sizing and image of the tenant's voice runtime.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeSpec {
    /// Number of runtime pods. A PodDisruptionBudget is created when more than one.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,

    /// Calls one runtime pod takes at once; further calls are refused cleanly.
    #[serde(default = "default_max_concurrent_calls")]
    #[schemars(range(min = 1, max = 2000))]
    pub max_concurrent_calls: i32,

    /// CPU and memory requests/limits of a runtime pod. Defaults follow the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Container image overriding the operator's default runtime image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Seconds a stopping pod has to let live calls finish before it is killed.
    #[serde(default = "default_termination_grace_period")]
    #[schemars(range(min = 30, max = 7200))]
    pub termination_grace_period_seconds: i64,
}

fn default_replicas() -> i32 {
    1
}
fn default_max_concurrent_calls() -> i32 {
    50
}
fn default_termination_grace_period() -> i64 {
    600
}

impl Default for RuntimeSpec {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            max_concurrent_calls: default_max_concurrent_calls(),
            resources: None,
            image: None,
            termination_grace_period_seconds: default_termination_grace_period(),
        }
    }
}

/// How the default agent behaves on a call.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// Instructions given to the language model at the start of every call.
    #[serde(default = "default_system_prompt")]
    #[schemars(length(max = 20000))]
    pub system_prompt: String,

    /// First sentence spoken when a call is answered. Empty: wait for the caller.
    #[serde(default = "default_greeting")]
    #[schemars(length(max = 1000))]
    pub greeting: String,

    /// BCP-47 language tag of the conversation, e.g. `en-US`.
    #[serde(default = "default_language")]
    #[schemars(regex(pattern = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"))]
    pub language: String,

    /// The language model that writes the agent's replies.
    #[serde(default)]
    pub llm: LlmSpec,

    /// The speech-to-text provider that transcribes the caller.
    #[serde(default)]
    pub stt: SttSpec,

    /// The text-to-speech provider that gives the agent its voice.
    #[serde(default)]
    pub tts: TtsSpec,

    /// Longest call in seconds before the agent says goodbye and hangs up.
    #[serde(default = "default_max_call_seconds")]
    #[schemars(range(min = 10, max = 14400))]
    pub max_call_seconds: i32,

    /// Milliseconds of caller silence that end the caller's turn.
    #[serde(default = "default_end_of_turn_ms")]
    #[schemars(range(min = 100, max = 5000))]
    pub end_of_turn_silence_ms: i32,

    /// E.164 number the agent may transfer calls to (enables the transfer tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\+[1-9][0-9]{1,14}$"))]
    pub transfer_number: Option<String>,

    /// Voice-activity detection, barge-in and end-of-turn tuning (runtime defaults if unset).
    #[serde(default, skip_serializing_if = "TurnTakingSpec::is_default")]
    pub turn_taking: TurnTakingSpec,

    /// Call recording (off when absent): both legs as WAV in the tenant's own S3-compatible
    /// storage (standalone: the data folder), after a consent announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingSpec>,
}

fn default_system_prompt() -> String {
    "You are a friendly, concise phone assistant. Keep answers short: one or two sentences.".into()
}
fn default_greeting() -> String {
    "Hello! How can I help you today?".into()
}
fn default_language() -> String {
    "en-US".into()
}
fn default_max_call_seconds() -> i32 {
    1800
}
fn default_end_of_turn_ms() -> i32 {
    700
}

impl Default for AgentSpec {
    fn default() -> Self {
        Self {
            system_prompt: default_system_prompt(),
            greeting: default_greeting(),
            language: default_language(),
            llm: LlmSpec::default(),
            stt: SttSpec::default(),
            tts: TtsSpec::default(),
            max_call_seconds: default_max_call_seconds(),
            end_of_turn_silence_ms: default_end_of_turn_ms(),
            transfer_number: None,
            turn_taking: TurnTakingSpec::default(),
            recording: None,
        }
    }
}

/// Language-model providers. All but `builtin` speak the OpenAI chat-completions API.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LlmProvider {
    /// Offline test agent that repeats what the caller said; needs no key.
    #[default]
    Builtin,
    /// Groq's OpenAI-compatible API.
    Groq,
    /// OpenAI.
    Openai,
    /// Any OpenAI-compatible server (vLLM, Ollama, …) at `baseUrl`.
    OpenaiCompatible,
}

/// Speech-to-text providers.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SttProvider {
    /// Offline: detects utterances by voice activity only; needs no key.
    #[default]
    Builtin,
    /// Deepgram streaming over WebSocket.
    Deepgram,
    /// OpenAI `/v1/audio/transcriptions`.
    Openai,
    /// Any server with the OpenAI transcriptions API at `baseUrl`.
    OpenaiCompatible,
}

/// Text-to-speech providers.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TtsProvider {
    /// Offline tone synthesiser for tests and demos; needs no key.
    #[default]
    Builtin,
    /// OpenAI `/v1/audio/speech`.
    Openai,
    /// Any server with the OpenAI speech API at `baseUrl` (e.g. Kokoro).
    OpenaiCompatible,
    /// Deepgram Aura.
    Deepgram,
    /// ElevenLabs streaming.
    Elevenlabs,
}

/// The language model of an agent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'openai-compatible' || has(self.baseUrl)").message("baseUrl is required when provider is openai-compatible"))]
pub struct LlmSpec {
    /// Which provider serves the model.
    #[serde(default)]
    pub provider: LlmProvider,
    /// Model name at the provider, e.g. `llama-3.3-70b-versatile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub model: Option<String>,
    /// Base URL of an OpenAI-compatible server, e.g. `http://vllm.ai:8000/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: Option<String>,
    /// Label of the tenant's stored credential of this provider's vendor to use (see
    /// `switchboard_crds::credentials`); unset: the vendor's default credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub credential: Option<String>,
    /// Sampling temperature, as a decimal string between 0 and 2 (e.g. `"0.7"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0(\.[0-9]+)?|1(\.[0-9]+)?|2(\.0+)?)$"))]
    pub temperature: Option<String>,
}

/// The speech-to-text of an agent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'openai-compatible' || has(self.baseUrl)").message("baseUrl is required when provider is openai-compatible"))]
pub struct SttSpec {
    /// Which provider transcribes.
    #[serde(default)]
    pub provider: SttProvider,
    /// Model name at the provider, e.g. `nova-3` or `whisper-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub model: Option<String>,
    /// Label of the tenant's stored credential of this provider's vendor to use (see
    /// `switchboard_crds::credentials`); unset: the vendor's default credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub credential: Option<String>,
    /// Base URL of an OpenAI-compatible transcription server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: Option<String>,
}

/// The voice of an agent.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'openai-compatible' || has(self.baseUrl)").message("baseUrl is required when provider is openai-compatible"))]
pub struct TtsSpec {
    /// Which provider speaks.
    #[serde(default)]
    pub provider: TtsProvider,
    /// Model name at the provider, e.g. `gpt-4o-mini-tts`, `aura-2-thalia-en`, `eleven_flash_v2_5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub model: Option<String>,
    /// Voice name or id at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub voice: Option<String>,
    /// Label of the tenant's stored credential of this provider's vendor to use (see
    /// `switchboard_crds::credentials`); unset: the vendor's default credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub credential: Option<String>,
    /// Base URL of an OpenAI-compatible speech server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: Option<String>,
}

/// Telephony carriers Switchboard can buy numbers from and place calls through.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    /// The built-in local carrier: fictional +1 555 01xx numbers and simulated calls.
    #[default]
    Sandbox,
    /// Twilio.
    Twilio,
    /// Telnyx.
    Telnyx,
}

impl CarrierKind {
    /// The wire name (`sandbox`, `twilio`, `telnyx`).
    pub fn as_str(self) -> &'static str {
        match self {
            CarrierKind::Sandbox => "sandbox",
            CarrierKind::Twilio => "twilio",
            CarrierKind::Telnyx => "telnyx",
        }
    }
}

/// The tenant's carrier and whose account is used.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CarrierSpec {
    /// Which carrier.
    #[serde(default)]
    pub kind: CarrierKind,
    /// Name of a Secret in the tenant's namespace with the tenant's own carrier account
    /// (Twilio: `accountSid`, `authToken`; Telnyx: `apiKey`, `connectionId`, `publicKey`).
    /// Unset: the platform's account is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub credentials_secret_ref: Option<String>,
}

/// Per-tenant limits that replace the plan's defaults.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LimitOverrides {
    /// Calls per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_calls: Option<u64>,
    /// Call minutes per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_minutes: Option<u64>,
    /// API requests per calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_api_requests: Option<u64>,
    /// Phone numbers owned at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 10000))]
    pub phone_numbers: Option<u32>,
    /// Agents, the default agent included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub agents: Option<u32>,
    /// Whether outbound campaigns are allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaigns: Option<bool>,
}

impl From<&LimitOverrides> for LimitPatch {
    /// A Tenant's `spec.limits`: each field set replaces the plan's (the CRD has no way to say
    /// "unlimited"; a larger plan does that).
    fn from(overrides: &LimitOverrides) -> Self {
        Self {
            monthly_calls: overrides.monthly_calls.map(Some),
            monthly_minutes: overrides.monthly_minutes.map(Some),
            monthly_api_requests: overrides.monthly_api_requests.map(Some),
            phone_numbers: overrides.phone_numbers.map(Some),
            agents: overrides.agents.map(Some),
            campaigns: overrides.campaigns,
        }
    }
}

/// Observed state of a tenant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// Namespace holding the tenant's stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// In-cluster URL of the tenant's runtime Service (reached only through the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_endpoint: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: `Ready`, `NamespaceReady`, `RuntimeReady`, `Suspended`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Phone numbers of this tenant that are Ready.
    #[serde(default)]
    pub phone_numbers: i32,
    /// Campaigns of this tenant.
    #[serde(default)]
    pub campaigns: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_limits_override_the_platforms_which_override_the_plan() {
        let spec: TenantSpec = serde_json::from_value(serde_json::json!({
            "displayName": "Acme", "plan": "free",
            "limits": {"monthlyCalls": 5, "campaigns": true}
        }))
        .unwrap();
        let platform =
            PlanOverrides::parse(Some(r#"{"free":{"monthlyCalls":70,"monthlyMinutes":3}}"#))
                .unwrap();
        let limits = spec.effective_limits(&platform);
        assert_eq!(
            limits.monthly_calls,
            Some(5),
            "the tenant's own override wins"
        );
        assert_eq!(limits.monthly_minutes, Some(3), "then the platform's");
        assert_eq!(limits.monthly_api_requests, Some(1_000), "then the plan's");
        assert!(limits.campaigns);
        assert_eq!(
            TenantSpec {
                limits: None,
                ..spec
            }
            .effective_limits(&PlanOverrides::default()),
            Plan::Free.limits()
        );
    }
}
