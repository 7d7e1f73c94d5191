//! The Telnyx client against a local server speaking Telnyx API v2: bearer key, JSON bodies,
//! `{"data": …}` envelopes and `{"errors": […]}` error bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use switchboard_carriers::{
    Carrier, CarrierError, NumberQuery, OutboundCall, PurchaseRequest, TelnyxClient, TelnyxConfig,
    WebhookConfig,
};

const KEY: &str = "KEY0123";
const CONNECTION: &str = "1684641123236054244";

type Pairs = Vec<(String, String)>;

#[derive(Default)]
struct Fake {
    /// method, path, query, JSON body
    requests: Mutex<Vec<(String, String, Pairs, Value)>>,
    /// Owned numbers (Telnyx phone number objects).
    numbers: Mutex<Vec<Value>>,
    /// Number orders.
    orders: Mutex<Vec<Value>>,
    /// When true, orders stay pending and the number does not appear on the account.
    slow_fulfilment: Mutex<bool>,
    fail: Mutex<Option<(u16, Value, Option<&'static str>)>>,
    delay: Mutex<Duration>,
}

type Shared = Arc<Fake>;

fn telnyx_error(code: &str, title: &str) -> Value {
    json!({"errors": [{"code": code, "title": title, "detail": format!("{title} (detail)"), "source": {"pointer": "/"}, "meta": {"url": "https://developers.telnyx.com/docs/overview/errors"}}]})
}

async fn gate(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    let delay = *fake.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let expected = format!("Bearer {KEY}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(telnyx_error("10009", "Authentication failed")),
            )
                .into_response(),
        );
    }
    let failure = fake.fail.lock().unwrap().clone();
    failure.map(|(status, body, retry_after)| {
        let mut response = (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
        if let Some(after) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", after.parse().unwrap());
        }
        response
    })
}

fn record(fake: &Fake, method: &str, path: &str, query: Pairs, body: Value) {
    fake.requests
        .lock()
        .unwrap()
        .push((method.into(), path.into(), query, body));
}

fn value_of<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn available(
    State(fake): State<Shared>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(&fake, "GET", "/available_phone_numbers", q, Value::Null);
    Json(json!({"data": [{
        "record_type": "available_phone_number", "phone_number": "+13125550001", "best_effort": false,
        "cost_information": {"currency": "USD", "monthly_cost": "1.00", "upfront_cost": "1.00"},
        "features": [{"name": "voice"}, {"name": "sms"}],
        "region_information": [{"region_type": "rate_center", "region_name": "CHICAGO"}, {"region_type": "state", "region_name": "IL"}]
    }], "metadata": {"total_results": 1}}))
    .into_response()
}

async fn order_create(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(&fake, "POST", "/number_orders", vec![], body.clone());
    let e164 = body["phone_numbers"][0]["phone_number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pending = *fake.slow_fulfilment.lock().unwrap();
    let order = json!({
        "id": "12ade33a-21c0-473b-b055-b3c836e1c292", "record_type": "number_order",
        "status": if pending { "pending" } else { "success" },
        "customer_reference": body["customer_reference"],
        "phone_numbers": [{"id": "dc8e4d67-33a0-4cbb-af74-7b58f05bd494", "phone_number": e164, "status": "pending"}],
        "requirements_met": true
    });
    fake.orders.lock().unwrap().push(order.clone());
    if !pending {
        let mut numbers = fake.numbers.lock().unwrap();
        let id = format!("14{:016}", numbers.len() + 1);
        // Telnyx does not copy the order's customer_reference onto the number.
        numbers.push(json!({"id": id, "record_type": "phone_number", "phone_number": e164,
                            "status": "active", "connection_id": body["connection_id"], "customer_reference": null}));
    }
    Json(json!({"data": order})).into_response()
}

async fn order_list(
    State(fake): State<Shared>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    let tag = value_of(&q, "filter[customer_reference]").map(str::to_owned);
    let orders: Vec<Value> = fake
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|o| tag.as_deref().is_none_or(|t| o["customer_reference"] == t))
        .cloned()
        .collect();
    Json(json!({"data": orders})).into_response()
}

async fn numbers_list(
    State(fake): State<Shared>,
    Query(q): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(&fake, "GET", "/phone_numbers", q.clone(), Value::Null);
    let numbers: Vec<Value> = fake
        .numbers
        .lock()
        .unwrap()
        .iter()
        .filter(|n| {
            value_of(&q, "filter[phone_number]").is_none_or(|p| n["phone_number"] == p)
                && value_of(&q, "filter[customer_reference]")
                    .is_none_or(|t| n["customer_reference"] == t)
        })
        .cloned()
        .collect();
    Json(json!({"data": numbers})).into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(telnyx_error("10005", "Resource not found")),
    )
        .into_response()
}

async fn number_get(
    State(fake): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    match fake
        .numbers
        .lock()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id.as_str())
    {
        Some(n) => Json(json!({"data": n})).into_response(),
        None => not_found(),
    }
}

