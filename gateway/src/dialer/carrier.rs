//! Which carrier account places a campaign's calls: the one that owns the caller-id number
//! (the platform's account from configuration, the tenant's own stored credential, or the
//! sandbox), and the URLs the carrier calls back on.

use switchboard_carriers::{
    AnyCarrier, OutboundCall, TelnyxClient, TelnyxConfig, TwilioClient, TwilioConfig,
};

use crate::state::AppState;
use crate::store::numbers::NumberRow;
use crate::webhooks::{telnyx, tenant_carrier_secret, twilio_account};

/// Why no carrier client could be built for a number.
#[derive(Debug, thiserror::Error)]
pub enum CarrierSetupError {
    /// The number is not routed (or not the tenant's).
    #[error("caller id {0} is not a routed number of this tenant")]
    NotRouted(String),
    /// No credentials for the account that owns the number.
    #[error("no {0} credentials for the account owning the caller id")]
    NoCredentials(&'static str),
    /// The carrier client could not be built.
    #[error("cannot build the carrier client: {0}")]
    Client(String),
}

fn metadata_text(metadata: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| metadata.get(*k).and_then(|v| v.as_str()))
        .map(str::to_owned)
}

/// The carrier client for calls from `number`.
pub async fn carrier_for(
    state: &AppState,
    number: &NumberRow,
) -> Result<AnyCarrier, CarrierSetupError> {
    let voice = &state.config.voice;
    let missing = |vendor| CarrierSetupError::NoCredentials(vendor);
    match number.carrier.as_str() {
        "sandbox" => state
            .sandbox
            .clone()
            .map(AnyCarrier::Sandbox)
            .ok_or(missing("sandbox")),
        "twilio" => {
            let (sid, token) = twilio_account(state, number)
                .await
                .ok()
                .flatten()
                .ok_or(missing("twilio"))?;
            let config = TwilioConfig::new(sid, token).with_base_url(voice.twilio_api_base.clone());
            TwilioClient::new(config)
                .map(AnyCarrier::Twilio)
                .map_err(|e| CarrierSetupError::Client(e.to_string()))
        }
        "telnyx" => {
            let key = telnyx::api_key(state, number)
                .await
                .ok()
                .flatten()
                .ok_or(missing("telnyx"))?;
            let connection = if number.account == "tenant" {
                tenant_carrier_secret(state, &number.tenant_id, "telnyx")
                    .await
                    .ok()
                    .flatten()
                    .and_then(|(_, metadata)| {
                        metadata_text(&metadata, &["connection_id", "connectionId"])
                    })
            } else {
                voice.telnyx_connection_id.clone()
            }
            .ok_or(missing("telnyx"))?;
            let config =
                TelnyxConfig::new(key, connection).with_base_url(voice.telnyx_api_base.clone());
            TelnyxClient::new(config)
                .map(AnyCarrier::Telnyx)
                .map_err(|e| CarrierSetupError::Client(e.to_string()))
        }
        _ => Err(CarrierSetupError::NotRouted(number.e164.clone())),
    }
}

/// The carrier request for one attempt. Twilio-style carriers (Twilio, the sandbox) fetch
/// TwiML from the voice webhook, with the attempt id in the query (Twilio signs the whole
/// URL, so it cannot be altered); Telnyx sends call events to its webhook with the attempt id
/// as `client_state`.
pub fn outbound_call(
    public_base: &str,
    number: &NumberRow,
    to: &str,
    attempt_id: &str,
) -> OutboundCall {
    let base = public_base.trim_end_matches('/');
    let (answer_url, status_callback_url) = if number.carrier == "telnyx" {
        (format!("{base}/api/v1/webhooks/telnyx"), None)
    } else {
        (
            format!("{base}/api/v1/webhooks/twilio/voice?attempt={attempt_id}"),
            Some(format!("{base}/api/v1/webhooks/twilio/status")),
        )
    };
    OutboundCall {
        from: number.e164.clone(),
        to: to.to_owned(),
        answer_url,
        status_callback_url,
        client_state: Some(attempt_id.to_owned()),
    }
}
