//! Call records from carrier callbacks, runtime events and PBX CDRs; list, stats, CSV and
//! transcripts; business metrics.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{INTERNAL_TOKEN, TWILIO_TOKEN, TestApp, apps};

async fn events(app: &TestApp, token: &str, events: Value) -> (StatusCode, Value) {
    let reply = app
        .json(
            Method::POST,
            "/internal/v1/events",
            Some(token),
            Some(json!({ "events": events })),
        )
        .await;
    (reply.status, reply.body)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn runtime_events_cdrs_and_carrier_callbacks_become_call_records() {
    for app in apps("calls", &[]).await {
        let tenant = app.signup("calls@example.com", "Calls Inc").await;
        let other = app.signup("other@example.com", "Other Inc").await;
        app.route_number("+15550400", &tenant.id, "twilio", "platform")
            .await;
        let voice = app
            .twilio_post(
                "/api/v1/webhooks/twilio/voice",
                TWILIO_TOKEN,
                &[("CallSid", "CAr1"), ("From", "+1777"), ("To", "+15550400")],
            )
            .await;
        let start =
            voice.text.find("name=\"callId\" value=\"").unwrap() + "name=\"callId\" value=\"".len();
        let call_id = voice.text[start..].split('"').next().unwrap().to_owned();

        // The runtime reports the call; a replayed batch changes nothing.
        let batch = json!([
            {"id": "e1", "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:00:00Z",
             "type": "callStarted", "carrier": "twilio", "streamId": "MZ1", "from": "+1777", "to": "+15550400"},
            {"id": "e2", "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:00:01Z",
             "type": "transcriptTurn", "index": 0, "role": "caller", "text": "Hello there", "offsetMs": 1000},
            {"id": "e3", "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:00:02Z",
             "type": "transcriptTurn", "index": 1, "role": "agent", "text": "Hi! How can I help?", "offsetMs": 2000},
            {"id": "e4", "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:01:30Z",
             "type": "usage", "sttSeconds": 42.5, "ttsCharacters": 120, "llmPromptTokens": 10, "llmCompletionTokens": 5,
             "sttProvider": "builtin", "llmProvider": "builtin", "ttsProvider": "builtin"},
            {"id": "e5", "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:01:30Z",
             "type": "callEnded", "reason": "callerHangup", "durationMs": 90_500, "turns": 2}
        ]);
        assert_eq!(
            events(&app, "wrong", batch.clone()).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = events(&app, INTERNAL_TOKEN, batch.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["accepted"], 5);
        let (_, body) = events(&app, INTERNAL_TOKEN, batch).await;
        assert_eq!(body["duplicates"], 5);
        // The carrier's completed callback after the runtime's end bills nothing more.
        app.twilio_post(
            "/api/v1/webhooks/twilio/status",
            TWILIO_TOKEN,
            &[
                ("CallSid", "CAr1"),
                ("To", "+15550400"),
                ("CallStatus", "completed"),
                ("CallDuration", "91"),
            ],
        )
        .await;
        let usage = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(usage.body["usage"]["callMinutes"], 2, "{}", usage.text);
        assert_eq!(usage.body["usage"]["ttsCharacters"], 120);
        assert!((usage.body["usage"]["sttMinutes"].as_f64().unwrap() - 42.5 / 60.0).abs() < 1e-9);

        let call = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/{call_id}", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(call.body["durationSeconds"], 91, "{}", call.text);
        assert_eq!(call.body["outcome"], "callerHangup");
        assert_eq!(call.body["turns"], 2);
        let transcript = app
            .json(
                Method::GET,
                call.body["transcript"].as_str().unwrap(),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(transcript.body["items"][1]["text"], "Hi! How can I help?");
        // Another tenant cannot see it.
        let hidden = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/{call_id}", other.slug),
                Some(&other.access),
                None,
            )
            .await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);

        // PBX CDRs need the tenant's own basic-auth credential.
        let cred = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/cdr-credentials", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
        let (user, password) = (
            cred.body["username"].as_str().unwrap(),
            cred.body["password"].as_str().unwrap(),
        );
        let cdrs = json!({"records": [
            {"id": "pbx-1", "from": "+1888", "to": "+1999", "direction": "outbound", "start": "2026-11-20T09:00:00Z",
             "answer": "2026-11-20T09:00:05Z", "end": "2026-11-20T09:02:05Z", "disposition": "answered"},
            {"id": "pbx-2", "from": "+1888", "to": "+1998", "direction": "outbound", "start": "2026-11-20T08:00:00Z",
             "disposition": "no-answer"}
        ]});
        let post = |auth: String| {
            Request::post(format!("/api/v1/webhooks/cdr/{}", tenant.slug))
                .header("content-type", "application/json")
                .header("authorization", auth)
                .body(Body::from(cdrs.to_string()))
                .unwrap()
        };
        assert_eq!(
            app.raw(post(basic(user, "wrong"))).await.status,
            StatusCode::UNAUTHORIZED
        );
        let other_cred = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/cdr-credentials", other.slug),
                Some(&other.access),
                None,
            )
            .await;
        let other_pw = other_cred.body["password"].as_str().unwrap();
        assert_eq!(
            app.raw(post(basic(user, other_pw))).await.status,
            StatusCode::UNAUTHORIZED
        );
        let stored = app.raw(post(basic(user, password))).await;
        assert_eq!(stored.body["stored"], 2, "{}", stored.text);
        assert_eq!(
            app.raw(post(basic(user, password))).await.body["duplicates"],
            2
        );

        // List with paging and filters, stats, CSV.
        let base = format!("/api/v1/tenants/{}/calls", tenant.slug);
        let page1 = app
            .json(
                Method::GET,
                &format!("{base}?limit=2"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(
            page1.body["items"].as_array().unwrap().len(),
            2,
            "{}",
            page1.text
        );
        let cursor = page1.body["nextCursor"].as_str().unwrap();
        let page2 = app
            .json(
                Method::GET,
                &format!("{base}?limit=2&cursor={cursor}"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(page2.body["items"].as_array().unwrap().len(), 1);
        assert!(page2.body["nextCursor"].is_null());
        let mut ids: Vec<String> = page1.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .chain(page2.body["items"].as_array().unwrap())
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        let outbound = app
            .json(
                Method::GET,
                &format!("{base}?direction=outbound&outcome=answered"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(outbound.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(outbound.body["items"][0]["carrierCallId"], "pbx-1");
        let stats = app
            .json(
                Method::GET,
                &format!("{base}/stats"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(stats.body["total"], 3, "{}", stats.text);
        assert_eq!(stats.body["answered"], 2);
        assert!((stats.body["answerRate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(stats.body["averageDurationSeconds"], 105.5);
        let csv = app
            .json(
                Method::GET,
                &format!("{base}/export.csv"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
        let lines: Vec<&str> = csv.text.lines().collect();
        assert_eq!(lines.len(), 4, "{}", csv.text);
        assert!(lines[0].starts_with("id,direction,from,to,status,outcome"));
        let bad = app
            .json(
                Method::GET,
                &format!("{base}?from=yesterday"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

        // Business metrics.
        app.state.metrics.refresh(&app.state.store).await.unwrap();
        let metrics = app.metrics().await;
        for name in [
            "switchboard_tenants 2",
            &format!(
                "switchboard_tenant_calls_total{{tenant=\"{}\"}} 1",
                tenant.slug
            ),
            &format!(
                "switchboard_tenant_call_minutes_total{{tenant=\"{}\"}} 2",
                tenant.slug
            ),
            "switchboard_db_pool_connections",
            "switchboard_gateway_uptime_seconds",
        ] {
            assert!(
                metrics.text.contains(name),
                "{}: metrics lack {name}",
                app.backend
            );
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn a_transfer_request_redirects_the_live_twilio_call() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let log = seen.clone();
    let router = axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Calls/{call}",
        axum::routing::post(
            move |axum::extract::Path((sid, call)): axum::extract::Path<(String, String)>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let log = log.clone();
                async move {
                    let auth = headers["authorization"].to_str().unwrap().to_owned();
                    log.lock()
                        .unwrap()
                        .push((format!("{sid}/{call}"), auth, body));
                    axum::Json(json!({"sid": "CAt1", "status": "in-progress"}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let extra = vec![
        "--twilio-account-sid".to_owned(),
        "AC1".to_owned(),
        "--twilio-api-base".to_owned(),
        format!("http://{addr}/2010-04-01"),
    ];
    for app in apps("transfer", &extra).await {
        seen.lock().unwrap().clear();
        let tenant = app.signup("transfer@example.com", "Transfer Inc").await;
        app.route_number("+15550500", &tenant.id, "twilio", "platform")
            .await;
        let voice = app
            .twilio_post(
                "/api/v1/webhooks/twilio/voice",
                TWILIO_TOKEN,
                &[("CallSid", "CAt1"), ("From", "+1777"), ("To", "+15550500")],
            )
            .await;
        let start =
            voice.text.find("name=\"callId\" value=\"").unwrap() + "name=\"callId\" value=\"".len();
        let call_id = voice.text[start..].split('"').next().unwrap().to_owned();
        let (status, body) = events(
            &app,
            INTERNAL_TOKEN,
            json!([{"id": "t1", "tenant": tenant.slug, "callId": call_id, "occurredAt": "2026-11-21T10:00:00Z",
                "type": "transferRequested", "to": "+15559990000"}]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let calls = seen.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "{}", app.backend);
        assert_eq!(calls[0].0, "AC1/CAt1.json");
        assert_eq!(calls[0].1, basic("AC1", TWILIO_TOKEN));
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&calls[0].2).unwrap();
        assert_eq!(
            form,
            vec![(
                "Twiml".to_owned(),
                "<Response><Dial>+15559990000</Dial></Response>".to_owned()
            )]
        );
        app.finish().await;
    }
}

/// A call of `slug` admitted through the voice webhook on `number`; returns its call id.
async fn admitted_call(app: &TestApp, number: &str, call_sid: &str) -> String {
    let voice = app
        .twilio_post(
            "/api/v1/webhooks/twilio/voice",
            TWILIO_TOKEN,
            &[("CallSid", call_sid), ("From", "+1777"), ("To", number)],
        )
        .await;
    let start =
        voice.text.find("name=\"callId\" value=\"").unwrap() + "name=\"callId\" value=\"".len();
    voice.text[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_runtime_credential_writes_only_its_own_tenants_events_and_rotation_revokes_it() {
    for app in apps("runtime credentials", &[]).await {
        let a = app.signup("a@example.com", "Tenant A").await;
        let b = app.signup("b@example.com", "Tenant B").await;
        app.route_number("+15550501", &a.id, "twilio", "platform")
            .await;
        app.route_number("+15550502", &b.id, "twilio", "platform")
            .await;
        let call_a = admitted_call(&app, "+15550501", "CAa1").await;
        let call_b = admitted_call(&app, "+15550502", "CAb1").await;
        let credential_a = app.state.runtime_credentials.issue(&a.id, 1);
        let events_of = |tenant: &str, call: &str, prefix: &str| {
            json!([
                {"id": format!("{prefix}1"), "tenant": tenant, "callId": call, "occurredAt": "2026-11-21T10:00:01Z",
                 "type": "transcriptTurn", "index": 0, "role": "caller", "text": "forged", "offsetMs": 1000},
                {"id": format!("{prefix}2"), "tenant": tenant, "callId": call, "occurredAt": "2026-11-21T10:00:02Z",
                 "type": "surveyAnswer", "field": "q1", "raw": "forged", "value": "forged"},
                {"id": format!("{prefix}3"), "tenant": tenant, "callId": call, "occurredAt": "2026-11-21T10:01:30Z",
                 "type": "usage", "sttSeconds": 600.0, "ttsCharacters": 9999, "llmPromptTokens": 1, "llmCompletionTokens": 1,
                 "sttProvider": "builtin", "llmProvider": "builtin", "ttsProvider": "builtin"},
                {"id": format!("{prefix}4"), "tenant": tenant, "callId": call, "occurredAt": "2026-11-21T10:01:30Z",
                 "type": "callEnded", "reason": "callerHangup", "durationMs": 90_500, "turns": 1}
            ])
        };

        // Tenant A's runtime cannot write tenant B's call, usage, transcript or answers: the
        // whole batch is refused, and a batch mixing both tenants too.
        let (status, body) = events(&app, &credential_a, events_of(&b.slug, &call_b, "x")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let mut mixed = events_of(&a.slug, &call_a, "m");
        mixed
            .as_array_mut()
            .unwrap()
            .extend(events_of(&b.slug, &call_b, "y").as_array().unwrap().clone());
        let (status, _) = events(&app, &credential_a, mixed).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Naming its own tenant with B's call id reaches nothing of B either.
        let (status, body) = events(&app, &credential_a, events_of(&a.slug, &call_b, "z")).await;
        assert!(status.is_success() || status.is_client_error(), "{body}");
        let call = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/{call_b}", b.slug),
                Some(&b.access),
                None,
            )
            .await;
        assert_eq!(call.status, StatusCode::OK, "{}", call.text);
        assert!(
            call.body["turns"].is_null() || call.body["turns"] == 0,
            "{}",
            call.text
        );
        assert!(call.body["outcome"].is_null(), "{}", call.text);
        let transcript = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/{call_b}/transcript", b.slug),
                Some(&b.access),
                None,
            )
            .await;
        assert!(!transcript.text.contains("forged"), "{}", transcript.text);
        let usage = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage", b.slug),
                Some(&b.access),
                None,
            )
            .await;
        assert_eq!(usage.body["usage"]["ttsCharacters"], 0, "{}", usage.text);

        // Its own events are accepted.
        let (status, body) = events(&app, &credential_a, events_of(&a.slug, &call_a, "a")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["accepted"], 4, "{body}");

        // Another tenant's credential, a forged one and B's own for A are refused.
        let forged = credential_a.replace(&a.id, &b.id);
        assert_eq!(
            events(&app, &forged, events_of(&b.slug, &call_b, "f"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );

        // Rotation (owner only) revokes the old credential at once; the new one works.
        let rotate = format!("/api/v1/tenants/{}/runtime-credential/rotate", a.slug);
        let rotated = app.json(Method::POST, &rotate, Some(&b.access), None).await;
        assert!(rotated.status.is_client_error(), "{}", rotated.text);
        let rotated = app.json(Method::POST, &rotate, Some(&a.access), None).await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
        assert_eq!(rotated.body["epoch"], 2);
        let (status, _) = events(&app, &credential_a, events_of(&a.slug, &call_a, "r")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let renewed = app.state.runtime_credentials.issue(&a.id, 2);
        let (status, body) = events(&app, &renewed, events_of(&a.slug, &call_a, "s")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
