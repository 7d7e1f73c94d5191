//! End to end in standalone mode: the gateway with its embedded runtime, SQLite in a temporary
//! folder and the sandbox carrier, started in-process on 127.0.0.1:0 and driven over real
//! HTTP and WebSockets by the `switchboard` CLI's library (signup, number purchase, the
//! simulated Twilio call).
//!
//! sign up → buy a sandbox number → a simulated inbound call with speech-like audio (the
//! builtin echo agent answers) → the call record and usage appear through the API → the free
//! plan's call limit is reached → the next call is refused politely.

use std::net::SocketAddr;
use std::path::Path;

use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_cli::call::{self, CallError, CallOptions};
use switchboard_cli::client::types::BuyNumber;
use switchboard_cli::commands::Context;
use switchboard_cli::progress::Progress;
use switchboard_cli::session::SessionStore;
use switchboard_cli::twiml::{self, Answer};
use switchboard_cli::webhook::{InboundCall, WebhookTarget};
use switchboard_gateway::Config;
use switchboard_gateway::calls::admission::{OVER_LIMIT_MESSAGE, UNKNOWN_NUMBER_MESSAGE};
use switchboard_gateway::standalone::{self, Running, StandaloneArgs};

const PASSWORD: &str = "correct horse battery staple";
const CALLER: &str = "+15551234567";

#[derive(Parser)]
struct GatewayFlags {
    #[command(flatten)]
    config: Config,
}

/// Starts the standalone platform on loopback (`port` 0: any) with its data in `data_dir`.
async fn start(data_dir: &Path, port: u16) -> Running {
    start_configured(data_dir, port, |_| {}).await
}

/// [`start`], with `adjust` applied to the gateway's configuration first.
async fn start_configured(data_dir: &Path, port: u16, adjust: impl FnOnce(&mut Config)) -> Running {
    let mut config = GatewayFlags::try_parse_from(["switchboard-gateway"])
        .unwrap()
        .config;
    adjust(&mut config);
    // Whatever the environment says (CI sets DATABASE_URL for other tests), this test runs
    // on the standalone default: SQLite in the data folder.
    config.database_url = switchboard_gateway::config::DEFAULT_DATABASE_URL.to_owned();
    config.listen = SocketAddr::from(([127, 0, 0, 1], port));
    config.metrics_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.public_url = "http://localhost:8080".to_owned();
    let args = StandaloneArgs {
        data_dir: data_dir.to_owned(),
        runtime_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    standalone::start(&args, config).await.unwrap()
}

fn cli(running: &Running, home: &Path) -> Context {
    Context::new(
        running.public_url(),
        SessionStore::at(home.join("session.json")),
        None,
    )
    .unwrap()
}

fn call_options(running: &Running, to: &str, audio: Vec<i16>) -> CallOptions {
    CallOptions {
        webhook: WebhookTarget {
            base_url: running.public_url().to_owned(),
            signed_base_url: running.public_url().to_owned(),
            auth_token: running.sandbox_auth_token().unwrap().to_owned(),
        },
        from: CALLER.to_owned(),
        to: to.to_owned(),
        account_sid: None,
        caller_audio: audio,
        trailing_silence_seconds: 1.0,
        idle_seconds: 1.5,
        max_seconds: 15.0,
        media_url: None,
        // As Twilio does for numbers with a status callback (the sandbox configures one).
        status_callback: true,
    }
}

/// POSTs a voice webhook signed by the sandbox carrier itself and parses the TwiML.
async fn ring(running: &Running, to: &str) -> Answer {
    let url = format!("{}/api/v1/webhooks/twilio/voice", running.public_url());
    let params = InboundCall::new(CALLER, to, None).voice_parameters();
    let sandbox = running.state.sandbox.as_ref().unwrap();
    let signature = sandbox.sign_webhook(&url, &params);
    let response = reqwest::Client::new()
        .post(&url)
        .header(
            switchboard_carriers::signatures::TWILIO_SIGNATURE_HEADER,
            signature,
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    twiml::parse(&response.text().await.unwrap()).unwrap()
}

async fn api(
    running: &Running,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", running.public_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn access_token(home: &Path) -> String {
    let session: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("session.json")).unwrap()).unwrap();
    session["access_token"].as_str().unwrap().to_owned()
}

