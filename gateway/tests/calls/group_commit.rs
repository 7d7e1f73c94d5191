//! Group commit (issue 15's throughput): concurrent inbound calls and CDR posts of one tenant
//! are written together by the call writer, with the answers each request would have got
//! alone: a carrier call counted and recorded once however often it is retried in the same
//! moment, duplicate PBX records reported as duplicates, and a plan limit never overshot when
//! a batch would cross it.

use axum::http::{Method, StatusCode};
use futures::future::join_all;
use serde_json::json;

use crate::harness::{TWILIO_TOKEN, apps};

const VOICE: &str = "/api/v1/webhooks/twilio/voice";

fn call_id(twiml: &str) -> Option<String> {
    let (_, rest) = twiml.split_once("name=\"callId\" value=\"")?;
    rest.split('"').next().map(str::to_owned)
}

#[tokio::test]
async fn concurrent_calls_and_cdrs_are_written_together_exactly_once() {
    for owned in apps("group_commit", &[]).await {
        let app = &owned;
        println!("backend: {}", app.backend);
        let tenant = app.signup("batch@example.com", "Batch Inc").await;
        app.route_number("+15550100", &tenant.id, "twilio", "platform")
            .await;
        let sids: Vec<String> = (0..45).map(|i| format!("CA{i:032}")).collect();
        // 45 distinct calls, the first 15 of them retried at the same moment.
        let requests: Vec<&String> = sids.iter().chain(sids.iter().take(15)).collect();
        let replies = join_all(requests.iter().map(|sid| async move {
            app.twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[
                    ("CallSid", sid),
                    ("From", "+15557770000"),
                    ("To", "+15550100"),
                ],
            )
            .await
        }))
        .await;
        let mut ids = std::collections::HashMap::new();
        for (sid, reply) in requests.iter().zip(&replies) {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let id = call_id(&reply.text).unwrap_or_else(|| panic!("no call id: {}", reply.text));
            // A retry gets the call id of the call it retries.
            assert_eq!(
                ids.entry(sid.as_str()).or_insert_with(|| id.clone()),
                &id,
                "{}",
                app.backend
            );
        }
        assert_eq!(ids.len(), 45);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls WHERE carrier = 'twilio'")
                .await,
            45
        );
        assert_eq!(
            app.count("SELECT COALESCE(MAX(call_count), 0) FROM usage_counters")
                .await,
            45
        );

        // Ten PBX posts at once, post k carrying records k and k+1: 11 records, 9 repeats.
        let cred = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/cdr-credentials", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
        let auth = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                cred.body["username"].as_str().unwrap(),
                cred.body["password"].as_str().unwrap()
            ),
        );
        let record = |id: usize| {
            json!({"id": format!("pbx-{id}"), "from": "+15557770000", "to": "+15550100",
                "direction": "inbound", "start": "2026-11-20T09:00:00Z",
                "answer": "2026-11-20T09:00:05Z", "end": "2026-11-20T09:02:05Z",
                "disposition": "answered"})
        };
        let posts = join_all((0..10).map(|k| {
            let body = json!({"records": [record(k), record(k + 1)]});
            app.raw(
                axum::http::Request::post(format!("/api/v1/webhooks/cdr/{}", tenant.slug))
                    .header("content-type", "application/json")
                    .header("authorization", format!("Basic {auth}"))
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
        }))
        .await;
        let (mut stored, mut duplicates) = (0, 0);
        for post in &posts {
            assert_eq!(post.status, StatusCode::OK, "{}", post.text);
            stored += post.body["stored"].as_u64().unwrap();
            duplicates += post.body["duplicates"].as_u64().unwrap();
        }
        assert_eq!((stored, duplicates), (11, 9), "{}", app.backend);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls WHERE carrier = 'pbx'")
                .await,
            11
        );

        // The credential is now cached; rotating it retires the old password at once.
        let rotated = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/cdr-credentials", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text);
        let new_auth = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                rotated.body["username"].as_str().unwrap(),
                rotated.body["password"].as_str().unwrap()
            ),
        );
        for (auth, expected) in [
            (&auth, StatusCode::UNAUTHORIZED),
            (&new_auth, StatusCode::OK),
        ] {
            let reply = app
                .raw(
                    axum::http::Request::post(format!("/api/v1/webhooks/cdr/{}", tenant.slug))
                        .header("content-type", "application/json")
                        .header("authorization", format!("Basic {auth}"))
                        .body(axum::body::Body::from(record(99).to_string()))
                        .unwrap(),
                )
                .await;
            assert_eq!(reply.status, expected, "{}: {}", app.backend, reply.text);
        }

        // Ten new calls at once with room for five (free plan: 50 a month): exactly five are
        // connected, and the counter stops at the limit.
        let late: Vec<String> = (0..10).map(|i| format!("CAlate{i:028}")).collect();
        let replies = join_all(late.iter().map(|sid| async move {
            app.twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", sid), ("To", "+15550100")],
            )
            .await
        }))
        .await;
        let connected = replies
            .iter()
            .filter(|r| r.text.contains("<Connect>"))
            .count();
        let refused = replies
            .iter()
            .filter(|r| r.text.contains("<Hangup/>"))
            .count();
        assert_eq!((connected, refused), (5, 5), "{}", app.backend);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls WHERE carrier = 'twilio'")
                .await,
            50
        );
        assert_eq!(
            app.count("SELECT COALESCE(MAX(call_count), 0) FROM usage_counters")
                .await,
            50
        );
        owned.finish().await;
    }
}
