//! Customer webhooks: Standard Webhooks signatures, retries with backoff, and deliveries
//! pending at shutdown delivered after a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_gateway::outbox::{OutboxWorker, sign};

use crate::harness::{TWILIO_TOKEN, apps};

#[derive(Clone, Default)]
struct Receiver {
    fail_first: Arc<Mutex<u32>>,
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn receiver(fail_first: u32) -> (String, Receiver) {
    let state = Receiver {
        fail_first: Arc::new(Mutex::new(fail_first)),
        ..Receiver::default()
    };
    let shared = state.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let shared = shared.clone();
            async move {
                let mut fail = shared.fail_first.lock().unwrap();
                if *fail > 0 {
                    *fail -= 1;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                shared.received.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hook"), state)
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart_and_are_signed() {
    for app in apps("outbox_restart", &[]).await {
        let (url, receiver) = receiver(1).await;
        let tenant = app.signup("hooks@example.com", "Hooks Inc").await;
        app.route_number("+15550300", &tenant.id, "twilio", "platform")
            .await;
        let created = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/webhooks", tenant.slug),
                Some(&tenant.access),
                Some(json!({"url": url, "events": ["call.completed"]})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let secret = created.body["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"));

        // A call completes: one call.completed message is queued in the same transaction.
        app.twilio_post(
            "/api/v1/webhooks/twilio/voice",
            TWILIO_TOKEN,
            &[("CallSid", "CAh1"), ("To", "+15550300")],
        )
        .await;
        let done = app
            .twilio_post(
                "/api/v1/webhooks/twilio/status",
                TWILIO_TOKEN,
                &[
                    ("CallSid", "CAh1"),
                    ("To", "+15550300"),
                    ("CallStatus", "completed"),
                    ("CallDuration", "30"),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM webhook_outbox WHERE status = 'pending'")
                .await,
            1
        );

        // First attempt: the receiver answers 500; the message stays pending with backoff.
        let worker = OutboxWorker::new(
            app.state.store.clone(),
            app.state.keyring.clone(),
            reqwest::Client::new(),
        );
        assert_eq!(worker.run_once().await.unwrap(), 1);
        assert_eq!(
            app.count(
                "SELECT COUNT(*) FROM webhook_outbox WHERE status = 'pending' AND attempts = 1"
            )
            .await,
            1
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM webhook_deliveries WHERE status_code = 500")
                .await,
            1
        );
        // Not due yet: a second pass sends nothing.
        assert_eq!(worker.run_once().await.unwrap(), 0);

        // "Shutdown": the first gateway's pool closes with the delivery pending.
        app.state.store.pool().close().await;
        let restarted = app
            .sibling(&["--outbox-poll-ms".into(), "100".into()])
            .await;
        let workers = switchboard_gateway::workers::start(&restarted.state);
        let mut delivered = false;
        for _ in 0..150 {
            if !receiver.received.lock().unwrap().is_empty() {
                delivered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        workers.abort();
        assert!(
            delivered,
            "{}: the pending delivery was not sent after the restart",
            app.backend
        );
        let (headers, body) = receiver.received.lock().unwrap()[0].clone();
        let id = headers["webhook-id"].to_str().unwrap();
        let timestamp: i64 = headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            headers["webhook-signature"].to_str().unwrap(),
            sign(&secret, id, timestamp, &body).unwrap()
        );
        let payload: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(payload["type"], "call.completed");
        assert_eq!(payload["data"]["durationSeconds"], 30);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(restarted.count("SELECT COUNT(*) FROM webhook_outbox WHERE status = 'delivered' AND attempts = 2").await, 1);
        let log = restarted
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/webhooks/deliveries", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(log.body[0]["status"], "delivered", "{}", log.text);
        restarted.state.store.pool().close().await;
        app.finish().await;
    }
}