/// Waits until the call record shows the call ended with its turns counted (the carrier's
/// status callback and the runtime's events arrive independently).
async fn ended_call(running: &Running, token: &str, tenant: &str) -> Value {
    for _ in 0..50 {
        let (status, page) = api(
            running,
            reqwest::Method::GET,
            &format!("/api/v1/tenants/{tenant}/calls"),
            token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let calls = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(call) = calls
            .first()
            .filter(|c| !c["endedAt"].is_null() && !c["turns"].is_null())
        {
            assert_eq!(calls.len(), 1, "one call was placed: {page}");
            return call.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the call record never showed the end of the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_number_call_usage_and_the_free_plan_limit() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let running = start(data.path(), 0).await;
    let mut cli = cli(&running, home.path());

    // Sign up: a tenant on the free plan.
    let signed_up = cli
        .signup("owner@example.com", PASSWORD, "Ada Owner", "Acme Voice")
        .await
        .unwrap();
    let tenant = signed_up.json["tenant"]["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant_id = signed_up.json["tenant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(signed_up.json["tenant"]["plan"], "free");

    // Buy a sandbox number through the API; it routes at once.
    let bought = cli
        .client()
        .buy_number(
            &tenant,
            &BuyNumber {
                area_code: Some("555".to_owned()),
                ..BuyNumber::default()
            },
        )
        .await
        .unwrap()
        .json;
    let number = bought["e164"].as_str().unwrap().to_owned();
    assert!(switchboard_carriers::sandbox::is_sandbox_number(&number));
    assert_eq!(bought["status"], "Ready");
    let listed = cli.client().numbers(&tenant).await.unwrap().json;
    assert_eq!(listed["items"][0]["e164"], number.as_str());
    let sandbox = running.state.sandbox.clone().unwrap();
    assert_eq!(sandbox.purchase_count(), 1);
    assert_eq!(
        sandbox.owned_numbers()[0].voice_url.as_deref(),
        Some(format!("{}/api/v1/webhooks/twilio/voice", running.public_url()).as_str())
    );

    // The free plan has one number: a second purchase is refused and nothing is bought.
    let token = access_token(home.path());
    let (status, body) = api(
        &running,
        reqwest::Method::POST,
        &format!("/api/v1/tenants/{tenant}/numbers"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "limit_exceeded");
    assert_eq!(sandbox.purchase_count(), 1);

    // A simulated inbound call: signed webhook, TwiML, media WebSocket, 1.2 s of speech-like
    // audio then silence at real-time pace; the echo agent greets and answers the turn.
    let options = call_options(&running, &number, switchboard_cli::audio::speech_like(1.2));
    let report = call::run(&options, None, &Progress::new(false))
        .await
        .unwrap();
    assert!(
        report.stream_parameters.iter().any(|p| p == "callToken"),
        "{:?}",
        report.stream_parameters
    );
    assert!(report.agent_messages > 0, "the agent sent no audio");
    assert!(
        report.agent_audio_ms >= 200,
        "agent audio: {} ms",
        report.agent_audio_ms
    );
    assert!(
        report.response_latency_ms.is_some(),
        "the agent did not answer after the caller's turn: {:?}",
        report.timeline
    );

    // The call record and the usage appear through the API.
    let record = ended_call(&running, &token, &tenant).await;
    assert_eq!(record["to"], number.as_str());
    assert_eq!(record["from"], CALLER);
    assert_eq!(record["carrier"], "sandbox");
    assert_eq!(record["carrierCallId"], report.call_sid.as_str());
    assert_eq!(record["direction"], "inbound");
    assert!(record["turns"].as_i64().unwrap_or(0) >= 1, "{record}");
    let (status, usage) = api(
        &running,
        reqwest::Method::GET,
        &format!("/api/v1/tenants/{tenant}/usage"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(usage["usage"]["callCount"], 1, "{usage}");
    assert!(
        usage["usage"]["callMinutes"].as_i64().unwrap_or(0) >= 1,
        "{usage}"
    );
    let limit = usage["limits"]["monthlyCalls"].as_i64().unwrap();
    assert_eq!(limit, 50, "the free plan's monthly calls");

    // Use up the rest of the month's calls through the same admission path the webhook uses
    // (49 more real calls would take minutes).
    let admitted = &running.state;
    for i in 1..limit {
        let outcome = switchboard_gateway::usage::admit_call(
            &admitted.store,
            &admitted.plan_limits,
            &tenant_id,
            "free",
            &format!("e2e:{i}"),
        )
        .await
        .unwrap();
        assert_eq!(outcome, switchboard_gateway::usage::Admission::Admitted);
    }
    let (_, usage) = api(
        &running,
        reqwest::Method::GET,
        &format!("/api/v1/tenants/{tenant}/usage"),
        &token,
        None,
    )
    .await;
    assert_eq!(usage["usage"]["callCount"], limit);

    // The next call is refused politely: spoken sentence, hang-up, no media stream.
    match call::run(&options, None, &Progress::new(false)).await {
        Err(CallError::Refused(refusal)) => {
            assert_eq!(refusal.said, vec![OVER_LIMIT_MESSAGE.to_owned()]);
            assert!(refusal.hung_up);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The same with a webhook signed by the sandbox carrier itself.
    let Answer::Refused(refusal) = ring(&running, &number).await else {
        panic!("expected a refusal");
    };
    assert_eq!(refusal.said, vec![OVER_LIMIT_MESSAGE.to_owned()]);
    let (_, usage) = api(
        &running,
        reqwest::Method::GET,
        &format!("/api/v1/tenants/{tenant}/usage"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        usage["usage"]["callCount"], limit,
        "refused calls are not counted"
    );

    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_api_checks_input_roles_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let running = start(data.path(), 0).await;
    let mut cli = cli(&running, home.path());
    let signed_up = cli
        .signup("admin@example.com", PASSWORD, "Bo Admin", "Numbers Co")
        .await
        .unwrap();
    let tenant = signed_up.json["tenant"]["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = access_token(home.path());
    let numbers = format!("/api/v1/tenants/{tenant}/numbers");
    let post = |body: Value| {
        let running = &running;
        let token = token.clone();
        let numbers = numbers.clone();
        async move { api(running, reqwest::Method::POST, &numbers, &token, Some(body)).await }
    };

    // Input errors name the field; nothing is bought.
    let (status, body) = post(json!({"colour": "red"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (Some("unknown_field"), Some("colour"))
    );
    let (status, body) = post(json!({"areaCode": "55x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "areaCode");
    let (status, body) = post(json!({"number": "+15550100", "areaCode": "555"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "number");
    let (status, body) = post(json!({"areaCode": "212"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "number_unavailable");
    let sandbox = running.state.sandbox.clone().unwrap();
    assert_eq!(sandbox.purchase_count(), 0);

    // A read-only API key may list but not buy.
    let (status, key) = api(
        &running,
        reqwest::Method::POST,
        &format!("/api/v1/tenants/{tenant}/api-keys"),
        &token,
        Some(json!({"name": "dashboard", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let read_key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = api(&running, reqwest::Method::GET, &numbers, &read_key, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api(
        &running,
        reqwest::Method::POST,
        &numbers,
        &read_key,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(sandbox.purchase_count(), 0);

    // Buy one exact number.
    let (status, bought) = post(json!({"number": "+15550142"})).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    assert_eq!(bought["e164"], "+15550142");
    assert!(matches!(
        ring(&running, "+15550142").await,
        Answer::Stream(_)
    ));

    // Restart on the same folder (and port: the public URL is the tokens' issuer): secrets
    // were kept, so the token, the number and its routing survive.
    let port = running.gateway_address.port();
    running.shutdown().await;
    let running = start(data.path(), port).await;
    let (status, listed) = api(&running, reqwest::Method::GET, &numbers, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["items"][0]["e164"], "+15550142");
    assert!(matches!(
        ring(&running, "+15550142").await,
        Answer::Stream(_)
    ));

    // Release: the number stops routing at once and goes back to the carrier.
    let (status, _) = api(
        &running,
        reqwest::Method::DELETE,
        &format!("{numbers}/+15550142"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let Answer::Refused(refusal) = ring(&running, "+15550142").await else {
        panic!("a released number must not connect");
    };
    assert_eq!(refusal.said, vec![UNKNOWN_NUMBER_MESSAGE.to_owned()]);
    let sandbox = running.state.sandbox.clone().unwrap();
    assert!(sandbox.owned_numbers().is_empty());
    assert_eq!(sandbox.release_count(), 1);
    let (_, listed) = api(&running, reqwest::Method::GET, &numbers, &token, None).await;
    assert_eq!(listed["items"], json!([]));
    let (status, _) = api(
        &running,
        reqwest::Method::DELETE,
        &format!("{numbers}/+15550142"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    running.shutdown().await;
}

/// `HH:MM` in UTC, `offset_minutes` from now (wrapping around midnight).
fn utc_clock(offset_minutes: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let minute = (now / 60 + offset_minutes).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_runs_to_the_end_against_simulated_contacts() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // The platform's operator lets free tenants run campaigns on this host.
    let running = start_configured(data.path(), 0, |config| {
        config.voice.plan_limits = Some(r#"{"free": {"campaigns": true}}"#.to_owned());
    })
    .await;
    let mut cli = cli(&running, home.path());
    let signed_up = cli
        .signup(
            "campaigns@example.com",
            PASSWORD,
            "Cam Paign",
            "Campaign Co",
        )
        .await
        .unwrap();
    let tenant = signed_up.json["tenant"]["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = access_token(home.path());
    let bought = cli
        .client()
        .buy_number(
            &tenant,
            &BuyNumber {
                area_code: Some("555".to_owned()),
                ..BuyNumber::default()
            },
        )
        .await
        .unwrap()
        .json;
    let number = bought["e164"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/tenants/{tenant}/campaigns/spring");
    let spec = json!({"fromNumber": number, "contacts": {"uploaded": true},
        "schedule": {"timeZone": "UTC", "windowStart": utc_clock(-60), "windowEnd": utc_clock(120), "days": []},
        "pacing": {"maxConcurrent": 5, "callsPerMinute": 600},
        "agent": {"greeting": "Hello from the spring survey."}});
    let (status, created) = api(&running, reqwest::Method::PUT, &path, &token, Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let uploaded = reqwest::Client::new()
        .post(format!("{}{path}/contacts", running.public_url()))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body("phone,name\n+15552000001,Ann\n+15552000002,Bo\n+15552000003,Cy\n")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::OK);

    // The dialer (once a second) places the calls; simulated contacts hang up after a while
    // and the sandbox reports it through the signed status callback.
    let mut progress = Value::Null;
    for _ in 0..300 {
        let (_, now) = api(&running, reqwest::Method::GET, &path, &token, None).await;
        progress = now;
        if progress["phase"] == "Completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(progress["phase"], "Completed", "{progress}");
    assert_eq!(progress["completed"], 3, "{progress}");
    let sandbox = running.state.sandbox.clone().unwrap();
    assert_eq!(sandbox.calls().len(), 3, "each contact called once");

    let (_, results) = api(
        &running,
        reqwest::Method::GET,
        &format!("{path}/results"),
        &token,
        None,
    )
    .await;
    let states: Vec<&str> = results["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["completed", "completed", "completed"], "{results}");
    let (_, calls) = api(
        &running,
        reqwest::Method::GET,
        &format!("/api/v1/tenants/{tenant}/calls"),
        &token,
        None,
    )
    .await;
    let outbound = calls["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["direction"] == "outbound" && c["campaign"] == "spring")
        .count();
    assert_eq!(outbound, 3, "{calls}");
    running.shutdown().await;
}