async fn number_patch(
    State(fake): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(
        &fake,
        "PATCH",
        &format!("/phone_numbers/{id}"),
        vec![],
        body.clone(),
    );
    let mut numbers = fake.numbers.lock().unwrap();
    match numbers.iter_mut().find(|n| n["id"] == id.as_str()) {
        Some(n) => {
            for (k, v) in body.as_object().unwrap() {
                n[k] = v.clone();
            }
            Json(json!({"data": n})).into_response()
        }
        None => not_found(),
    }
}

async fn number_delete(
    State(fake): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    let mut numbers = fake.numbers.lock().unwrap();
    let Some(pos) = numbers.iter().position(|n| n["id"] == id.as_str()) else {
        return not_found();
    };
    let removed = numbers.remove(pos);
    Json(json!({"data": removed})).into_response()
}

async fn dial(State(fake): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(&fake, "POST", "/calls", vec![], body);
    Json(json!({"data": {"call_control_id": "v3:abc-123_XYZ", "call_leg_id": "leg", "call_session_id": "sess",
                          "is_alive": false, "record_type": "call"}}))
    .into_response()
}

async fn hangup(
    State(fake): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(
        &fake,
        "POST",
        &format!("/calls/{id}/actions/hangup"),
        vec![],
        Value::Null,
    );
    if id.starts_with("v3:ended") {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(telnyx_error("90018", "Call has already ended")),
        )
            .into_response();
    }
    Json(json!({"data": {"result": "ok"}})).into_response()
}

async fn command(
    State(fake): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(
        &fake,
        "POST",
        &format!("/calls/{id}/actions/{action}"),
        vec![],
        body,
    );
    Json(json!({"data": {"result": "ok"}})).into_response()
}

