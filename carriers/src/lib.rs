//! Carrier REST clients and webhook signature checks, shared by the operator (buying and
//! releasing numbers) and the gateway (verifying webhooks, placing campaign calls).
//!
//! * [`Carrier`] — the operations Switchboard needs from a carrier.
//! * [`twilio::TwilioClient`], [`telnyx::TelnyxClient`] — the real carriers' REST APIs.
//! * [`sandbox::SandboxCarrier`] — a documented local carrier with fictional numbers.
//! * [`AnyCarrier`] — enum dispatch over the three, what callers hold at runtime.
//! * [`signatures`] — Twilio `X-Twilio-Signature` and Telnyx Ed25519 webhook verification.
//!
//! ## Why a trait plus an enum
//! The trait keeps the three implementations honest (same operations, same error kinds) and
//! lets generic code accept any of them. Callers pick the carrier at runtime from a Tenant's
//! spec, so they hold an [`AnyCarrier`]: enum dispatch needs no boxing of futures and no
//! `async-trait` macro, and the set of carriers is closed (adding one is a code change anyway).

pub mod error;
mod http;
pub mod sandbox;
pub mod signatures;
pub mod telnyx;
pub mod twilio;
mod types;

use std::future::Future;

pub use error::CarrierError;
pub use sandbox::SandboxCarrier;
use switchboard_crds::CarrierKind;
pub use telnyx::{TelnyxClient, TelnyxConfig};
pub use twilio::{TwilioClient, TwilioConfig};
pub use types::{
    AvailableNumber, NumberQuery, OutboundCall, OwnedNumber, PlacedCall, PurchaseRequest,
    WebhookConfig,
};

/// Result of a carrier operation.
pub type CarrierResult<T> = Result<T, CarrierError>;

/// The operations Switchboard needs from a telephony carrier.
///
/// Lookups return `Ok(None)` for "no such number" so that callers can tell absence from
/// failure; [`Carrier::release`] of a number that is already gone succeeds.
pub trait Carrier {
    /// Which carrier this is.
    fn kind(&self) -> CarrierKind;

    /// Numbers available for purchase that match `query`.
    fn search(
        &self,
        query: &NumberQuery,
    ) -> impl Future<Output = CarrierResult<Vec<AvailableNumber>>> + Send;

    /// Buys one number, tags it with the request's idempotency key and points its webhooks.
    fn buy(
        &self,
        request: &PurchaseRequest,
    ) -> impl Future<Output = CarrierResult<OwnedNumber>> + Send;

    /// Points an owned number's webhooks at `webhooks`.
    fn configure_webhooks(
        &self,
        id: &str,
        webhooks: &WebhookConfig,
    ) -> impl Future<Output = CarrierResult<OwnedNumber>> + Send;

    /// Looks an owned number up by the carrier's id.
    fn get(&self, id: &str) -> impl Future<Output = CarrierResult<Option<OwnedNumber>>> + Send;

    /// Finds the owned number whose idempotency tag is `tag` (adoption after a crash).
    fn find_by_tag(
        &self,
        tag: &str,
    ) -> impl Future<Output = CarrierResult<Option<OwnedNumber>>> + Send;

    /// Finds the owned number `e164` (import of a number the account already has).
    fn find_by_e164(
        &self,
        e164: &str,
    ) -> impl Future<Output = CarrierResult<Option<OwnedNumber>>> + Send;

    /// Gives an owned number back to the carrier. Already-released numbers succeed.
    fn release(&self, id: &str) -> impl Future<Output = CarrierResult<()>> + Send;

    /// Places an outbound call.
    fn place_call(
        &self,
        call: &OutboundCall,
    ) -> impl Future<Output = CarrierResult<PlacedCall>> + Send;

    /// Ends a call. A call that has already ended succeeds.
    fn hang_up(&self, call_id: &str) -> impl Future<Output = CarrierResult<()>> + Send;
}

