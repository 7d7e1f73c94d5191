//! A Ready PhoneNumber is routed at the gateway (so inbound calls reach its tenant at once),
//! and unrouted when it goes. The gateway's internal API is a local stand-in that records calls.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::put;
use kube::api::Api;
use serde_json::{Value, json};
use support::{WriteCounter, context_with_gateway, fake_api_with};
use switchboard_crds::PhoneNumber;
use switchboard_operator::controllers::phone_number;

const NS: &str = "tenant-acme";
const TOKEN: &str = "internal-test-token";

type Calls = Arc<Mutex<Vec<(Method, String, Option<String>, Value)>>>;

async fn record(
    State(calls): State<Calls>,
    method: Method,
    Path(e164): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    calls.lock().unwrap().push((method, e164, auth, body));
    StatusCode::NO_CONTENT
}

async fn gateway_stand_in() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let app = Router::new()
        .route("/internal/v1/numbers/{e164}", put(record).delete(record))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn number(spec: Value, extra_metadata: Value, status: Value) -> PhoneNumber {
    let mut metadata = json!({"name": "main", "namespace": NS});
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), extra_metadata.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": metadata, "spec": spec, "status": status,
    }))
    .unwrap()
}

async fn reconcile(ctx: &Arc<switchboard_operator::controllers::Context>) {
    let current = Api::<PhoneNumber>::namespaced(ctx.client.clone(), NS)
        .get("main")
        .await
        .unwrap();
    phone_number::reconcile(Arc::new(current), ctx.clone())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_ready_number_is_routed_to_its_tenant_at_the_gateway() {
    let (url, calls) = gateway_stand_in().await;
    let tenant = support::tenant("acme", json!({"displayName": "Acme", "plan": "starter"}));
    let client = fake_api_with(
        vec![tenant],
        vec![number(json!({"areaCode": "555"}), json!({}), Value::Null)],
        WriteCounter::default(),
    )
    .await;
    let ctx = context_with_gateway(client.clone(), &url, TOKEN);
    reconcile(&ctx).await; // finalizer
    reconcile(&ctx).await; // purchase

    let stored = Api::<PhoneNumber>::namespaced(client, NS)
        .get("main")
        .await
        .unwrap();
    let e164 = stored.status.unwrap().e164.expect("bought");
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (method, path_e164, auth, body) = &calls[0];
    assert_eq!(method, Method::PUT);
    assert_eq!(path_e164, &e164);
    assert_eq!(auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(
        body,
        &json!({"tenant": "acme", "carrier": "sandbox", "account": "platform"})
    );
}

#[tokio::test]
async fn a_number_going_away_is_unrouted() {
    let (url, calls) = gateway_stand_in().await;
    let tenant = support::tenant("acme", json!({"displayName": "Acme"}));
    let terminating = number(
        json!({"areaCode": "555", "deletionPolicy": "Retain"}),
        json!({
            "finalizers": [phone_number::FINALIZER],
            "deletionTimestamp": "2026-11-21T00:00:00Z",
            "annotations": {switchboard_crds::EXTERNAL_NAME_ANNOTATION: "SB000001"}
        }),
        json!({"e164": "+15550100", "carrier": "sandbox"}),
    );
    let client = fake_api_with(vec![tenant], vec![terminating], WriteCounter::default()).await;
    let ctx = context_with_gateway(client, &url, TOKEN);
    let current = Api::<PhoneNumber>::namespaced(ctx.client.clone(), NS)
        .get("main")
        .await
        .unwrap();
    phone_number::reconcile(Arc::new(current), ctx.clone())
        .await
        .unwrap();

    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, Method::DELETE);
    assert_eq!(calls[0].1, "+15550100");
}

/// A gateway that refuses routes (422 with its error body) until `accept` is set.
async fn refusing_gateway(accept: Arc<std::sync::atomic::AtomicBool>) -> String {
    let app = Router::new().route(
        "/internal/v1/numbers/{e164}",
        put(move || {
            let accept = accept.clone();
            async move {
                if accept.load(std::sync::atomic::Ordering::SeqCst) {
                    return (StatusCode::NO_CONTENT, String::new());
                }
                let body = json!({"error": {"code": "unknown_tenant", "message": "unknown tenant", "field": "tenant"}});
                (StatusCode::UNPROCESSABLE_ENTITY, body.to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_number_the_gateway_refuses_to_route_is_not_ready_and_retried() {
    let accept = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = refusing_gateway(accept.clone()).await;
    let tenant = support::tenant("acme", json!({"displayName": "Acme", "plan": "starter"}));
    let client = fake_api_with(
        vec![tenant],
        vec![number(json!({"areaCode": "555"}), json!({}), Value::Null)],
        WriteCounter::default(),
    )
    .await;
    let ctx = context_with_gateway(client.clone(), &url, TOKEN);
    reconcile(&ctx).await; // finalizer
    let current = Api::<PhoneNumber>::namespaced(client.clone(), NS)
        .get("main")
        .await
        .unwrap();
    let refused = phone_number::reconcile(Arc::new(current), ctx.clone()).await;
    let error = refused.expect_err("a refused route fails the reconcile (retried with backoff)");
    assert!(
        error
            .to_string()
            .contains("gateway rejected the request: unknown tenant"),
        "{error}"
    );

    let numbers = Api::<PhoneNumber>::namespaced(client.clone(), NS);
    let status = numbers.get("main").await.unwrap().status.unwrap();
    let e164 = status.e164.clone().expect("bought once, kept");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False", "{ready:?}");
    assert_eq!(ready.reason, "GatewayRejected");
    assert!(
        ready.message.contains("unknown tenant"),
        "{}",
        ready.message
    );

    // The gateway accepts the route on a retry: the same number turns Ready.
    accept.store(true, std::sync::atomic::Ordering::SeqCst);
    reconcile(&ctx).await;
    let status = numbers.get("main").await.unwrap().status.unwrap();
    assert_eq!(
        status.e164.as_deref(),
        Some(e164.as_str()),
        "nothing bought again"
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True", "{ready:?}");
}
