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
    // The receiver is a local stand-in on 127.0.0.1: allowed for this test only.
    let allow = ["--outbound-allow-private".to_owned(), "true".to_owned()];
    for app in apps("outbox_restart", &allow).await {
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
            true,
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
            .sibling(&[
                "--outbox-poll-ms".into(),
                "100".into(),
                "--outbound-allow-private".into(),
                "true".into(),
            ])
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
        assert_eq!(signatures(&headers).len(), 1);
        assert!(signed_by(&headers, &body, &secret));
        let payload: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(payload["type"], "call.completed");
        assert_eq!(payload["data"]["durationSeconds"], 30);
        // The worker records the attempt after the receiver answered: wait for that write
        // (polling, not a fixed sleep, which lost the race under a loaded CI machine).
        let mut recorded = 0;
        for _ in 0..100 {
            recorded = restarted.count("SELECT COUNT(*) FROM webhook_outbox WHERE status = 'delivered' AND attempts = 2").await;
            if recorded == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(recorded, 1);
        let log = restarted
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/webhooks/deliveries", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(log.body["items"][0]["status"], "delivered", "{}", log.text);
        restarted.state.store.pool().close().await;
        app.finish().await;
    }
}

/// Issue 15 item 2: webhook URLs naming loopback, private, link-local or cluster addresses are
/// refused when saved; at connect time a name resolving to loopback is refused and nothing
/// connects; redirects are never followed.
#[tokio::test]
async fn webhook_urls_never_reach_internal_addresses() {
    for app in apps("ssrf", &[]).await {
        let tenant = app.signup("ssrf@example.com", "Ssrf Inc").await;
        let path = format!("/api/v1/tenants/{}/webhooks", tenant.slug);
        for url in [
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:8080/hook",
            "http://10.1.2.3/hook",
            "http://[::1]/hook",
            "http://switchboard-gateway.switchboard.svc.cluster.local/internal/v1",
            "ftp://hooks.example.com/",
        ] {
            let refused = app
                .json(
                    Method::POST,
                    &path,
                    Some(&tenant.access),
                    Some(json!({"url": url})),
                )
                .await;
            assert_eq!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{url}: {}",
                refused.text
            );
            assert!(refused.text.contains("\"url\""), "{}", refused.text);
        }
        let ok = app
            .json(
                Method::POST,
                &path,
                Some(&tenant.access),
                Some(json!({"url": "https://hooks.example.com/switchboard"})),
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
        app.finish().await;
    }

    // A local server that answers every request with a redirect to another local port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(Mutex::new(0u32));
    let counted = connections.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            *counted.lock().unwrap() += 1;
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let guarded = switchboard_crds::outbound::guarded_client(false)
        .build()
        .unwrap();
    let refused = guarded
        .get(format!("http://localhost:{port}/hook"))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a name resolving to loopback must be refused"
    );
    assert_eq!(*connections.lock().unwrap(), 0, "nothing may connect");
    // With private targets allowed (development), the redirect is still not followed.
    let local = switchboard_crds::outbound::guarded_client(true)
        .build()
        .unwrap();
    let answer = local
        .get(format!("http://127.0.0.1:{port}/hook"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    assert_eq!(*connections.lock().unwrap(), 1);
}

/// The `webhook-signature` values of a received message.
pub(crate) fn signatures(headers: &HeaderMap) -> Vec<String> {
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// Whether `secret` signed the message (`headers`, `body`).
pub(crate) fn signed_by(headers: &HeaderMap, body: &str, secret: &str) -> bool {
    let id = headers["webhook-id"].to_str().unwrap();
    let timestamp: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = sign(secret, id, timestamp, body).unwrap();
    signatures(headers).contains(&expected)
}

/// Issue 18 item 6: endpoints can be changed (URL, events, enabled), their secret rotated
/// (both secrets sign during the grace period, only the new one after), a test event sent,
/// and a delivery resent with the same message id; every change is audited, and another
/// tenant reaches none of it.
#[tokio::test]
async fn endpoints_update_rotate_test_and_resend() {
    let allow = ["--outbound-allow-private".to_owned(), "true".to_owned()];
    for app in apps("webhook_endpoint_management", &allow).await {
        let (url, receiver) = receiver(0).await;
        let tenant = app.signup("rotate@example.com", "Rotate Inc").await;
        let other = app.signup("other@example.com", "Other Inc").await;
        let hooks = format!("/api/v1/tenants/{}/webhooks", tenant.slug);
        let call = |method: Method, path: String, body: Option<Value>| {
            let app = &app;
            let access = tenant.access.clone();
            async move { app.json(method, &path, Some(&access), body).await }
        };
        let created = call(
            Method::POST,
            hooks.clone(),
            Some(json!({"url": url, "events": ["call.completed"]})),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let first_secret = created.body["secret"].as_str().unwrap().to_owned();
        assert_eq!(created.body["enabled"], true);
        let worker = OutboxWorker::new(
            app.state.store.clone(),
            app.state.keyring.clone(),
            reqwest::Client::new(),
            true,
        );
        let received = |n: usize| receiver.received.lock().unwrap()[n].clone();

        // A test event, signed by the only secret.
        let test = call(Method::POST, format!("{hooks}/{id}/test"), None).await;
        assert_eq!(test.status, StatusCode::ACCEPTED, "{}", test.text);
        let first_message = test.body["id"].as_str().unwrap().to_owned();
        assert_eq!(worker.run_once().await.unwrap(), 1);
        let (headers, body) = received(0);
        assert_eq!(headers["webhook-id"], first_message.as_str());
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["type"],
            "webhook.test"
        );
        assert_eq!(signatures(&headers).len(), 1);
        assert!(signed_by(&headers, &body, &first_secret));

        // Rotation with a grace period: the new secret is shown once, both sign meanwhile.
        let rotated = call(
            Method::POST,
            format!("{hooks}/{id}/rotate-secret"),
            Some(json!({"gracePeriodHours": 1})),
        )
        .await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
        let second_secret = rotated.body["secret"].as_str().unwrap().to_owned();
        assert_ne!(second_secret, first_secret);
        assert!(rotated.body["previousSecretExpiresAt"].is_string());
        let listed = call(Method::GET, hooks.clone(), None).await;
        assert!(!listed.text.contains(&second_secret));
        assert!(
            call(Method::POST, format!("{hooks}/{id}/test"), None)
                .await
                .status
                .is_success()
        );
        assert_eq!(worker.run_once().await.unwrap(), 1);
        let (headers, body) = received(1);
        assert_eq!(signatures(&headers).len(), 2);
        assert!(signed_by(&headers, &body, &second_secret));
        assert!(signed_by(&headers, &body, &first_secret));

        // Rotation without a grace period: only the newest secret signs.
        let too_long = call(
            Method::POST,
            format!("{hooks}/{id}/rotate-secret"),
            Some(json!({"gracePeriodHours": 169})),
        )
        .await;
        assert_eq!(
            too_long.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            too_long.text
        );
        let now = call(
            Method::POST,
            format!("{hooks}/{id}/rotate-secret"),
            Some(json!({"gracePeriodHours": 0})),
        )
        .await;
        let third_secret = now.body["secret"].as_str().unwrap().to_owned();
        assert!(
            now.body.get("previousSecretExpiresAt").is_none(),
            "{}",
            now.text
        );
        assert!(
            call(Method::POST, format!("{hooks}/{id}/test"), None)
                .await
                .status
                .is_success()
        );
        assert_eq!(worker.run_once().await.unwrap(), 1);
        let (headers, body) = received(2);
        assert_eq!(signatures(&headers).len(), 1);
        assert!(signed_by(&headers, &body, &third_secret));
        assert!(!signed_by(&headers, &body, &second_secret));
        // A body-less rotation takes the default grace period.
        let default = call(Method::POST, format!("{hooks}/{id}/rotate-secret"), None).await;
        assert_eq!(default.status, StatusCode::OK, "{}", default.text);
        assert!(default.body["previousSecretExpiresAt"].is_string());

        // Resend: the first message again, same webhook-id.
        let resent = call(
            Method::POST,
            format!("{hooks}/deliveries/{first_message}/resend"),
            None,
        )
        .await;
        assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);
        assert_eq!(worker.run_once().await.unwrap(), 1);
        assert_eq!(received(3).0["webhook-id"], first_message.as_str());
        let unknown = call(
            Method::POST,
            format!("{hooks}/deliveries/msg_nope/resend"),
            None,
        )
        .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);

        // Update: events checked, URL and enabled changed; a disabled endpoint takes no test.
        let bad = call(
            Method::PATCH,
            format!("{hooks}/{id}"),
            Some(json!({"events": ["call.exploded"]})),
        )
        .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert_eq!(bad.body["error"]["field"], "events");
        let moved = format!("{url}?v=2");
        let updated = call(
            Method::PATCH,
            format!("{hooks}/{id}"),
            Some(json!({"url": moved, "events": ["*"], "enabled": false})),
        )
        .await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
        assert_eq!(updated.body["url"], moved.as_str());
        assert_eq!(updated.body["events"], json!(["*"]));
        assert_eq!(updated.body["enabled"], false);
        let refused = call(Method::POST, format!("{hooks}/{id}/test"), None).await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
        assert_eq!(refused.body["error"]["code"], "endpoint_disabled");
        let enabled = call(
            Method::PATCH,
            format!("{hooks}/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
        assert_eq!(enabled.body["enabled"], true);
        assert_eq!(enabled.body["url"], moved.as_str());

        // Another tenant reaches none of it.
        let theirs = format!("/api/v1/tenants/{}/webhooks", other.slug);
        for (method, path) in [
            (Method::PATCH, format!("{theirs}/{id}")),
            (Method::POST, format!("{theirs}/{id}/rotate-secret")),
            (Method::POST, format!("{theirs}/{id}/test")),
            (
                Method::POST,
                format!("{theirs}/deliveries/{first_message}/resend"),
            ),
        ] {
            let body = (method == Method::PATCH).then(|| json!({"enabled": false}));
            let reply = app.json(method, &path, Some(&other.access), body).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{path}: {}",
                reply.text
            );
        }

        let audit = call(
            Method::GET,
            format!("/api/v1/tenants/{}/audit-log", tenant.slug),
            None,
        )
        .await;
        let actions: Vec<String> = audit.text.split('"').map(str::to_owned).collect();
        for action in [
            "webhook_endpoint.updated",
            "webhook_endpoint.secret_rotated",
            "webhook_endpoint.test_sent",
            "webhook_delivery.resent",
        ] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} not audited: {}",
                audit.text
            );
        }
        assert!(!audit.text.contains(&third_secret));
        app.finish().await;
    }
}
