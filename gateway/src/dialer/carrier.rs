//! Which carrier account places a campaign's calls: the one that owns the caller-id number
//! (the platform's account from configuration, the tenant's own stored credential, or the
//! sandbox: standalone's own, or in Kubernetes mode the gateway's when
//! `SWITCHBOARD_SANDBOX_CARRIER` is on), and the URLs the carrier calls back on.

use switchboard_carriers::{AnyCarrier, OutboundCall, OwnedNumber};

use crate::carrier_accounts::AccountError;
use crate::state::AppState;
use crate::store::numbers::NumberRow;

/// Why no carrier client could be built for a number.
#[derive(Debug, thiserror::Error)]
pub enum CarrierSetupError {
    /// The number is not routed (or not the tenant's).
    #[error("caller id {0} is not a routed number of this tenant")]
    NotRouted(String),
    /// No credentials for the account that owns the number.
    #[error("no {0} credentials for the account owning the caller id")]
    NoCredentials(&'static str),
    /// The owning account's stored credentials cannot be read.
    #[error("cannot read the credentials of the account owning the caller id: {0}")]
    Account(#[from] AccountError),
    /// The carrier client could not be built.
    #[error("cannot build the carrier client: {0}")]
    Client(#[from] switchboard_carriers::CarrierError),
}

/// The carrier client for calls from `number`, through the account that owns it.
pub async fn carrier_for(
    state: &AppState,
    number: &NumberRow,
) -> Result<AnyCarrier, CarrierSetupError> {
    let accounts = &state.carrier_accounts;
    let missing = CarrierSetupError::NoCredentials;
    match number.carrier.as_str() {
        "sandbox" => {
            if let Some(sandbox) = &state.sandbox {
                return Ok(AnyCarrier::Sandbox(sandbox.clone()));
            }
            let sandbox = state.outbound_sandbox.clone().ok_or(missing("sandbox"))?;
            // Kubernetes mode: the operator bought the number from its own sandbox account;
            // the routing table is the record that the platform owns it (restoring is a no-op
            // once done, and no purchase).
            sandbox.restore(OwnedNumber {
                id: format!("SB-{}", number.e164),
                e164: number.e164.clone(),
                tag: None,
                voice_url: None,
                status_callback_url: None,
            })?;
            Ok(AnyCarrier::Sandbox(sandbox))
        }
        "twilio" => {
            let account = accounts.twilio(number).await?.ok_or(missing("twilio"))?;
            accounts
                .twilio_client(&account)?
                .map(AnyCarrier::Twilio)
                .ok_or(missing("twilio"))
        }
        "telnyx" => {
            let account = accounts.telnyx(number).await?;
            if account.connection_id.is_none() {
                return Err(missing("telnyx"));
            }
            accounts
                .telnyx_client(&account)?
                .map(AnyCarrier::Telnyx)
                .ok_or(missing("telnyx"))
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
