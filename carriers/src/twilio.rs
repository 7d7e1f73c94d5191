//! Twilio REST (`https://api.twilio.com/2010-04-01`): HTTP Basic auth with the account SID
//! and auth token, form-encoded requests, `.json` paths for JSON responses, and Twilio's
//! error body `{"code":20404,"message":"…","more_info":"…","status":404}`.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use switchboard_crds::CarrierKind;
use switchboard_crds::phone_number::Capability;

use crate::error::parse_retry_after;
use crate::http::{self, join, none_if_not_found, path_id};
use crate::{
    AvailableNumber, Carrier, CarrierError, CarrierResult, NumberQuery, OutboundCall, OwnedNumber,
    PlacedCall, PurchaseRequest, WebhookConfig,
};

/// Twilio's production API base.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com/2010-04-01";

/// Twilio error codes meaning "that number (or any number there) is not available".
/// 21422: PhoneNumber not available; 21452: no phone numbers found in the area code.
const UNAVAILABLE_CODES: [i64; 2] = [21422, 21452];

/// Twilio error code for "call is not in progress": hanging up an ended call.
const CALL_NOT_IN_PROGRESS: i64 = 21220;

/// Longest FriendlyName Twilio accepts.
const MAX_FRIENDLY_NAME: usize = 64;

/// How to reach one Twilio account.
#[derive(Clone)]
pub struct TwilioConfig {
    /// Account SID (`AC…`): the Basic-auth user and part of every path.
    pub account_sid: String,
    /// Auth token: the Basic-auth password (also the webhook signing key).
    pub auth_token: String,
    /// API base, overridable so tests point at a local server.
    pub base_url: String,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl TwilioConfig {
    /// Production Twilio with the default timeout.
    pub fn new(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: http::DEFAULT_TIMEOUT,
        }
    }

    /// The same account at another API base (tests, regional edges).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The same account with another whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for TwilioConfig {
    // The auth token is a secret: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A Twilio REST client for one account.
#[derive(Clone, Debug)]
pub struct TwilioClient {
    config: TwilioConfig,
    http: reqwest::Client,
}

/// Twilio's error body.
#[derive(Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// An `IncomingPhoneNumber` resource (the fields we use).
#[derive(Deserialize)]
struct IncomingPhoneNumber {
    sid: String,
    phone_number: String,
    friendly_name: Option<String>,
    voice_url: Option<String>,
    status_callback: Option<String>,
}

impl From<IncomingPhoneNumber> for OwnedNumber {
    fn from(n: IncomingPhoneNumber) -> Self {
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        OwnedNumber {
            id: n.sid,
            e164: n.phone_number,
            tag: non_empty(n.friendly_name),
            voice_url: non_empty(n.voice_url),
            status_callback_url: non_empty(n.status_callback),
        }
    }
}

#[derive(Deserialize)]
struct IncomingPhoneNumberList {
    #[serde(default)]
    incoming_phone_numbers: Vec<IncomingPhoneNumber>,
}

#[derive(Deserialize)]
struct AvailablePhoneNumberList {
    #[serde(default)]
    available_phone_numbers: Vec<TwilioAvailableNumber>,
}

#[derive(Deserialize)]
struct TwilioAvailableNumber {
    phone_number: String,
    region: Option<String>,
    locality: Option<String>,
}

#[derive(Deserialize)]
struct TwilioCall {
    sid: String,
    status: Option<String>,
}

/// Classifies a Twilio error response.
fn parse_error(status: u16, headers: &HeaderMap, body: &[u8]) -> CarrierError {
    let parsed: Option<TwilioErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|b| b.code);
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let unavailable = code.is_some_and(|c| UNAVAILABLE_CODES.contains(&c));
    CarrierError::from_status(
        status,
        code.map(|c| c.to_string()),
        message,
        parse_retry_after(headers),
        unavailable,
    )
}

/// The Twilio query flag for a capability.
fn capability_param(capability: Capability) -> &'static str {
    match capability {
        Capability::Voice => "VoiceEnabled",
        Capability::Sms => "SmsEnabled",
        Capability::Mms => "MmsEnabled",
        Capability::Fax => "FaxEnabled",
    }
}

/// Form fields that point a number's webhooks (POST for both, as the gateway expects).
fn webhook_fields(webhooks: &WebhookConfig) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("VoiceUrl", webhooks.voice_url.clone()),
        ("VoiceMethod", "POST".to_owned()),
    ];
    if let Some(status) = &webhooks.status_callback_url {
        fields.push(("StatusCallback", status.clone()));
        fields.push(("StatusCallbackMethod", "POST".to_owned()));
    }
    fields
}

impl TwilioClient {
    /// A client for the account in `config`.
    pub fn new(config: TwilioConfig) -> CarrierResult<Self> {
        let http = http::build_client(config.timeout)?;
        Ok(Self { config, http })
    }

    /// The account's auth token, which is also the key Twilio signs webhooks with.
    pub fn auth_token(&self) -> &str {
        &self.config.auth_token
    }

    /// `{base}/Accounts/{sid}{rest}`.
    fn account_url(&self, rest: &str) -> CarrierResult<String> {
        let sid = path_id(&self.config.account_sid)?;
        Ok(join(
            &self.config.base_url,
            &format!("/Accounts/{sid}{rest}"),
        ))
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
    }

