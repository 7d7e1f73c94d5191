//! Carrier-neutral request and response types.

use serde::{Deserialize, Serialize};
use switchboard_crds::phone_number::Capability;

/// What to look for when searching a carrier's available numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberQuery {
    /// ISO 3166-1 alpha-2 country, e.g. `US`.
    pub country: String,
    /// Area code (national destination code), digits only.
    pub area_code: Option<String>,
    /// Capabilities every result must have.
    pub capabilities: Vec<Capability>,
    /// At most this many results.
    pub limit: u32,
}

impl NumberQuery {
    /// Any voice-capable number in `country`, a handful of results.
    pub fn voice(country: impl Into<String>) -> Self {
        Self {
            country: country.into(),
            area_code: None,
            capabilities: vec![Capability::Voice],
            limit: 5,
        }
    }
}

/// A number the carrier offers for purchase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailableNumber {
    /// The number in E.164.
    pub e164: String,
    /// Region / state, when the carrier says.
    pub region: Option<String>,
    /// Locality / city, when the carrier says.
    pub locality: Option<String>,
}

/// Where the carrier should send a number's call webhooks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// URL the carrier calls when the number receives a call.
    pub voice_url: String,
    /// URL the carrier posts call status changes to (Twilio). Telnyx sends everything to
    /// `voice_url`.
    pub status_callback_url: Option<String>,
}

/// A purchase: one exact number, tagged with an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurchaseRequest {
    /// The number to buy, in E.164 (from a search, or the spec's exact number).
    pub e164: String,
    /// Idempotency key stored on the carrier's record (Twilio `FriendlyName`, Telnyx
    /// `customer_reference`) so an interrupted purchase can be found and adopted.
    pub tag: String,
    /// Webhooks to configure in the same request.
    pub webhooks: WebhookConfig,
}

/// A number owned by the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedNumber {
    /// The carrier's id (Twilio `PN…` sid, Telnyx phone number id, sandbox `SB…`).
    pub id: String,
    /// The number in E.164.
    pub e164: String,
    /// The idempotency tag on the carrier's record, if any.
    pub tag: Option<String>,
    /// Voice webhook currently configured.
    pub voice_url: Option<String>,
    /// Status callback currently configured.
    pub status_callback_url: Option<String>,
}

impl OwnedNumber {
    /// Whether the number's webhooks already match `want` (no update needed).
    pub fn webhooks_match(&self, want: &WebhookConfig) -> bool {
        self.voice_url.as_deref() == Some(want.voice_url.as_str())
            && (want.status_callback_url.is_none()
                || self.status_callback_url == want.status_callback_url)
    }
}

/// An outbound call to place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundCall {
    /// Caller id, a number the account owns, E.164.
    pub from: String,
    /// Destination, E.164.
    pub to: String,
    /// URL the carrier fetches call instructions from / sends call events to once answered.
    pub answer_url: String,
    /// URL for call status changes (Twilio `StatusCallback`).
    pub status_callback_url: Option<String>,
    /// Opaque state echoed back in webhooks (Telnyx `client_state`, base64-encoded on the wire).
    pub client_state: Option<String>,
}

/// A call the carrier accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedCall {
    /// The carrier's call id (Twilio `CA…` sid, Telnyx `call_control_id`).
    pub id: String,
    /// The carrier's initial status (`queued` on Twilio).
    pub status: String,
}
