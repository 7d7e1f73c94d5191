//! Twilio (and sandbox) voice and status webhooks.
//!
//! `POST /api/v1/webhooks/twilio/voice` answers TwiML: `<Connect><Stream>` to the gateway's
//! media WebSocket with the call token as a `<Parameter>` (Twilio stream URLs take no query
//! string), or a polite `<Say>` + `<Hangup/>`. `POST /api/v1/webhooks/twilio/status` updates
//! the call record. Both verify `X-Twilio-Signature` over the public URL and the form body
//! with the auth token of the account that owns the number: the platform's
//! (`TWILIO_AUTH_TOKEN`), the tenant's own stored `twilio` credential, or, for sandbox
//! numbers, `SWITCHBOARD_SANDBOX_AUTH_TOKEN` (the sandbox signs the Twilio way).

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_carriers::signatures::{TWILIO_SIGNATURE_HEADER, verify_twilio};

use super::{forbidden, media_url};
use crate::calls::CallStatus;
use crate::calls::admission::{
    InboundDecision, UNKNOWN_NUMBER_MESSAGE, admit_inbound, admit_outbound,
};
use crate::calls::lifecycle::{StatusUpdate, apply_status};
use crate::calls::transfer::xml_escape;
use crate::http::errors::ApiError;
use crate::state::AppState;
use crate::store::numbers::NumberRow;
use crate::store::tenants;

/// TwiML connecting the call to the gateway's media WebSocket; `extra` adds stream
/// parameters (a campaign call's `campaign` and `contact`, which pick the runtime's script).
pub fn connect_twiml(
    stream_url: &str,
    token: &str,
    call_id: &str,
    slug: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut params = format!(
        "<Parameter name=\"callToken\" value=\"{}\"/><Parameter name=\"callId\" value=\"{}\"/>\
         <Parameter name=\"tenant\" value=\"{}\"/>",
        xml_escape(token),
        xml_escape(call_id),
        xml_escape(slug)
    );
    for (name, value) in extra {
        params.push_str(&format!(
            "<Parameter name=\"{}\" value=\"{}\"/>",
            xml_escape(name),
            xml_escape(value)
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"{}\">{params}\
         </Stream></Connect></Response>",
        xml_escape(stream_url)
    )
}

/// TwiML saying a sentence and hanging up.
pub fn refusal_twiml(message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{}</Say><Hangup/></Response>",
        xml_escape(message)
    )
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Verifies the request's signature for `number`; 403 otherwise (no state is touched first).
async fn verify(
    state: &AppState,
    number: &NumberRow,
    uri: &OriginalUri,
    headers: &HeaderMap,
    params: &[(String, String)],
    body: &[u8],
) -> Result<(), ApiError> {
    let signature = headers
        .get(TWILIO_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(token) = state.carrier_accounts.webhook_signing_token(number).await? else {
        tracing::warn!(number = %number.e164, "no auth token configured for this number's account");
        return Err(forbidden());
    };
    let path = uri.0.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", state.config.public_base());
    verify_twilio(&token, &url, params, body, signature).map_err(|error| {
        tracing::warn!(%error, number = %number.e164, "rejected Twilio webhook");
        forbidden()
    })
}

fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| ApiError::bad_request("invalid_form", "body is not form-encoded"))
}

/// The carrier's call id, which every Twilio callback carries.
fn call_sid(params: &[(String, String)]) -> Result<&str, ApiError> {
    param(params, "CallSid")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("CallSid", "missing_field", "CallSid is required"))
}

/// The campaign attempt an outbound call's answer URL names (`?attempt=…`).
fn attempt_of(uri: &OriginalUri) -> Option<String> {
    let query = uri.0.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "attempt")
        .map(|(_, v)| v)
}

fn carrier_name(number: &NumberRow) -> &'static str {
    if number.carrier == "sandbox" {
        "sandbox"
    } else {
        "twilio"
    }
}

