//! Carrier webhook signatures: valid accepted; wrong secret, tampered body and stale
//! timestamps rejected with 4xx and no state change.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use switchboard_carriers::signatures::twilio_signature;

use crate::harness::{PUBLIC, SANDBOX_TOKEN, TWILIO_TOKEN, apps};

const VOICE: &str = "/api/v1/webhooks/twilio/voice";
const STATUS: &str = "/api/v1/webhooks/twilio/status";

#[tokio::test]
async fn twilio_signatures_are_verified_with_the_owning_accounts_token() {
    for app in apps("twilio_signatures", &[]).await {
        let tenant = app.signup("sig@example.com", "Sig Inc").await;
        app.route_number("+15550100", &tenant.id, "twilio", "platform")
            .await;
        app.route_number("+15550150", &tenant.id, "sandbox", "platform")
            .await;
        app.route_number("+15550160", &tenant.id, "twilio", "tenant")
            .await;

        // Wrong secret: 403, nothing recorded.
        let wrong = app
            .twilio_post(
                VOICE,
                "not-the-token",
                &[("CallSid", "CA1"), ("To", "+15550100")],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
        // Tampered body: signed for one number, sent for another parameter set.
        let params = vec![
            ("CallSid".to_owned(), "CA2".to_owned()),
            ("To".to_owned(), "+15550100".to_owned()),
        ];
        let signature = twilio_signature(TWILIO_TOKEN, &format!("{PUBLIC}{VOICE}"), &params);
        let tampered = app
            .raw(
                Request::post(VOICE)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-twilio-signature", signature)
                    .body(Body::from("CallSid=CA2&To=%2B15550100&From=%2B1666"))
                    .unwrap(),
            )
            .await;
        assert_eq!(tampered.status, StatusCode::FORBIDDEN);
        // Missing signature.
        let missing = app
            .raw(
                Request::post(VOICE)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from("CallSid=CA3&To=%2B15550100"))
                    .unwrap(),
            )
            .await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN);
        // The sandbox number does not accept the platform token, only the sandbox one.
        let crossed = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", "CA4"), ("To", "+15550150")],
            )
            .await;
        assert_eq!(crossed.status, StatusCode::FORBIDDEN);
        // A tenant-account number without stored Twilio credentials cannot be verified.
        let no_creds = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", "CA5"), ("To", "+15550160")],
            )
            .await;
        assert_eq!(no_creds.status, StatusCode::FORBIDDEN);
        // Each refusal is counted for the SwitchboardWebhookSignatureFailures alert, by sender.
        let metrics = app.metrics().await;
        for series in [
            r#"switchboard_gateway_webhook_signature_failures_total{source="twilio"} 5"#,
            r#"switchboard_gateway_webhook_signature_failures_total{source="telnyx"} 0"#,
        ] {
            assert!(
                metrics.text.contains(series),
                "{}: {}",
                app.backend,
                metrics.text
            );
        }
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls").await,
            0,
            "{}",
            app.backend
        );
        assert_eq!(app.count("SELECT COUNT(*) FROM usage_events").await, 0);

        // Valid: platform and sandbox.
        let ok = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", "CA6"), ("From", "+1777"), ("To", "+15550100")],
            )
            .await;
        assert!(ok.text.contains("<Connect>"), "{}", ok.text);
        let sandbox = app
            .twilio_post(
                VOICE,
                SANDBOX_TOKEN,
                &[("CallSid", "SB7"), ("To", "+15550150")],
            )
            .await;
        assert!(sandbox.text.contains("<Connect>"), "{}", sandbox.text);
        assert_eq!(app.count("SELECT COUNT(*) FROM calls").await, 2);

        // Status callbacks: a forged one changes nothing; a valid one completes the call,
        // bills whole minutes once and queues nothing without endpoints.
        let forged = app
            .twilio_post(
                STATUS,
                "forged",
                &[
                    ("CallSid", "CA6"),
                    ("To", "+15550100"),
                    ("CallStatus", "completed"),
                    ("CallDuration", "61"),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls WHERE ended_at IS NOT NULL")
                .await,
            0
        );
        for _ in 0..2 {
            let done = app
                .twilio_post(
                    STATUS,
                    TWILIO_TOKEN,
                    &[
                        ("CallSid", "CA6"),
                        ("To", "+15550100"),
                        ("CallStatus", "completed"),
                        ("CallDuration", "61"),
                    ],
                )
                .await;
            assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.text);
        }
        assert_eq!(
            app.count(
                "SELECT COUNT(*) FROM calls WHERE outcome = 'completed' AND duration_seconds = 61"
            )
            .await,
            1
        );
        assert_eq!(
            app.count("SELECT call_minutes FROM usage_counters").await,
            2
        );
        app.finish().await;
    }
}

