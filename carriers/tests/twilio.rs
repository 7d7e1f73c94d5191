//! The Twilio client against a local server speaking Twilio's REST wire format: Basic auth,
//! form-encoded bodies, `.json` paths, Twilio's error body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use switchboard_carriers::{
    Carrier, CarrierError, NumberQuery, OutboundCall, PurchaseRequest, TwilioClient, TwilioConfig,
    WebhookConfig,
};
use switchboard_crds::phone_number::Capability;

const SID: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "secret-token";

type Pairs = Vec<(String, String)>;

/// A scripted failure: status, JSON body, optional Retry-After.
type Failure = (u16, Value, Option<&'static str>);

#[derive(Default)]
struct Fake {
    /// Every request: method, path, query pairs, form pairs.
    requests: Mutex<Vec<(String, String, Pairs, Pairs)>>,
    numbers: Mutex<Vec<Value>>,
    fail: Mutex<Option<Failure>>,
    delay: Mutex<Duration>,
}

type Shared = Arc<Fake>;

fn twilio_error(status: u16, code: i64, message: &str) -> Value {
    json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status})
}

/// Basic-auth check, scripted failures and delays shared by every route.
async fn gate(fake: &Fake, headers: &HeaderMap) -> Option<Response> {
    let delay = *fake.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(twilio_error(401, 20003, "Authenticate")),
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

fn record(fake: &Fake, method: &str, path: String, query: Pairs, form: Pairs) {
    fake.requests
        .lock()
        .unwrap()
        .push((method.to_owned(), path, query, form));
}

fn value_of<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn search(
    State(fake): State<Shared>,
    Path((sid, country)): Path<(String, String)>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(
        &fake,
        "GET",
        format!("/Accounts/{sid}/AvailablePhoneNumbers/{country}"),
        query.clone(),
        vec![],
    );
    let area = value_of(&query, "AreaCode").unwrap_or("415").to_owned();
    Json(json!({
        "available_phone_numbers": [
            {"friendly_name": "(415) 555-1234", "phone_number": format!("+1{area}5551234"), "lata": "722",
             "locality": "San Francisco", "rate_center": "SNFC", "latitude": "37.77", "longitude": "-122.41",
             "region": "CA", "postal_code": "94103", "iso_country": "US", "address_requirements": "none",
             "beta": false, "capabilities": {"voice": true, "SMS": true, "MMS": true, "fax": false}}
        ],
        "uri": "/2010-04-01/Accounts/AC/AvailablePhoneNumbers/US/Local.json"
    }))
    .into_response()
}

fn number_json(sid: &str, e164: &str, form: &Pairs) -> Value {
    json!({
        "sid": sid, "account_sid": SID, "phone_number": e164,
        "friendly_name": value_of(form, "FriendlyName").unwrap_or(e164),
        "voice_url": value_of(form, "VoiceUrl"), "voice_method": "POST",
        "status_callback": value_of(form, "StatusCallback"),
        "capabilities": {"voice": true}, "api_version": "2010-04-01"
    })
}

async fn numbers_create(
    State(fake): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(
        &fake,
        "POST",
        format!("/Accounts/{sid}/IncomingPhoneNumbers"),
        vec![],
        form.clone(),
    );
    let e164 = value_of(&form, "PhoneNumber")
        .unwrap_or_default()
        .to_owned();
    let mut numbers = fake.numbers.lock().unwrap();
    let number = number_json(&format!("PN{:032}", numbers.len() + 1), &e164, &form);
    numbers.push(number.clone());
    (StatusCode::CREATED, Json(number)).into_response()
}

async fn numbers_list(
    State(fake): State<Shared>,
    Path(sid): Path<String>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(
        &fake,
        "GET",
        format!("/Accounts/{sid}/IncomingPhoneNumbers"),
        query.clone(),
        vec![],
    );
    let numbers = fake.numbers.lock().unwrap();
    let matching: Vec<Value> = numbers
        .iter()
        .filter(|n| {
            value_of(&query, "FriendlyName").is_none_or(|f| n["friendly_name"] == f)
                && value_of(&query, "PhoneNumber").is_none_or(|p| n["phone_number"] == p)
        })
        .cloned()
        .collect();
    Json(json!({"incoming_phone_numbers": matching, "page": 0, "page_size": 20})).into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(twilio_error(
            404,
            20404,
            "The requested resource was not found",
        )),
    )
        .into_response()
}

