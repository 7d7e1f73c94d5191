//! Call transfers asked for by the runtime (`transferRequested`): the gateway redirects the
//! live call through the carrier that carries it, with the credentials of the account that
//! owns the number (Twilio: update the call with `<Dial>` TwiML; Telnyx: `actions/transfer`).
//! The sandbox has no live calls to redirect, so transfers there are only logged.

use serde_json::json;

use crate::carrier_accounts::AccountError;
use crate::state::AppState;
use crate::store::calls::{self, CallRow};
use crate::store::numbers::NumberRow;
use crate::store::tenants::TenantRow;
use crate::store::{Scope, StoreError};

/// Why a transfer could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The destination is not E.164.
    #[error("transfer destination is not E.164")]
    BadDestination,
    /// No such call, or it has no carrier id / routed number.
    #[error("the call cannot be transferred: {0}")]
    NotTransferable(&'static str),
    /// No credentials for the owning account.
    #[error("no carrier credentials for the number's account")]
    NoCredentials,
    /// The carrier refused or was unreachable.
    #[error("carrier refused the transfer: {0}")]
    Carrier(String),
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The owning account's credentials cannot be read.
    #[error(transparent)]
    Credentials(#[from] AccountError),
}

async fn our_number(state: &AppState, call: &CallRow) -> Result<Option<NumberRow>, StoreError> {
    let ours = if call.direction == "inbound" {
        &call.to_number
    } else {
        &call.from_number
    };
    match ours {
        Some(number) => state.numbers.route(&state.store, number).await,
        None => Ok(None),
    }
}

/// Redirects the tenant's live call `call_id` to `to`.
pub async fn transfer(
    state: &AppState,
    tenant: &TenantRow,
    call_id: &str,
    to: &str,
) -> Result<(), TransferError> {
    if !switchboard_crds::phone_number::is_e164(to) {
        return Err(TransferError::BadDestination);
    }
    let mut tx = state.store.read(&Scope::tenant(&tenant.id)).await?;
    let call = calls::get(&mut tx, &tenant.id, call_id).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let call = call.ok_or(TransferError::NotTransferable("unknown call"))?;
    let carrier_id = call
        .carrier_call_id
        .clone()
        .ok_or(TransferError::NotTransferable("no carrier call id"))?;
    let number = our_number(state, &call)
        .await?
        .ok_or(TransferError::NotTransferable("number not routed"))?;
    match number.carrier.as_str() {
        "twilio" => twilio(state, &number, &carrier_id, to).await,
        "telnyx" => telnyx(state, &number, &carrier_id, to).await,
        _ => {
            tracing::info!(
                call_id,
                to,
                "sandbox call transfer requested (nothing to redirect)"
            );
            Ok(())
        }
    }
}

async fn twilio(
    state: &AppState,
    number: &NumberRow,
    call_sid: &str,
    to: &str,
) -> Result<(), TransferError> {
    let account = state
        .carrier_accounts
        .twilio(number)
        .await?
        .ok_or(TransferError::NoCredentials)?;
    let sid = account
        .account_sid
        .as_deref()
        .ok_or(TransferError::NoCredentials)?;
    let url = format!(
        "{}/Accounts/{sid}/Calls/{call_sid}.json",
        state
            .carrier_accounts
            .platform()
            .twilio_api_base
            .trim_end_matches('/')
    );
    let twiml = format!("<Response><Dial>{}</Dial></Response>", xml_escape(to));
    let response = state
        .http_client
        .post(url)
        .basic_auth(sid, Some(&account.auth_token))
        .form(&[("Twiml", twiml)])
        .send()
        .await
        .map_err(|e| TransferError::Carrier(e.without_url().to_string()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(TransferError::Carrier(format!(
            "Twilio answered {}",
            response.status()
        )))
    }
}

async fn telnyx(
    state: &AppState,
    number: &NumberRow,
    call_control_id: &str,
    to: &str,
) -> Result<(), TransferError> {
    let account = state.carrier_accounts.telnyx(number).await?;
    let client = state
        .carrier_accounts
        .telnyx_client(&account)
        .map_err(|e| TransferError::Carrier(e.to_string()))?
        .ok_or(TransferError::NoCredentials)?;
    client
        .call_command(call_control_id, "transfer", &json!({ "to": to }))
        .await
        .map_err(|e| TransferError::Carrier(e.to_string()))
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