/// A Telnyx API stand-in recording Call Control commands.
async fn telnyx_api() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let log = seen.clone();
    let dials = seen.clone();
    let router = Router::new()
        .route(
            "/v2/calls/{id}/actions/{action}",
            post(
                move |axum::extract::Path((id, action)): axum::extract::Path<(String, String)>,
                      axum::Json(body): axum::Json<Value>| {
                    let log = log.clone();
                    async move {
                        log.lock().unwrap().push((format!("{id}/{action}"), body));
                        axum::Json(json!({"data": {"result": "ok"}}))
                    }
                },
            ),
        )
        .route(
            "/v2/calls",
            post(move |axum::Json(body): axum::Json<Value>| {
                let log = dials.clone();
                async move {
                    let mut log = log.lock().unwrap();
                    let id = format!("v3:out-{}", log.len() + 1);
                    log.push(("dial".to_owned(), body));
                    axum::Json(json!({"data": {"call_control_id": id, "call_leg_id": "leg",
                        "call_session_id": "session", "is_alive": false, "record_type": "call"}}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/v2"), seen)
}

fn telnyx_request(key: &SigningKey, timestamp: i64, body: &str) -> Request<Body> {
    let message = format!("{timestamp}|{body}");
    let signature =
        base64::engine::general_purpose::STANDARD.encode(key.sign(message.as_bytes()).to_bytes());
    Request::post("/api/v1/webhooks/telnyx")
        .header("content-type", "application/json")
        .header("telnyx-signature-ed25519", signature)
        .header("telnyx-timestamp", timestamp.to_string())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn telnyx_webhooks_need_a_fresh_ed25519_signature() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    let (api, seen) = telnyx_api().await;
    let extra = vec![
        "--telnyx-public-key".to_owned(),
        public,
        "--telnyx-api-key".to_owned(),
        "KEYtest".to_owned(),
        "--telnyx-api-base".to_owned(),
        api,
    ];
    for app in apps("telnyx_signatures", &extra).await {
        seen.lock().unwrap().clear();
        let tenant = app.signup("tx@example.com", "Tx Inc").await;
        app.route_number("+15550200", &tenant.id, "telnyx", "platform")
            .await;
        let body = json!({"data": {"event_type": "call.initiated", "id": "ev1", "payload": {
            "call_control_id": "v3:abc", "direction": "incoming", "from": "+1777", "to": "+15550200"}}})
        .to_string();
        let now = chrono::Utc::now().timestamp();

        let stale = app.raw(telnyx_request(&key, now - 301, &body)).await;
        assert_eq!(stale.status, StatusCode::FORBIDDEN);
        let other_key = SigningKey::from_bytes(&[8u8; 32]);
        let wrong = app.raw(telnyx_request(&other_key, now, &body)).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        let mut tampered = telnyx_request(&key, now, &body);
        *tampered.body_mut() = Body::from(body.replace("+1777", "+1666"));
        assert_eq!(app.raw(tampered).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls").await,
            0,
            "{}",
            app.backend
        );
        assert!(seen.lock().unwrap().is_empty());

        let ok = app.raw(telnyx_request(&key, now, &body)).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
        let commands = seen.lock().unwrap().clone();
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].0, "v3:abc/answer");
        assert_eq!(commands[0].1["stream_url"], "wss://gateway.test/media");
        assert!(commands[0].1["client_state"].as_str().is_some());

        let hangup = json!({"data": {"event_type": "call.hangup", "payload": {
            "call_control_id": "v3:abc", "direction": "incoming", "from": "+1777", "to": "+15550200",
            "hangup_cause": "normal_clearing", "start_time": "2026-11-21T10:00:00Z", "end_time": "2026-11-21T10:02:30Z"}}})
        .to_string();
        assert_eq!(
            app.raw(telnyx_request(&key, now, &hangup)).await.status,
            StatusCode::OK
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls WHERE duration_seconds = 150")
                .await,
            1
        );
        assert_eq!(
            app.count("SELECT call_minutes FROM usage_counters").await,
            3
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn numbers_on_a_tenants_own_account_verify_with_its_stored_auth_token() {
    for app in apps("tenant_account", &[]).await {
        let tenant = app.signup("own@example.com", "Own Inc").await;
        app.route_number("+15550170", &tenant.id, "twilio", "tenant")
            .await;
        let created = app
            .json(
                axum::http::Method::POST,
                &format!("/api/v1/tenants/{}/credentials", tenant.slug),
                Some(&tenant.access),
                Some(
                    json!({"provider": "twilio", "label": "main", "secret": "tenant-own-auth-token",
                    "isDefault": true, "metadata": {"account_sid": "AC123"}}),
                ),
            )
            .await;
        assert!(created.status.is_success(), "{}", created.text);
        let platform = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", "CAo1"), ("To", "+15550170")],
            )
            .await;
        assert_eq!(
            platform.status,
            StatusCode::FORBIDDEN,
            "the platform token must not verify a tenant-owned number"
        );
        let own = app
            .twilio_post(
                VOICE,
                "tenant-own-auth-token",
                &[("CallSid", "CAo2"), ("To", "+15550170")],
            )
            .await;
        assert!(
            own.text.contains("<Connect>"),
            "{}: {}",
            app.backend,
            own.text
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn telnyx_campaign_calls_are_dialled_and_streamed_when_answered() {
    use switchboard_gateway::dialer::Dialer;
    use switchboard_gateway::dialer::clock::ManualClock;

    let key = SigningKey::from_bytes(&[9u8; 32]);
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    let (api, seen) = telnyx_api().await;
    let extra: Vec<String> = [
        "--telnyx-public-key",
        &public,
        "--telnyx-api-key",
        "KEYtest",
        "--telnyx-api-base",
        &api,
        "--telnyx-connection-id",
        "conn-1",
        "--plan-limits",
        r#"{"free": {"campaigns": true}}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for app in apps("telnyx_campaign", &extra).await {
        seen.lock().unwrap().clear();
        let tenant = app.signup("txc@example.com", "Txc Inc").await;
        app.route_number("+15550200", &tenant.id, "telnyx", "platform")
            .await;
        let registered = app
            .json(
                axum::http::Method::PUT,
                &format!("/internal/v1/tenants/{}/campaigns/survey", tenant.slug),
                Some(crate::harness::INTERNAL_TOKEN),
                Some(json!({"namespace": "ns", "uid": "u", "generation": 1, "fromNumber": "+15550200",
                    "contactsCsv": "id,phone\nann,+15552000001\n",
                    "spec": {"fromNumber": "line", "contacts": {"uploaded": true},
                        "schedule": {"timeZone": "UTC", "windowStart": "00:00", "windowEnd": "23:59", "days": []}}})),
            )
            .await;
        assert_eq!(registered.status, StatusCode::OK, "{}", registered.text);
        let clock = ManualClock::starting_at(1_767_614_400_000); // 2026-01-05 12:00 UTC
        let dialer = Dialer::new(app.state.clone(), Arc::new(clock.clone()));
        assert_eq!(dialer.pass().await.unwrap().placed, 1);
        let dial = seen.lock().unwrap()[0].clone();
        assert_eq!(dial.0, "dial");
        assert_eq!(dial.1["connection_id"], "conn-1");
        assert_eq!(dial.1["from"], "+15550200");
        assert_eq!(dial.1["to"], "+15552000001");
        assert_eq!(
            dial.1["webhook_url"],
            "https://gateway.test/api/v1/webhooks/telnyx"
        );
        let client_state = dial.1["client_state"].as_str().unwrap().to_owned();

        let now = chrono::Utc::now().timestamp();
        let event = |kind: &str, extra: Value| {
            let mut payload = json!({"call_control_id": "v3:out-1", "direction": "outgoing",
                "from": "+15550200", "to": "+15552000001", "client_state": client_state});
            for (k, v) in extra.as_object().unwrap() {
                payload[k] = v.clone();
            }
            json!({"data": {"event_type": kind, "payload": payload}}).to_string()
        };
        let answered = app
            .raw(telnyx_request(
                &key,
                now,
                &event("call.answered", json!({})),
            ))
            .await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.text);
        let commands = seen.lock().unwrap().clone();
        assert_eq!(commands.len(), 2, "{commands:?}");
        assert_eq!(commands[1].0, "v3:out-1/streaming_start");
        assert_eq!(commands[1].1["stream_url"], "wss://gateway.test/media");
        let token = base64::engine::general_purpose::STANDARD
            .decode(commands[1].1["client_state"].as_str().unwrap())
            .unwrap();
        let claims = app
            .state
            .call_tokens
            .verify(std::str::from_utf8(&token).unwrap(), now)
            .unwrap();
        assert_eq!(claims.carrier, "telnyx");

        let hangup = event(
            "call.hangup",
            json!({"hangup_cause": "normal_clearing", "start_time": "2026-11-21T10:00:00Z",
                "end_time": "2026-11-21T10:01:00Z"}),
        );
        assert_eq!(
            app.raw(telnyx_request(&key, now, &hangup)).await.status,
            StatusCode::OK
        );
        dialer.pass().await.unwrap();
        assert_eq!(
            app.count("SELECT COUNT(*) FROM campaign_contacts WHERE state = 'completed'")
                .await,
            1,
            "{}",
            app.backend
        );
        app.finish().await;
    }
}
