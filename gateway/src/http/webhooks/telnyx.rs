//! Telnyx Call Control webhooks at `POST /api/v1/webhooks/telnyx`.
//!
//! Signatures: `telnyx-signature-ed25519` over `"{telnyx-timestamp}|{body}"`, timestamp within
//! 300 s, with the public key of the account owning the number (`TELNYX_PUBLIC_KEY`, or the
//! `publicKey` metadata of the tenant's stored `telnyx` credential).
//!
//! Call Control does not take instructions in the webhook response, so on `call.initiated`
//! the gateway answers the call through the REST API with `stream_url` pointing at its media
//! WebSocket and the call token in `client_state` (it comes back in the stream's `start`
//! message), or rejects it. `call.answered` and `call.hangup` update the call record; on a
//! campaign call (outgoing, with the attempt id the dialer put in `client_state`),
//! `call.answered` also starts the media stream to the gateway (`streaming_start`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use switchboard_carriers::signatures::{
    TELNYX_SIGNATURE_HEADER, TELNYX_TIMESTAMP_HEADER, verify_telnyx,
};
use switchboard_carriers::telnyx::{decode_client_state, encode_client_state};

use super::{forbidden, media_url};
use crate::calls::CallStatus;
use crate::calls::admission::{InboundDecision, admit_inbound, admit_outbound};
use crate::calls::lifecycle::{StatusUpdate, apply_status};
use crate::http::errors::ApiError;
use crate::state::AppState;
use crate::store::numbers::NumberRow;
use crate::store::tenants;

#[derive(Deserialize)]
struct Envelope {
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    event_type: String,
    #[serde(default)]
    payload: Payload,
}

#[derive(Deserialize, Default)]
struct Payload {
    #[serde(default)]
    call_control_id: String,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    hangup_cause: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
    /// Base64 state we set: on campaign calls, the attempt id given when dialling.
    #[serde(default)]
    client_state: Option<String>,
}

/// Sends a Call Control command through the account that owns `number`; failures are logged
/// (Telnyx then times the call out).
async fn command(
    state: &AppState,
    number: &NumberRow,
    call_control_id: &str,
    action: &str,
    body: serde_json::Value,
) {
    let client = match state.carrier_accounts.telnyx(number).await {
        Ok(account) => state.carrier_accounts.telnyx_client(&account),
        Err(error) => {
            tracing::warn!(%error, number = %number.e164, "cannot read the Telnyx account of this number");
            return;
        }
    };
    let client = match client {
        Ok(Some(client)) => client,
        Ok(None) => {
            tracing::warn!(number = %number.e164, "no Telnyx API key for this number's account");
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot build the Telnyx client");
            return;
        }
    };
    if let Err(error) = client.call_command(call_control_id, action, &body).await {
        tracing::warn!(%error, action, "Telnyx call command failed");
    }
}

fn seconds_between(start: Option<&str>, end: Option<&str>) -> Option<i64> {
    let start = chrono::DateTime::parse_from_rfc3339(start?).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(end?).ok()?;
    Some((end - start).num_seconds().max(0))
}

/// Call Control body that streams the call's media to the gateway with its call token.
fn stream_to_gateway(state: &AppState, token: &str) -> serde_json::Value {
    json!({
        "stream_url": media_url(state.config.public_base()),
        "stream_track": "inbound_track",
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": "PCMU",
        "client_state": encode_client_state(token),
    })
}

/// Connects an answered campaign call's media to the gateway, like an inbound call's.
async fn stream_campaign_call(
    state: &AppState,
    number: &NumberRow,
    call_control_id: &str,
    attempt: &str,
) -> Result<(), ApiError> {
    let Some(answer) = admit_outbound(state, number, "telnyx", call_control_id, attempt).await?
    else {
        return Ok(());
    };
    let body = stream_to_gateway(state, &answer.token);
    command(state, number, call_control_id, "streaming_start", body).await;
    Ok(())
}

/// `POST /api/v1/webhooks/telnyx`.
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("invalid_json", "body is not a Telnyx webhook"))?;
    let payload = &envelope.data.payload;
    let incoming = payload.direction.as_deref() == Some("incoming");
    let ours = if incoming {
        payload.to.as_deref()
    } else {
        payload.from.as_deref()
    };
    let Some(number) = (match ours {
        Some(n) => state.numbers.route(&state.store, n).await?,
        None => None,
    }) else {
        return Err(ApiError::not_found("number"));
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let key = state
        .carrier_accounts
        .telnyx(&number)
        .await?
        .public_key
        .ok_or_else(forbidden)?;
    verify_telnyx(
        &key,
        header(TELNYX_SIGNATURE_HEADER),
        header(TELNYX_TIMESTAMP_HEADER),
        &body,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|error| {
        tracing::warn!(%error, number = %number.e164, "rejected Telnyx webhook");
        forbidden()
    })?;
    let id = payload.call_control_id.as_str();
    match envelope.data.event_type.as_str() {
        "call.initiated" if incoming => {
            let to = payload.to.clone().unwrap_or_default();
            match admit_inbound(&state, &number, "telnyx", id, payload.from.as_deref(), &to).await?
            {
                InboundDecision::Connect { token, .. } => {
                    let body = stream_to_gateway(&state, &token);
                    command(&state, &number, id, "answer", body).await;
                }
                InboundDecision::Refuse(_) => {
                    command(
                        &state,
                        &number,
                        id,
                        "reject",
                        json!({"cause": "CALL_REJECTED"}),
                    )
                    .await;
                }
            }
        }
        "call.answered" | "call.hangup" => {
            let Some(tenant) = tenants::load(&state.store, &number.tenant_id).await? else {
                return Err(ApiError::not_found("tenant"));
            };
            if envelope.data.event_type == "call.answered"
                && !incoming
                && let Some(attempt) = payload
                    .client_state
                    .as_deref()
                    .and_then(decode_client_state)
            {
                stream_campaign_call(&state, &number, id, &attempt).await?;
            }
            let update = if envelope.data.event_type == "call.answered" {
                StatusUpdate {
                    status: CallStatus::InProgress,
                    duration_seconds: None,
                }
            } else {
                let seconds =
                    seconds_between(payload.start_time.as_deref(), payload.end_time.as_deref());
                let status = match payload.hangup_cause.as_deref() {
                    Some("busy") | Some("user_busy") => CallStatus::Busy,
                    Some("timeout") | Some("no_answer") => CallStatus::NoAnswer,
                    Some("call_rejected") => CallStatus::Canceled,
                    _ => CallStatus::Completed,
                };
                StatusUpdate {
                    status,
                    duration_seconds: seconds,
                }
            };
            apply_status(&state, &tenant, "telnyx", id, &update).await?;
        }
        _ => {}
    }
    Ok(StatusCode::OK)
}