    async fn list_numbers(&self, filter: (&str, &str)) -> CarrierResult<Option<OwnedNumber>> {
        let url = self.account_url("/IncomingPhoneNumbers.json")?;
        let list: IncomingPhoneNumberList = http::send_json(
            self.request(reqwest::Method::GET, url)
                .query(&[filter, ("PageSize", "20")]),
            parse_error,
        )
        .await?;
        Ok(list
            .incoming_phone_numbers
            .into_iter()
            .next()
            .map(Into::into))
    }
}

impl Carrier for TwilioClient {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Twilio
    }

    async fn search(&self, query: &NumberQuery) -> CarrierResult<Vec<AvailableNumber>> {
        let country = path_id(&query.country)?;
        let url = self.account_url(&format!("/AvailablePhoneNumbers/{country}/Local.json"))?;
        let mut params: Vec<(&str, String)> = vec![("PageSize", query.limit.max(1).to_string())];
        if let Some(area_code) = &query.area_code {
            params.push(("AreaCode", area_code.clone()));
        }
        for capability in &query.capabilities {
            params.push((capability_param(*capability), "true".to_owned()));
        }
        let list: AvailablePhoneNumberList = http::send_json(
            self.request(reqwest::Method::GET, url).query(&params),
            parse_error,
        )
        .await?;
        Ok(list
            .available_phone_numbers
            .into_iter()
            .map(|n| AvailableNumber {
                e164: n.phone_number,
                region: n.region,
                locality: n.locality,
            })
            .collect())
    }

    async fn buy(&self, request: &PurchaseRequest) -> CarrierResult<OwnedNumber> {
        if request.tag.len() > MAX_FRIENDLY_NAME {
            return Err(CarrierError::Permanent {
                status: None,
                code: None,
                message: format!("idempotency tag longer than {MAX_FRIENDLY_NAME} characters"),
            });
        }
        let url = self.account_url("/IncomingPhoneNumbers.json")?;
        let mut form = vec![
            ("PhoneNumber", request.e164.clone()),
            ("FriendlyName", request.tag.clone()),
        ];
        form.extend(webhook_fields(&request.webhooks));
        let number: IncomingPhoneNumber = http::send_json(
            self.request(reqwest::Method::POST, url).form(&form),
            parse_error,
        )
        .await?;
        Ok(number.into())
    }

    async fn configure_webhooks(
        &self,
        id: &str,
        webhooks: &WebhookConfig,
    ) -> CarrierResult<OwnedNumber> {
        let url = self.account_url(&format!("/IncomingPhoneNumbers/{}.json", path_id(id)?))?;
        let number: IncomingPhoneNumber = http::send_json(
            self.request(reqwest::Method::POST, url)
                .form(&webhook_fields(webhooks)),
            parse_error,
        )
        .await?;
        Ok(number.into())
    }

    async fn get(&self, id: &str) -> CarrierResult<Option<OwnedNumber>> {
        let url = self.account_url(&format!("/IncomingPhoneNumbers/{}.json", path_id(id)?))?;
        let result: CarrierResult<IncomingPhoneNumber> =
            http::send_json(self.request(reqwest::Method::GET, url), parse_error).await;
        Ok(none_if_not_found(result)?.map(Into::into))
    }

    async fn find_by_tag(&self, tag: &str) -> CarrierResult<Option<OwnedNumber>> {
        // Twilio filters FriendlyName by exact match; double-check anyway.
        Ok(self
            .list_numbers(("FriendlyName", tag))
            .await?
            .filter(|n| n.tag.as_deref() == Some(tag)))
    }

    async fn find_by_e164(&self, e164: &str) -> CarrierResult<Option<OwnedNumber>> {
        Ok(self
            .list_numbers(("PhoneNumber", e164))
            .await?
            .filter(|n| n.e164 == e164))
    }

    async fn release(&self, id: &str) -> CarrierResult<()> {
        let url = self.account_url(&format!("/IncomingPhoneNumbers/{}.json", path_id(id)?))?;
        match http::send(self.request(reqwest::Method::DELETE, url), parse_error).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn place_call(&self, call: &OutboundCall) -> CarrierResult<PlacedCall> {
        let url = self.account_url("/Calls.json")?;
        let mut form = vec![
            ("To", call.to.clone()),
            ("From", call.from.clone()),
            ("Url", call.answer_url.clone()),
            ("Method", "POST".to_owned()),
        ];
        if let Some(status) = &call.status_callback_url {
            form.push(("StatusCallback", status.clone()));
            form.push(("StatusCallbackMethod", "POST".to_owned()));
            for event in ["initiated", "ringing", "answered", "completed"] {
                form.push(("StatusCallbackEvent", event.to_owned()));
            }
        }
        let placed: TwilioCall = http::send_json(
            self.request(reqwest::Method::POST, url).form(&form),
            parse_error,
        )
        .await?;
        Ok(PlacedCall {
            id: placed.sid,
            status: placed.status.unwrap_or_else(|| "queued".to_owned()),
        })
    }

    async fn hang_up(&self, call_id: &str) -> CarrierResult<()> {
        let url = self.account_url(&format!("/Calls/{}.json", path_id(call_id)?))?;
        let result = http::send(
            self.request(reqwest::Method::POST, url)
                .form(&[("Status", "completed")]),
            parse_error,
        )
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(CarrierError::Permanent {
                code: Some(code), ..
            }) if code == CALL_NOT_IN_PROGRESS.to_string() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
