//! `PhoneNumber`: a number bought from, or imported into, a carrier — a Crossplane-style
//! managed resource (observe → create → update → delete, external-name annotation).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tenant::CarrierKind;

/// E.164: a plus sign and up to fifteen digits, no leading zero.
pub const E164_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";

/// Whether `text` is E.164 as [`E164_PATTERN`] says: `+` then 2–15 digits, the first not zero.
/// The gateway checks numbers it is given (contacts, transfers, purchases) with it.
pub fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Condition: the number is owned and its webhooks point at the gateway.
pub const CONDITION_READY: &str = "Ready";
/// Condition: the last reconcile brought the carrier in line with the spec.
pub const CONDITION_SYNCED: &str = "Synced";

/// Desired state of a phone number.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "voice.switchboard.dev",
    version = "v1alpha1",
    kind = "PhoneNumber",
    plural = "phonenumbers",
    shortname = "pn",
    category = "switchboard",
    namespaced,
    status = "PhoneNumberStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A phone number bought from (or imported into) the tenant's carrier and answered by the tenant's agent.",
    printcolumn(
        name = "Number",
        type_ = "string",
        json_path = ".status.e164",
        description = "The number in E.164"
    ),
    printcolumn(
        name = "Carrier",
        type_ = "string",
        json_path = ".status.carrier",
        description = "Carrier that owns the number"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the number is owned and configured"
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status",
        priority = 1,
        description = "Whether the last reconcile succeeded"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!(has(self.areaCode) && has(self.number))").message("set either areaCode (search and buy) or number (claim or import), not both"))]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberSpec {
    /// ISO 3166-1 alpha-2 country to buy the number in. Immutable.
    #[serde(default = "default_country")]
    #[schemars(regex(pattern = r"^[A-Z]{2}$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("country is immutable"))]
    pub country: String,

    /// Area code to search in (digits only). Leave empty for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{2,5}$"))]
    pub area_code: Option<String>,

    /// An exact E.164 number to buy, or to import when the account already owns it. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = E164_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("number is immutable"))]
    pub number: Option<String>,

    /// What the number must support.
    #[serde(default = "default_capabilities")]
    #[schemars(length(min = 1, max = 4))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub capabilities: Vec<Capability>,

    /// Carrier to buy from. Unset: the tenant's carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<CarrierKind>,

    /// What happens at the carrier when this object is deleted: `Release` gives the number
    /// back, `Retain` keeps it on the account.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Name of the agent that answers calls to this number. Unset: the tenant's default agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub agent: Option<String>,
}

fn default_country() -> String {
    "US".into()
}

fn default_capabilities() -> Vec<Capability> {
    vec![Capability::Voice]
}

/// A service a number supports.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Voice calls.
    Voice,
    /// Text messages.
    Sms,
    /// Picture messages.
    Mms,
    /// Fax.
    Fax,
}

/// What deleting a PhoneNumber does at the carrier.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Release the number at the carrier (it stops costing money and may go to someone else).
    #[default]
    Release,
    /// Keep the number on the carrier account; only the Kubernetes object goes.
    Retain,
}

/// Observed state of a phone number.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberStatus {
    /// The number in E.164, once bought or imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e164: Option<String>,
    /// Carrier that owns the number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<CarrierKind>,
    /// The carrier's id for the number (Twilio `PN…` sid, Telnyx phone number id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<String>,
    /// Voice webhook URL configured on the number at the carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Key tagged on the purchase at the carrier (Twilio FriendlyName, Telnyx
    /// customer_reference) so that an interrupted purchase is adopted, never repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: `Ready`, `Synced`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