async fn number_get(
    State(fake): State<Shared>,
    Path((_sid, pn)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    let pn = pn.trim_end_matches(".json").to_owned();
    let numbers = fake.numbers.lock().unwrap();
    match numbers.iter().find(|n| n["sid"] == pn.as_str()) {
        Some(n) => Json(n.clone()).into_response(),
        None => not_found(),
    }
}

async fn number_update(
    State(fake): State<Shared>,
    Path((_sid, pn)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    let pn = pn.trim_end_matches(".json").to_owned();
    record(
        &fake,
        "POST",
        format!("/IncomingPhoneNumbers/{pn}"),
        vec![],
        form.clone(),
    );
    let mut numbers = fake.numbers.lock().unwrap();
    match numbers.iter_mut().find(|n| n["sid"] == pn.as_str()) {
        Some(n) => {
            n["voice_url"] = json!(value_of(&form, "VoiceUrl"));
            n["status_callback"] = json!(value_of(&form, "StatusCallback"));
            Json(n.clone()).into_response()
        }
        None => not_found(),
    }
}

async fn number_delete(
    State(fake): State<Shared>,
    Path((_sid, pn)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    let pn = pn.trim_end_matches(".json").to_owned();
    record(
        &fake,
        "DELETE",
        format!("/IncomingPhoneNumbers/{pn}"),
        vec![],
        vec![],
    );
    let mut numbers = fake.numbers.lock().unwrap();
    let before = numbers.len();
    numbers.retain(|n| n["sid"] != pn.as_str());
    if numbers.len() == before {
        not_found()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

async fn calls_create(
    State(fake): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(
        &fake,
        "POST",
        format!("/Accounts/{sid}/Calls"),
        vec![],
        form.clone(),
    );
    (
        StatusCode::CREATED,
        Json(json!({"sid": "CA00000000000000000000000000000001", "status": "queued",
                    "direction": "outbound-api", "to": value_of(&form, "To"), "from": value_of(&form, "From")})),
    )
        .into_response()
}

async fn call_update(
    State(fake): State<Shared>,
    Path((_sid, call)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    if let Some(r) = gate(&fake, &headers).await {
        return r;
    }
    record(&fake, "POST", format!("/Calls/{call}"), vec![], form);
    if call.starts_with("CAended") {
        return (
            StatusCode::BAD_REQUEST,
            Json(twilio_error(
                400,
                21220,
                "Call is not in-progress. Cannot redirect.",
            )),
        )
            .into_response();
    }
    Json(json!({"sid": call.trim_end_matches(".json"), "status": "completed"})).into_response()
}

async fn start() -> (TwilioClient, Shared, String) {
    let fake: Shared = Arc::default();
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/AvailablePhoneNumbers/{country}/Local.json",
            get(search),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
            post(numbers_create).get(numbers_list),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers/{pn}",
            get(number_get).post(number_update).delete(number_delete),
        )
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(calls_create))
        .route("/2010-04-01/Accounts/{sid}/Calls/{call}", post(call_update))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/2010-04-01", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = TwilioClient::new(
        TwilioConfig::new(SID, TOKEN)
            .with_base_url(&base)
            .with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    (client, fake, base)
}

fn webhooks() -> WebhookConfig {
    WebhookConfig {
        voice_url: "https://gw.example.com/api/v1/webhooks/twilio/voice".into(),
        status_callback_url: Some("https://gw.example.com/api/v1/webhooks/twilio/status".into()),
    }
}

#[tokio::test]
async fn search_sends_twilio_query_parameters_and_parses_numbers() {
    let (client, fake, _) = start().await;
    let query = NumberQuery {
        country: "US".into(),
        area_code: Some("312".into()),
        capabilities: vec![Capability::Voice, Capability::Sms],
        limit: 3,
    };
    let found = client.search(&query).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].e164, "+13125551234");
    assert_eq!(found[0].region.as_deref(), Some("CA"));
    let requests = fake.requests.lock().unwrap();
    let (_, path, q, _) = &requests[0];
    assert_eq!(path, &format!("/Accounts/{SID}/AvailablePhoneNumbers/US"));
    assert_eq!(value_of(q, "AreaCode"), Some("312"));
    assert_eq!(value_of(q, "VoiceEnabled"), Some("true"));
    assert_eq!(value_of(q, "SmsEnabled"), Some("true"));
    assert_eq!(value_of(q, "PageSize"), Some("3"));
}

#[tokio::test]
async fn buy_tags_configures_and_is_found_again_by_tag() {
    let (client, fake, _) = start().await;
    let bought = client
        .buy(&PurchaseRequest {
            e164: "+14155551234".into(),
            tag: "sb-key-1".into(),
            webhooks: webhooks(),
        })
        .await
        .unwrap();
    assert!(bought.id.starts_with("PN"));
    assert_eq!(bought.tag.as_deref(), Some("sb-key-1"));
    assert!(bought.webhooks_match(&webhooks()));
    {
        let requests = fake.requests.lock().unwrap();
        let (_, _, _, form) = &requests[0];
        assert_eq!(value_of(form, "PhoneNumber"), Some("+14155551234"));
        assert_eq!(value_of(form, "FriendlyName"), Some("sb-key-1"));
        assert_eq!(value_of(form, "VoiceMethod"), Some("POST"));
        assert_eq!(value_of(form, "StatusCallbackMethod"), Some("POST"));
    }

    let adopted = client.find_by_tag("sb-key-1").await.unwrap().unwrap();
    assert_eq!(adopted.id, bought.id);
    assert_eq!(client.find_by_tag("other").await.unwrap(), None);
    let imported = client.find_by_e164("+14155551234").await.unwrap().unwrap();
    assert_eq!(imported.id, bought.id);
    assert_eq!(client.get(&bought.id).await.unwrap(), Some(bought.clone()));

    let moved = WebhookConfig {
        voice_url: "https://new.example.com/v".into(),
        status_callback_url: None,
    };
    let updated = client.configure_webhooks(&bought.id, &moved).await.unwrap();
    assert_eq!(
        updated.voice_url.as_deref(),
        Some("https://new.example.com/v")
    );

    client.release(&bought.id).await.unwrap();
    assert_eq!(client.get(&bought.id).await.unwrap(), None);
    // Releasing again is not an error: the number is gone either way.
    client.release(&bought.id).await.unwrap();
}

#[tokio::test]
async fn wrong_token_is_bad_credentials() {
    let (_, _, base) = start().await;
    let client = TwilioClient::new(TwilioConfig::new(SID, "wrong").with_base_url(base)).unwrap();
    let err = client.search(&NumberQuery::voice("US")).await.unwrap_err();
    assert!(
        matches!(err, CarrierError::BadCredentials { .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "BadCredentials");
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let (client, fake, _) = start().await;
    *fake.fail.lock().unwrap() = Some((
        429,
        twilio_error(429, 20429, "Too Many Requests"),
        Some("7"),
    ));
    let err = client.search(&NumberQuery::voice("US")).await.unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn server_errors_are_transient() {
    let (client, fake, _) = start().await;
    *fake.fail.lock().unwrap() = Some((
        500,
        json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
        None,
    ));
    let err = client.find_by_tag("x").await.unwrap_err();
    assert!(matches!(err, CarrierError::Transient { .. }), "{err:?}");
    // A 5xx without Twilio's JSON body is classified the same way.
    *fake.fail.lock().unwrap() = Some((503, json!("upstream down"), None));
    let err = client.find_by_tag("x").await.unwrap_err();
    assert!(err.is_retryable());
}

#[tokio::test]
async fn slow_responses_time_out_as_transient() {
    let (client, fake, _) = start().await;
    *fake.delay.lock().unwrap() = Duration::from_secs(2);
    let err = client.get("PN1").await.unwrap_err();
    assert!(matches!(err, CarrierError::Transient { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn unavailable_number_is_nothing_available() {
    let (client, fake, _) = start().await;
    *fake.fail.lock().unwrap() = Some((
        400,
        twilio_error(400, 21422, "PhoneNumber is not available"),
        None,
    ));
    let err = client
        .buy(&PurchaseRequest {
            e164: "+14155550000".into(),
            tag: "k".into(),
            webhooks: webhooks(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, CarrierError::NothingAvailable { .. }),
        "{err:?}"
    );
    // Any other 4xx is permanent and keeps Twilio's code.
    *fake.fail.lock().unwrap() = Some((400, twilio_error(400, 21212, "Invalid From"), None));
    let err = client.get("PN1").await.unwrap_err();
    assert!(
        matches!(&err, CarrierError::Permanent { status: Some(400), code: Some(c), .. } if c == "21212"),
        "{err:?}"
    );
}

#[tokio::test]
async fn calls_are_placed_with_status_events_and_hung_up() {
    let (client, fake, _) = start().await;
    let placed = client
        .place_call(&OutboundCall {
            from: "+14155551234".into(),
            to: "+14155559876".into(),
            answer_url: "https://gw.example.com/api/v1/webhooks/twilio/voice".into(),
            status_callback_url: Some(
                "https://gw.example.com/api/v1/webhooks/twilio/status".into(),
            ),
            client_state: None,
        })
        .await
        .unwrap();
    assert!(placed.id.starts_with("CA"));
    assert_eq!(placed.status, "queued");
    client.hang_up(&placed.id).await.unwrap();
    // A call that already ended (Twilio 21220) hangs up fine.
    client.hang_up("CAended1").await.unwrap();
    let requests = fake.requests.lock().unwrap();
    let (_, _, _, form) = &requests[0];
    let events: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
    assert_eq!(
        value_of(form, "Url"),
        Some("https://gw.example.com/api/v1/webhooks/twilio/voice")
    );
    let (_, _, _, hangup) = &requests[1];
    assert_eq!(value_of(hangup, "Status"), Some("completed"));
}

#[tokio::test]
async fn ids_that_could_escape_the_path_are_refused_locally() {
    let (client, fake, _) = start().await;
    let err = client.release("../Calls").await.unwrap_err();
    assert!(matches!(err, CarrierError::Permanent { status: None, .. }));
    assert!(fake.requests.lock().unwrap().is_empty());
}