async fn start() -> (TelnyxClient, Shared, String) {
    let fake: Shared = Arc::default();
    let app = Router::new()
        .route("/v2/available_phone_numbers", get(available))
        .route("/v2/number_orders", post(order_create).get(order_list))
        .route("/v2/phone_numbers", get(numbers_list))
        .route(
            "/v2/phone_numbers/{id}",
            get(number_get).patch(number_patch).delete(number_delete),
        )
        .route("/v2/calls", post(dial))
        .route("/v2/calls/{id}/actions/hangup", post(hangup))
        .route("/v2/calls/{id}/actions/{action}", post(command))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = TelnyxClient::new(
        TelnyxConfig::new(KEY, CONNECTION)
            .with_base_url(&base)
            .with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    (client, fake, base)
}

fn purchase(e164: &str, tag: &str) -> PurchaseRequest {
    PurchaseRequest {
        e164: e164.into(),
        tag: tag.into(),
        webhooks: WebhookConfig {
            voice_url: "https://gw.example.com/api/v1/webhooks/telnyx".into(),
            status_callback_url: None,
        },
    }
}

#[tokio::test]
async fn search_uses_telnyx_filters() {
    let (client, fake, _) = start().await;
    let mut query = NumberQuery::voice("US");
    query.area_code = Some("312".into());
    let found = client.search(&query).await.unwrap();
    assert_eq!(found[0].e164, "+13125550001");
    assert_eq!(found[0].region.as_deref(), Some("IL"));
    assert_eq!(found[0].locality.as_deref(), Some("CHICAGO"));
    let requests = fake.requests.lock().unwrap();
    let q = &requests[0].2;
    assert_eq!(value_of(q, "filter[country_code]"), Some("US"));
    assert_eq!(
        value_of(q, "filter[national_destination_code]"),
        Some("312")
    );
    assert_eq!(value_of(q, "filter[features][]"), Some("voice"));
    assert_eq!(value_of(q, "filter[limit]"), Some("5"));
}

#[tokio::test]
async fn buy_orders_with_customer_reference_and_tags_the_number() {
    let (client, fake, _) = start().await;
    let bought = client
        .buy(&purchase("+13125550001", "sb-key-9"))
        .await
        .unwrap();
    assert_eq!(bought.e164, "+13125550001");
    assert_eq!(bought.tag.as_deref(), Some("sb-key-9"));
    {
        let requests = fake.requests.lock().unwrap();
        let order = requests.iter().find(|r| r.1 == "/number_orders").unwrap();
        assert_eq!(order.3["customer_reference"], "sb-key-9");
        assert_eq!(order.3["connection_id"], CONNECTION);
        assert_eq!(order.3["phone_numbers"][0]["phone_number"], "+13125550001");
    }
    assert_eq!(
        client.find_by_tag("sb-key-9").await.unwrap().unwrap().id,
        bought.id
    );
    assert_eq!(
        client.get(&bought.id).await.unwrap().unwrap().e164,
        "+13125550001"
    );
    client.release(&bought.id).await.unwrap();
    assert_eq!(client.get(&bought.id).await.unwrap(), None);
    client.release(&bought.id).await.unwrap();
}

#[tokio::test]
async fn an_order_whose_number_lost_its_tag_is_still_adopted() {
    let (client, _fake, base) = start().await;
    // The order went through (placed here directly), but the operator died before tagging
    // the number itself, and Telnyx does not copy the order's reference onto the number.
    let body = json!({"phone_numbers": [{"phone_number": "+13125550002"}], "connection_id": CONNECTION, "customer_reference": "sb-key-2"});
    reqwest::Client::new()
        .post(format!("{base}/number_orders"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let adopted = client.find_by_tag("sb-key-2").await.unwrap().unwrap();
    assert_eq!(adopted.e164, "+13125550002");
    assert_eq!(adopted.tag.as_deref(), Some("sb-key-2"));
    // The tag is now on the number, so the next lookup finds it directly.
    assert_eq!(
        client.find_by_tag("sb-key-2").await.unwrap().unwrap().id,
        adopted.id
    );
}

#[test]
fn debug_output_never_shows_the_api_key() {
    let config = TelnyxConfig::new(KEY, CONNECTION);
    assert!(!format!("{config:?}").contains(KEY));
}

#[tokio::test]
async fn a_pending_order_is_transient_not_absent() {
    let (client, fake, _) = start().await;
    *fake.slow_fulfilment.lock().unwrap() = true;
    let err = client
        .buy(&purchase("+13125550003", "sb-key-3"))
        .await
        .unwrap_err();
    assert!(matches!(err, CarrierError::Transient { .. }), "{err:?}");
    // Looking the tag up must not say "absent" (which would make the caller buy again).
    let err = client.find_by_tag("sb-key-3").await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(client.find_by_tag("never-used").await.unwrap(), None);
}

#[tokio::test]
async fn errors_are_classified_from_telnyx_bodies() {
    let (client, fake, base) = start().await;
    let wrong =
        TelnyxClient::new(TelnyxConfig::new("nope", CONNECTION).with_base_url(base)).unwrap();
    let err = wrong.search(&NumberQuery::voice("US")).await.unwrap_err();
    assert!(
        matches!(err, CarrierError::BadCredentials { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Authentication failed"));

    *fake.fail.lock().unwrap() = Some((429, telnyx_error("10011", "Too many requests"), Some("2")));
    let err = client.search(&NumberQuery::voice("US")).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));

    *fake.fail.lock().unwrap() = Some((502, telnyx_error("10007", "Unexpected error"), None));
    assert!(matches!(
        client.get("1").await.unwrap_err(),
        CarrierError::Transient { .. }
    ));

    *fake.fail.lock().unwrap() = Some((422, telnyx_error("10015", "Bad request"), None));
    let err = client.get("1").await.unwrap_err();
    assert!(
        matches!(&err, CarrierError::Permanent { status: Some(422), code: Some(c), .. } if c == "10015")
    );

    *fake.fail.lock().unwrap() = None;
    *fake.delay.lock().unwrap() = Duration::from_secs(2);
    let err = client.get("1").await.unwrap_err();
    assert!(matches!(err, CarrierError::Transient { .. }), "{err:?}");
}

#[tokio::test]
async fn dial_encodes_client_state_and_hangup_tolerates_ended_calls() {
    let (client, fake, _) = start().await;
    let placed = client
        .place_call(&OutboundCall {
            from: "+13125550001".into(),
            to: "+13125559999".into(),
            answer_url: "https://gw.example.com/api/v1/webhooks/telnyx".into(),
            status_callback_url: None,
            client_state: Some("attempt-42".into()),
        })
        .await
        .unwrap();
    assert_eq!(placed.id, "v3:abc-123_XYZ");
    client.hang_up(&placed.id).await.unwrap();
    client.hang_up("v3:ended-1").await.unwrap();
    let requests = fake.requests.lock().unwrap();
    let dial = &requests[0].3;
    assert_eq!(dial["connection_id"], CONNECTION);
    assert_eq!(
        dial["webhook_url"],
        "https://gw.example.com/api/v1/webhooks/telnyx"
    );
    assert_eq!(dial["client_state"], "YXR0ZW1wdC00Mg==");
}

#[tokio::test]
async fn call_commands_post_to_the_call_and_refuse_unsafe_ids() {
    let (client, fake, _) = start().await;
    client
        .call_command(
            "v3:abc-123_XYZ",
            "answer",
            &json!({"stream_url": "wss://gw/media"}),
        )
        .await
        .unwrap();
    let err = client
        .call_command("v3:../../phone_numbers", "answer", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, CarrierError::Permanent { .. }), "{err:?}");
    let requests = fake.requests.lock().unwrap();
    assert_eq!(requests.len(), 1, "the unsafe id never left the client");
    assert_eq!(requests[0].1, "/calls/v3:abc-123_XYZ/actions/answer");
    assert_eq!(requests[0].3["stream_url"], "wss://gw/media");
}