/// One of the supported carriers, chosen at runtime.
#[derive(Clone, Debug)]
pub enum AnyCarrier {
    /// Twilio REST.
    Twilio(TwilioClient),
    /// Telnyx API v2.
    Telnyx(TelnyxClient),
    /// The local sandbox carrier.
    Sandbox(SandboxCarrier),
}

/// Forwards a method call to whichever carrier `self` holds.
macro_rules! dispatch {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            AnyCarrier::Twilio($c) => $call,
            AnyCarrier::Telnyx($c) => $call,
            AnyCarrier::Sandbox($c) => $call,
        }
    };
}

impl Carrier for AnyCarrier {
    fn kind(&self) -> CarrierKind {
        dispatch!(self, c => c.kind())
    }

    async fn search(&self, query: &NumberQuery) -> CarrierResult<Vec<AvailableNumber>> {
        dispatch!(self, c => c.search(query).await)
    }

    async fn buy(&self, request: &PurchaseRequest) -> CarrierResult<OwnedNumber> {
        dispatch!(self, c => c.buy(request).await)
    }

    async fn configure_webhooks(
        &self,
        id: &str,
        webhooks: &WebhookConfig,
    ) -> CarrierResult<OwnedNumber> {
        dispatch!(self, c => c.configure_webhooks(id, webhooks).await)
    }

    async fn get(&self, id: &str) -> CarrierResult<Option<OwnedNumber>> {
        dispatch!(self, c => c.get(id).await)
    }

    async fn find_by_tag(&self, tag: &str) -> CarrierResult<Option<OwnedNumber>> {
        dispatch!(self, c => c.find_by_tag(tag).await)
    }

    async fn find_by_e164(&self, e164: &str) -> CarrierResult<Option<OwnedNumber>> {
        dispatch!(self, c => c.find_by_e164(e164).await)
    }

    async fn release(&self, id: &str) -> CarrierResult<()> {
        dispatch!(self, c => c.release(id).await)
    }

    async fn place_call(&self, call: &OutboundCall) -> CarrierResult<PlacedCall> {
        dispatch!(self, c => c.place_call(call).await)
    }

    async fn hang_up(&self, call_id: &str) -> CarrierResult<()> {
        dispatch!(self, c => c.hang_up(call_id).await)
    }
}

/// Webhook URLs of the gateway for a carrier, given the gateway's public base URL.
///
/// Twilio: voice `{base}/api/v1/webhooks/twilio/voice`, status `{base}/api/v1/webhooks/twilio/status`.
/// Telnyx: everything to `{base}/api/v1/webhooks/telnyx`. The sandbox uses the Twilio shape,
/// because it simulates Twilio-style form webhooks.
pub fn gateway_webhooks(kind: CarrierKind, public_base_url: &str) -> WebhookConfig {
    let base = public_base_url.trim_end_matches('/');
    match kind {
        CarrierKind::Telnyx => WebhookConfig {
            voice_url: format!("{base}/api/v1/webhooks/telnyx"),
            status_callback_url: None,
        },
        CarrierKind::Twilio | CarrierKind::Sandbox => WebhookConfig {
            voice_url: format!("{base}/api/v1/webhooks/twilio/voice"),
            status_callback_url: Some(format!("{base}/api/v1/webhooks/twilio/status")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_webhook_urls_follow_the_gateway_routes() {
        let twilio = gateway_webhooks(CarrierKind::Twilio, "https://gw.example.com/");
        assert_eq!(
            twilio.voice_url,
            "https://gw.example.com/api/v1/webhooks/twilio/voice"
        );
        assert_eq!(
            twilio.status_callback_url.as_deref(),
            Some("https://gw.example.com/api/v1/webhooks/twilio/status")
        );
        let telnyx = gateway_webhooks(CarrierKind::Telnyx, "https://gw.example.com");
        assert_eq!(
            telnyx.voice_url,
            "https://gw.example.com/api/v1/webhooks/telnyx"
        );
        assert_eq!(telnyx.status_callback_url, None);
    }
}
