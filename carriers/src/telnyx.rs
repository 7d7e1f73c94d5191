//! Telnyx API v2 (`https://api.telnyx.com/v2`): bearer API key, JSON bodies, and Telnyx's
//! error body `{"errors":[{"code":"10009","title":"…","detail":"…"}]}`.
//!
//! Telnyx keeps call webhooks on the *connection* (Call Control application), not on each
//! number: configuring a number's webhooks assigns it to the configured connection, whose
//! webhook URL must be the gateway's `{base}/api/v1/webhooks/telnyx` (one-time account setup,
//! see the operator's docs). Numbers read back from Telnyx therefore report no per-number
//! voice URL (`OwnedNumber::voice_url == None`).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::json;
use switchboard_crds::CarrierKind;
use switchboard_crds::phone_number::Capability;

use crate::error::parse_retry_after;
use crate::http::{self, join, none_if_not_found, path_id};
use crate::{
    AvailableNumber, Carrier, CarrierError, CarrierResult, NumberQuery, OutboundCall, OwnedNumber,
    PlacedCall, PurchaseRequest, WebhookConfig,
};

/// Telnyx's production API base.
pub const DEFAULT_BASE_URL: &str = "https://api.telnyx.com/v2";

/// Telnyx error code for hanging up a call that has already ended.
const CALL_ALREADY_ENDED: &str = "90018";

/// `client_state` as Telnyx carries it on the wire: base64 of our text.
pub fn encode_client_state(state: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(state.as_bytes())
}

