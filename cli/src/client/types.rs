//! The API's request and response bodies as the CLI reads and writes them (camelCase, as every
//! field of the API is). Response types name only the fields the CLI shows; `--json` prints
//! the gateway's own body, so nothing is lost. Where the gateway answers with a `crds` type
//! (agents, campaign specs and progress) that type is used as it is, not copied.
//!
//! Request types derive `Deserialize` too: the contract test traces their field names
//! ([`super::shape`]) the same way as the responses'.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The one list envelope: `{"items": [...], "nextCursor": "<opaque>" | null}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// The next page's cursor; `None` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

// ---- accounts -------------------------------------------------------------------------

/// `POST /auth/signup`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupRequest {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
    /// The person's name.
    pub name: String,
    /// Company name (its slug names the tenant).
    pub company: String,
}

/// `POST /auth/login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// `POST /auth/refresh`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The single-use refresh token.
    pub refresh_token: String,
}

/// A person.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// E-mail address.
    pub email: String,
    /// Whether the address was verified.
    pub email_verified: bool,
}

/// Access and refresh token.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// Bearer token.
    pub access_token: String,
    /// Single-use token for a new pair.
    pub refresh_token: String,
}

/// A tenant as signup shows it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Slug.
    pub slug: String,
    /// Plan name.
    pub plan: String,
}

/// Answer of signup.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupResponse {
    /// The new person.
    pub user: User,
    /// Their tenant.
    pub tenant: Tenant,
    /// Their session.
    pub tokens: TokenPair,
}

/// Answer of login.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The person.
    pub user: User,
    /// Their session.
    pub tokens: TokenPair,
}

/// Answer of refresh: a new pair.
pub type RefreshResponse = TokenPair;

/// One of the caller's tenants and their role in it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// Tenant slug.
    pub slug: String,
    /// Tenant name.
    pub name: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
}

/// `GET /auth/me`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The person (absent for an API key).
    #[serde(default)]
    pub user: Option<User>,
    /// Their tenants.
    #[serde(default)]
    pub tenants: Vec<Membership>,
    /// The API key's id, when one authenticated.
    #[serde(default)]
    pub api_key_id: Option<String>,
}

// ---- numbers --------------------------------------------------------------------------

/// `POST …/numbers`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyNumber {
    /// Area code to search in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area_code: Option<String>,
    /// Exact number (E.164).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// ISO country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Named agent answering the number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// A phone number.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Number {
    /// E.164 (absent while a Kubernetes purchase is pending).
    #[serde(default)]
    pub e164: Option<String>,
    /// Object name or carrier id.
    #[serde(default)]
    pub name: Option<String>,
    /// Carrier.
    pub carrier: String,
    /// `Ready` or `Pending`.
    pub status: String,
    /// Named agent, when not the default.
    #[serde(default)]
    pub agent: Option<String>,
}

// ---- provider credentials -------------------------------------------------------------

/// A provider credential, secret masked.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// Id.
    pub id: String,
    /// Vendor.
    pub provider: String,
    /// Label.
    pub label: String,
    /// Whether it is the vendor's default.
    pub is_default: bool,
    /// Last four characters.
    pub masked_secret: String,
    /// Non-secret settings.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `POST …/credentials`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCredential {
    /// Vendor (`openai`, `deepgram`, …).
    pub provider: String,
    /// Label.
    pub label: String,
    /// The secret.
    pub secret: String,
    /// Make it the vendor's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    /// Non-secret settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `PATCH …/credentials/{id}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialPatch {
    /// New label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// New secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Make (or stop making) it the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

/// Answer of a credential test.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// `ok`, `rejected` or `unreachable`.
    pub result: String,
    /// The vendor's HTTP status.
    #[serde(default)]
    pub vendor_status: Option<u16>,
    /// What happened.
    pub message: String,
}

// ---- API keys, members, invitations ---------------------------------------------------

/// `POST …/api-keys`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    /// Label.
    pub name: String,
    /// Scopes (`read`, `write`, `admin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// An API key's metadata.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Id.
    pub id: String,
    /// Label.
    pub name: String,
    /// First characters.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Last use.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// Revocation time.
    #[serde(default)]
    pub revoked_at: Option<String>,
}

/// Answer of creating an API key: the only time the key is shown.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// Metadata.
    pub api_key: ApiKey,
    /// The full key.
    pub key: String,
}

/// A member of a tenant.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// User id.
    pub user_id: String,
    /// E-mail address.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
}

/// `PATCH …/members/{userId}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleChange {
    /// The new role.
    pub role: String,
}