/// `POST /api/v1/webhooks/twilio/voice`: inbound calls, and campaign calls being answered
/// (their answer URL carries `?attempt=`; the routed number is then the caller id `From`).
pub async fn voice(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = parse_form(&body)?;
    let to = param(&params, "To").unwrap_or_default();
    let call_sid = call_sid(&params)?;
    if let Some(attempt) = attempt_of(&uri) {
        let from = param(&params, "From").unwrap_or_default();
        let Some(number) = state.numbers.route(&state.store, from).await? else {
            return Ok(twiml(refusal_twiml(UNKNOWN_NUMBER_MESSAGE)));
        };
        verify(&state, &number, &uri, &headers, &params, &body).await?;
        let answer =
            admit_outbound(&state, &number, carrier_name(&number), call_sid, &attempt).await?;
        return Ok(twiml(match answer {
            Some(call) => connect_twiml(
                &media_url(state.config.public_base()),
                &call.token,
                &call.call_id,
                &call.slug,
                &[("campaign", &call.campaign), ("contact", &call.contact)],
            ),
            None => refusal_twiml(UNKNOWN_NUMBER_MESSAGE),
        }));
    }
    let Some(number) = state.numbers.route(&state.store, to).await? else {
        return Ok(twiml(refusal_twiml(UNKNOWN_NUMBER_MESSAGE)));
    };
    verify(&state, &number, &uri, &headers, &params, &body).await?;
    let carrier = carrier_name(&number);
    let decision = admit_inbound(
        &state,
        &number,
        carrier,
        call_sid,
        param(&params, "From"),
        to,
    )
    .await?;
    Ok(twiml(match decision {
        InboundDecision::Connect {
            call_id,
            slug,
            token,
        } => connect_twiml(
            &media_url(state.config.public_base()),
            &token,
            &call_id,
            &slug,
            &[],
        ),
        InboundDecision::Refuse(message) => refusal_twiml(message),
    }))
}

/// `POST /api/v1/webhooks/twilio/status`.
pub async fn status(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let params = parse_form(&body)?;
    let call_sid = call_sid(&params)?;
    // Inbound calls dialled our number (`To`); outbound calls come from it (`From`).
    let mut number = None;
    for candidate in [param(&params, "To"), param(&params, "From")]
        .into_iter()
        .flatten()
    {
        if let Some(row) = state.numbers.route(&state.store, candidate).await? {
            number = Some(row);
            break;
        }
    }
    let Some(number) = number else {
        return Err(ApiError::not_found("number"));
    };
    verify(&state, &number, &uri, &headers, &params, &body).await?;
    let Some(tenant) = tenants::load(&state.store, &number.tenant_id).await? else {
        return Err(ApiError::not_found("tenant"));
    };
    let carrier = carrier_name(&number);
    let reported = param(&params, "CallStatus").unwrap_or_default();
    let Some(status) = CallStatus::parse(reported) else {
        // A status Twilio may add later: acknowledged, the call record keeps its last one.
        tracing::info!(status = reported, "ignored an unknown Twilio call status");
        return Ok(StatusCode::NO_CONTENT);
    };
    let update = StatusUpdate {
        status,
        duration_seconds: param(&params, "CallDuration").and_then(|d| d.parse().ok()),
    };
    apply_status(&state, &tenant, carrier, call_sid, &update).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_escapes_and_connects() {
        let xml = connect_twiml(
            "wss://gw.example/media",
            "a.b",
            "c\"1",
            "acme",
            &[("campaign", "spring")],
        );
        assert!(xml.contains("<Parameter name=\"campaign\" value=\"spring\"/></Stream>"));
        assert!(xml.contains("<Connect><Stream url=\"wss://gw.example/media\">"));
        assert!(xml.contains("<Parameter name=\"callToken\" value=\"a.b\"/>"));
        assert!(xml.contains("value=\"c&quot;1\""));
        assert!(refusal_twiml("a < b").contains("<Say>a &lt; b</Say><Hangup/>"));
    }
}