/// Our text back from a `client_state` Telnyx echoed (`None` if it is not base64 UTF-8).
pub fn decode_client_state(wire: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(wire)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// How to reach one Telnyx account.
#[derive(Clone)]
pub struct TelnyxConfig {
    /// API v2 key (sent as a bearer token).
    pub api_key: String,
    /// Call Control application (connection) id: numbers are assigned to it and calls are
    /// placed through it.
    pub connection_id: String,
    /// API base, overridable so tests point at a local server.
    pub base_url: String,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl TelnyxConfig {
    /// Production Telnyx with the default timeout.
    pub fn new(api_key: impl Into<String>, connection_id: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            connection_id: connection_id.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: http::DEFAULT_TIMEOUT,
        }
    }

    /// The same account at another API base (tests).
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

impl fmt::Debug for TelnyxConfig {
    // The API key is a secret: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelnyxConfig")
            .field("api_key", &"<redacted>")
            .field("connection_id", &self.connection_id)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A Telnyx API v2 client for one account.
#[derive(Clone, Debug)]
pub struct TelnyxClient {
    config: TelnyxConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct TelnyxErrorBody {
    #[serde(default)]
    errors: Vec<TelnyxErrorItem>,
}

#[derive(Deserialize)]
struct TelnyxErrorItem {
    code: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct TelnyxAvailableNumber {
    phone_number: String,
    #[serde(default)]
    region_information: Vec<RegionInformation>,
}

#[derive(Deserialize)]
struct RegionInformation {
    region_type: Option<String>,
    region_name: Option<String>,
}

#[derive(Deserialize)]
struct TelnyxPhoneNumber {
    id: String,
    phone_number: String,
    customer_reference: Option<String>,
}

impl From<TelnyxPhoneNumber> for OwnedNumber {
    fn from(n: TelnyxPhoneNumber) -> Self {
        OwnedNumber {
            id: n.id,
            e164: n.phone_number,
            tag: n.customer_reference.filter(|s| !s.is_empty()),
            voice_url: None,
            status_callback_url: None,
        }
    }
}

#[derive(Deserialize)]
struct NumberOrder {
    status: Option<String>,
    #[serde(default)]
    phone_numbers: Vec<NumberOrderItem>,
}

#[derive(Deserialize)]
struct NumberOrderItem {
    phone_number: String,
}

#[derive(Deserialize)]
struct TelnyxCall {
    call_control_id: String,
}

/// Classifies a Telnyx error response.
fn parse_error(status: u16, headers: &HeaderMap, body: &[u8]) -> CarrierError {
    let first = serde_json::from_slice::<TelnyxErrorBody>(body)
        .ok()
        .and_then(|b| b.errors.into_iter().next());
    let (code, message) = match first {
        Some(item) => {
            let message = match (item.title, item.detail) {
                (Some(t), Some(d)) => format!("{t}: {d}"),
                (Some(t), None) => t,
                (None, Some(d)) => d,
                (None, None) => format!("HTTP {status}"),
            };
            (item.code, message)
        }
        None => (None, format!("HTTP {status}")),
    };
    CarrierError::from_status(status, code, message, parse_retry_after(headers), false)
}

/// Region and locality from Telnyx's `region_information` list.
fn region_and_locality(regions: &[RegionInformation]) -> (Option<String>, Option<String>) {
    let find = |kind: &str| {
        regions
            .iter()
            .find(|r| r.region_type.as_deref() == Some(kind))
            .and_then(|r| r.region_name.clone())
    };
    (
        find("state"),
        find("rate_center").or_else(|| find("location")),
    )
}

/// Telnyx's feature name for a capability.
fn feature_name(capability: Capability) -> &'static str {
    match capability {
        Capability::Voice => "voice",
        Capability::Sms => "sms",
        Capability::Mms => "mms",
        Capability::Fax => "fax",
    }
}

impl TelnyxClient {
    /// A client for the account in `config`.
    pub fn new(config: TelnyxConfig) -> CarrierResult<Self> {
        let http = http::build_client(config.timeout)?;
        Ok(Self { config, http })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, join(&self.config.base_url, path))
            .bearer_auth(&self.config.api_key)
    }

    /// Sends a Call Control command (`answer`, `reject`, `streaming_start`, `transfer`, …) to
    /// the live call `call_control_id`: `POST /calls/{id}/actions/{action}` with `body`. The
    /// id goes into the path only if it is a safe carrier id (Telnyx's are `v3:` plus
    /// base64url), so a webhook's value can never reach another endpoint.
    pub async fn call_command(
        &self,
        call_control_id: &str,
        action: &str,
        body: &serde_json::Value,
    ) -> CarrierResult<()> {
        let path = format!(
            "/calls/{}/actions/{}",
            path_id(call_control_id)?,
            path_id(action)?
        );
        http::send(
            self.request(reqwest::Method::POST, &path).json(body),
            parse_error,
        )
        .await
        .map(drop)
    }

    /// The first owned number matching one `filter[...]` query parameter.
    async fn first_number(&self, filter: (&str, &str)) -> CarrierResult<Option<OwnedNumber>> {
        let list: Envelope<Vec<TelnyxPhoneNumber>> = http::send_json(
            self.request(reqwest::Method::GET, "/phone_numbers")
                .query(&[filter, ("page[size]", "20")]),
            parse_error,
        )
        .await?;
        Ok(list.data.into_iter().next().map(Into::into))
    }

    /// Numbers of orders tagged `tag`, with whether any order is still being fulfilled.
    async fn ordered_numbers(&self, tag: &str) -> CarrierResult<(Vec<String>, bool)> {
        let orders: Envelope<Vec<NumberOrder>> = http::send_json(
            self.request(reqwest::Method::GET, "/number_orders")
                .query(&[("filter[customer_reference]", tag)]),
            parse_error,
        )
        .await?;
        let pending = orders
            .data
            .iter()
            .any(|o| o.status.as_deref() == Some("pending"));
        let numbers = orders
            .data
            .into_iter()
            .flat_map(|o| o.phone_numbers)
            .map(|n| n.phone_number)
            .collect();
        Ok((numbers, pending))
    }

    /// Sets the tag and the connection on an owned number.
    async fn update_number(&self, id: &str, tag: Option<&str>) -> CarrierResult<OwnedNumber> {
        let mut body = json!({ "connection_id": self.config.connection_id });
        if let Some(tag) = tag {
            body["customer_reference"] = json!(tag);
        }
        let updated: Envelope<TelnyxPhoneNumber> = http::send_json(
            self.request(
                reqwest::Method::PATCH,
                &format!("/phone_numbers/{}", path_id(id)?),
            )
            .json(&body),
            parse_error,
        )
        .await?;
        Ok(updated.data.into())
    }
}

impl Carrier for TelnyxClient {
    fn kind(&self) -> CarrierKind {
        CarrierKind::Telnyx
    }

    async fn search(&self, query: &NumberQuery) -> CarrierResult<Vec<AvailableNumber>> {
        let mut params: Vec<(&str, String)> = vec![
            ("filter[country_code]", query.country.clone()),
            ("filter[limit]", query.limit.max(1).to_string()),
        ];
        if let Some(area_code) = &query.area_code {
            params.push(("filter[national_destination_code]", area_code.clone()));
        }
        for capability in &query.capabilities {
            params.push(("filter[features][]", feature_name(*capability).to_owned()));
        }
        let list: Envelope<Vec<TelnyxAvailableNumber>> = http::send_json(
            self.request(reqwest::Method::GET, "/available_phone_numbers")
                .query(&params),
            parse_error,
        )
        .await?;
        Ok(list
            .data
            .into_iter()
            .map(|n| {
                let (region, locality) = region_and_locality(&n.region_information);
                AvailableNumber {
                    e164: n.phone_number,
                    region,
                    locality,
                }
            })
            .collect())
    }

    /// Orders the number with `customer_reference` = tag on the order. Telnyx fulfils orders
    /// asynchronously: when the number is not yet on the account the call fails as
    /// [`CarrierError::Transient`], and the caller's next [`Carrier::find_by_tag`] adopts it.
    async fn buy(&self, request: &PurchaseRequest) -> CarrierResult<OwnedNumber> {
        let body = json!({
            "phone_numbers": [{ "phone_number": request.e164 }],
            "connection_id": self.config.connection_id,
            "customer_reference": request.tag,
        });
        let _order: Envelope<NumberOrder> = http::send_json(
            self.request(reqwest::Method::POST, "/number_orders")
                .json(&body),
            parse_error,
        )
        .await?;
        match self.find_by_e164(&request.e164).await? {
            Some(number) => self.update_number(&number.id, Some(&request.tag)).await,
            None => Err(CarrierError::Transient {
                message: format!("number order for {} is still pending", request.e164),
            }),
        }
    }

    async fn configure_webhooks(
        &self,
        id: &str,
        _webhooks: &WebhookConfig,
    ) -> CarrierResult<OwnedNumber> {
        // Webhook URLs live on the connection; routing the number to it is the per-number part.
        self.update_number(id, None).await
    }

    async fn get(&self, id: &str) -> CarrierResult<Option<OwnedNumber>> {
        let result: CarrierResult<Envelope<TelnyxPhoneNumber>> = http::send_json(
            self.request(
                reqwest::Method::GET,
                &format!("/phone_numbers/{}", path_id(id)?),
            ),
            parse_error,
        )
        .await;
        Ok(none_if_not_found(result)?.map(|e| e.data.into()))
    }

    /// Looks for a number tagged `tag`; failing that, for an order tagged `tag` (the tag on
    /// an order need not be copied onto its numbers). An order still being fulfilled is
    /// reported as [`CarrierError::Transient`] so the caller waits instead of buying again.
    async fn find_by_tag(&self, tag: &str) -> CarrierResult<Option<OwnedNumber>> {
        if let Some(number) = self
            .first_number(("filter[customer_reference]", tag))
            .await?
        {
            return Ok(Some(number));
        }
        let (numbers, pending) = self.ordered_numbers(tag).await?;
        for e164 in &numbers {
            if let Some(number) = self.find_by_e164(e164).await? {
                return self.update_number(&number.id, Some(tag)).await.map(Some);
            }
        }
        if pending || !numbers.is_empty() {
            return Err(CarrierError::Transient {
                message: "a number order with this idempotency key is still being fulfilled"
                    .to_owned(),
            });
        }
        Ok(None)
    }

    async fn find_by_e164(&self, e164: &str) -> CarrierResult<Option<OwnedNumber>> {
        Ok(self
            .first_number(("filter[phone_number]", e164))
            .await?
            .filter(|n| n.e164 == e164))
    }

    async fn release(&self, id: &str) -> CarrierResult<()> {
        let request = self.request(
            reqwest::Method::DELETE,
            &format!("/phone_numbers/{}", path_id(id)?),
        );
        match http::send(request, parse_error).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn place_call(&self, call: &OutboundCall) -> CarrierResult<PlacedCall> {
        let mut body = json!({
            "connection_id": self.config.connection_id,
            "to": call.to,
            "from": call.from,
            "webhook_url": call.answer_url,
        });
        if let Some(state) = &call.client_state {
            body["client_state"] = json!(encode_client_state(state));
        }
        let placed: Envelope<TelnyxCall> = http::send_json(
            self.request(reqwest::Method::POST, "/calls").json(&body),
            parse_error,
        )
        .await?;
        Ok(PlacedCall {
            id: placed.data.call_control_id,
            status: "queued".to_owned(),
        })
    }

    async fn hang_up(&self, call_id: &str) -> CarrierResult<()> {
        let path = format!("/calls/{}/actions/hangup", path_id(call_id)?);
        let request = self.request(reqwest::Method::POST, &path).json(&json!({}));
        match http::send(request, parse_error).await {
            Ok(_) => Ok(()),
            Err(CarrierError::Permanent {
                code: Some(code), ..
            }) if code == CALL_ALREADY_ENDED => Ok(()),
            Err(e) => Err(e),
        }
    }
}