/// `POST …/invitations`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInvitation {
    /// Who to invite.
    pub email: String,
    /// Their role (default `member`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A pending invitation.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// Id.
    pub id: String,
    /// Invitee.
    pub email: String,
    /// Role on acceptance.
    pub role: String,
    /// Expiry.
    pub expires_at: String,
}

// ---- calls and usage ------------------------------------------------------------------

/// A call record.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    /// Id.
    pub id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Caller.
    #[serde(default)]
    pub from: Option<String>,
    /// Callee.
    #[serde(default)]
    pub to: Option<String>,
    /// Lifecycle status.
    pub status: String,
    /// How it ended.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Start (RFC 3339).
    #[serde(default)]
    pub started_at: Option<String>,
    /// Length.
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    /// Campaign that placed it.
    #[serde(default)]
    pub campaign: Option<String>,
}

/// One turn of a transcript.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    /// `caller` or `agent`.
    pub role: String,
    /// What was said.
    pub text: String,
    /// Offset from the call's start.
    pub offset_ms: i64,
}

/// This month's usage against the plan's limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReply {
    /// `YYYY-MM`.
    pub period: String,
    /// Plan.
    pub plan: String,
    /// Counters.
    pub usage: UsageCounters,
    /// Limits (`None`: unlimited).
    pub limits: UsageLimits,
}

/// Usage counters of a month.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageCounters {
    /// Calls.
    pub call_count: i64,
    /// Minutes.
    pub call_minutes: i64,
    /// API requests.
    pub api_requests: i64,
    /// Speech-to-text minutes.
    pub stt_minutes: f64,
    /// Text-to-speech characters.
    pub tts_characters: i64,
}

/// The plan's monthly limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageLimits {
    /// Calls a month.
    #[serde(default)]
    pub monthly_calls: Option<u64>,
    /// Minutes a month.
    #[serde(default)]
    pub monthly_minutes: Option<u64>,
    /// API requests a month.
    #[serde(default)]
    pub monthly_api_requests: Option<u64>,
}

// ---- campaigns ------------------------------------------------------------------------

/// A campaign in the list.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSummary {
    /// Name.
    pub name: String,
    /// Phase.
    pub phase: String,
    /// Caller id.
    pub from_number: String,
    /// Why the dialer holds.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A refused CSV row of a contacts upload (the gateway's own type).
pub use switchboard_crds::internal_api::RejectedRow;

/// Answer of a contacts upload.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadResult {
    /// Rows stored.
    pub accepted: usize,
    /// Rows refused, with the reason.
    pub rejected: Vec<RejectedRow>,
    /// Contacts the campaign has now.
    pub total: i64,
}

// ---- customer webhooks ----------------------------------------------------------------

/// `POST …/webhooks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEndpoint {
    /// Receiver URL.
    pub url: String,
    /// Event types (all when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
}

/// `PATCH …/webhooks/{id}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    /// New URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// New event types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Enabled or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `POST …/webhooks/{id}/rotate-secret`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateSecret {
    /// Hours the old secret keeps signing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period_hours: Option<u32>,
}

/// A customer webhook endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    /// Id.
    pub id: String,
    /// Receiver URL.
    pub url: String,
    /// Event types.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Until when the previous secret signs too.
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
    /// The signing secret (only when just created or rotated).
    #[serde(default)]
    pub secret: Option<String>,
}

/// A queued message.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedMessage {
    /// Message id.
    pub id: String,
}

/// A webhook delivery.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Message id.
    pub id: String,
    /// Event type.
    pub event_type: String,
    /// `pending`, `delivered`, `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Last failure.
    #[serde(default)]
    pub last_error: Option<String>,
}

// ---- billing --------------------------------------------------------------------------

/// `POST …/billing/checkout`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequest {
    /// Plan to subscribe to.
    pub plan: String,
    /// Where Stripe sends the customer after paying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    /// Where Stripe sends the customer when they cancel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
}

/// `POST …/billing/portal`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalRequest {
    /// Where the portal returns to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

/// A Stripe session to open in a browser.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingSession {
    /// Session id.
    pub id: String,
    /// URL to open.
    pub url: String,
}

/// `GET …/billing/status`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingStatus {
    /// Plan.
    pub plan: String,
    /// Stripe subscription, if any.
    #[serde(default)]
    pub subscription: Option<Subscription>,
}

/// A Stripe subscription.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Stripe's status (`active`, `past_due`, …).
    #[serde(default)]
    pub subscription_status: Option<String>,
}
