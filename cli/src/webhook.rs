//! The carrier's side of an inbound call: the voice webhook Twilio POSTs when a number rings,
//! form-encoded and signed with `X-Twilio-Signature` (signed by `switchboard-carriers`, the
//! same code the gateway verifies with).

use std::time::Duration;

use switchboard_carriers::signatures::{TWILIO_SIGNATURE_HEADER, twilio_signature};

/// Path of the gateway's Twilio voice webhook.
pub const VOICE_WEBHOOK_PATH: &str = "/api/v1/webhooks/twilio/voice";
/// Path of the gateway's Twilio status callback.
pub const STATUS_CALLBACK_PATH: &str = "/api/v1/webhooks/twilio/status";
/// How long the gateway may take to answer (Twilio itself waits 15 s).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// A Twilio-style id: a two-letter prefix and 32 lowercase hex digits.
pub fn twilio_sid(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// One simulated inbound call.
#[derive(Clone, Debug)]
pub struct InboundCall {
    /// `CA…`.
    pub call_sid: String,
    /// `AC…`.
    pub account_sid: String,
    /// Caller (E.164).
    pub from: String,
    /// Dialled number (E.164).
    pub to: String,
}

impl InboundCall {
    /// A new call with fresh ids; `account_sid` defaults to a random `AC…`.
    pub fn new(from: &str, to: &str, account_sid: Option<&str>) -> Self {
        Self {
            call_sid: twilio_sid("CA"),
            account_sid: account_sid.map_or_else(|| twilio_sid("AC"), str::to_owned),
            from: from.to_owned(),
            to: to.to_owned(),
        }
    }

    /// The form parameters Twilio sends to the voice URL when the number rings.
    pub fn voice_parameters(&self) -> Vec<(String, String)> {
        self.parameters("ringing")
    }

    /// The status callback Twilio sends when an answered call ends: `completed` with the
    /// duration in seconds (`CallDuration`) and billed minutes (`Duration`).
    pub fn completed_parameters(&self, duration_ms: u64) -> Vec<(String, String)> {
        let seconds = duration_ms.div_ceil(1000);
        let mut params = self.parameters("completed");
        params.extend(
            [
                ("CallDuration", seconds.to_string()),
                ("Duration", seconds.div_ceil(60).to_string()),
                ("CallbackSource", "call-progress-events".to_owned()),
                ("SequenceNumber", "0".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        params
    }

    fn parameters(&self, status: &str) -> Vec<(String, String)> {
        [
            ("CallSid", self.call_sid.as_str()),
            ("AccountSid", self.account_sid.as_str()),
            ("From", self.from.as_str()),
            ("To", self.to.as_str()),
            ("Caller", self.from.as_str()),
            ("Called", self.to.as_str()),
            ("CallStatus", status),
            ("Direction", "inbound"),
            ("ApiVersion", "2010-04-01"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// Why the webhook did not produce TwiML.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The gateway could not be reached.
    #[error("cannot reach the webhook {url}")]
    Transport {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The gateway answered with an error status.
    #[error("the webhook {url} answered: {detail}{hint}")]
    Status {
        /// The URL.
        url: String,
        /// The API error or the start of the body.
        detail: crate::api::ApiError,
        /// What to check, for a refused signature.
        hint: &'static str,
    },
}

/// Where webhooks go and which URL is signed.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    /// Base URL POSTed to (the gateway as this machine reaches it).
    pub base_url: String,
    /// Base URL the gateway believes it is called at (its public URL), which is what Twilio
    /// signs; usually the same as `base_url`.
    pub signed_base_url: String,
    /// The account's auth token (the sandbox's signing key).
    pub auth_token: String,
}

/// POSTs the voice webhook and returns the TwiML body.
pub async fn post_voice_webhook(
    http: &reqwest::Client,
    target: &WebhookTarget,
    parameters: &[(String, String)],
) -> Result<String, WebhookError> {
    post_signed(http, target, VOICE_WEBHOOK_PATH, parameters).await
}

/// POSTs a status callback.
pub async fn post_status_callback(
    http: &reqwest::Client,
    target: &WebhookTarget,
    parameters: &[(String, String)],
) -> Result<(), WebhookError> {
    post_signed(http, target, STATUS_CALLBACK_PATH, parameters)
        .await
        .map(drop)
}

/// POSTs a form to `path`, signed as Twilio signs; answers the body of a 2xx answer.
async fn post_signed(
    http: &reqwest::Client,
    target: &WebhookTarget,
    path: &str,
    parameters: &[(String, String)],
) -> Result<String, WebhookError> {
    let post_url = format!("{}{path}", target.base_url.trim_end_matches('/'));
    let signed_url = format!("{}{path}", target.signed_base_url.trim_end_matches('/'));
    let signature = twilio_signature(&target.auth_token, &signed_url, parameters);
    let transport = |source| WebhookError::Transport {
        url: post_url.clone(),
        source,
    };
    let response = http
        .post(&post_url)
        .timeout(WEBHOOK_TIMEOUT)
        .header(TWILIO_SIGNATURE_HEADER, signature)
        .header(reqwest::header::USER_AGENT, "TwilioProxy/1.1")
        .form(parameters)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    if !status.is_success() {
        return Err(WebhookError::Status {
            url: post_url.clone(),
            detail: crate::api::error_from_body(status, &post_url, &body, None),
            hint: hint_for(status),
        });
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A signature is refused when the token differs or when the gateway signs another URL
/// (its public URL) than the one called: say which knobs fix each.
fn hint_for(status: reqwest::StatusCode) -> &'static str {
    if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::UNAUTHORIZED {
        "\nhint: check --auth-token (SWITCHBOARD_SANDBOX_AUTH_TOKEN) matches the gateway's, and pass --public-url when the gateway's public URL differs from --url"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_prefix_and_32_hex_digits() {
        let sid = twilio_sid("CA");
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("CA"));
        assert!(sid[2..].chars().all(|c| c.is_ascii_hexdigit()));
        let call = InboundCall::new("+15551234567", "+15550100", Some("AC00"));
        assert_eq!(call.account_sid, "AC00");
        let params = call.voice_parameters();
        assert!(params.contains(&("CallStatus".into(), "ringing".into())));
        assert!(params.contains(&("To".into(), "+15550100".into())));
        let done = call.completed_parameters(61_200);
        assert!(done.contains(&("CallStatus".into(), "completed".into())));
        assert!(done.contains(&("CallDuration".into(), "62".into())));
        assert!(done.contains(&("Duration".into(), "2".into())));
    }
}
