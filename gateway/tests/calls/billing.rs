//! Stripe: signature checks (any of several v1, 5-minute tolerance), one application per
//! event id, the plan landing on the tenant, Checkout/Portal through a local Stripe stand-in.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard_gateway::billing::stripe_events::sign;

use crate::harness::{TestApp, apps};

const SECRET: &str = "whsec_current";
const OLD_SECRET: &str = "whsec_previous";

async fn stripe_api() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (a, b) = (seen.clone(), seen.clone());
    let router = Router::new()
        .route(
            "/v1/checkout/sessions",
            post(move |body: String| async move {
                a.lock().unwrap().push(("checkout".into(), body));
                axum::Json(
                    json!({"id": "cs_test_1", "url": "https://checkout.stripe.test/cs_test_1"}),
                )
            }),
        )
        .route(
            "/v1/billing_portal/sessions",
            post(move |body: String| async move {
                b.lock().unwrap().push(("portal".into(), body));
                axum::Json(json!({"id": "bps_1", "url": "https://billing.stripe.test/p/1"}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}"), seen)
}

async fn deliver(app: &TestApp, header: String, body: &str) -> StatusCode {
    app.raw(
        Request::post("/api/v1/webhooks/stripe")
            .header("content-type", "application/json")
            .header("stripe-signature", header)
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
    .status
}

fn header(secret: &str, t: i64, body: &str) -> String {
    format!("t={t},v1={}", sign(secret, t, body.as_bytes()))
}

#[tokio::test]
async fn stripe_events_are_verified_applied_once_and_set_the_plan() {
    let (api, seen) = stripe_api().await;
    let extra = vec![
        "--stripe-secret-key".to_owned(),
        "sk_test_123".to_owned(),
        "--stripe-webhook-secrets".to_owned(),
        SECRET.to_owned(),
        "--stripe-api-base".to_owned(),
        api,
        "--stripe-prices".to_owned(),
        "starter=price_starter,professional=price_pro".to_owned(),
    ];
    for app in apps("stripe", &extra).await {
        seen.lock().unwrap().clear();
        let tenant = app.signup("billing@example.com", "Billing Inc").await;
        let now = chrono::Utc::now().timestamp();
        let checkout = json!({"id": "evt_checkout", "type": "checkout.session.completed", "data": {"object": {
            "id": "cs_1", "client_reference_id": tenant.id, "customer": "cus_1", "subscription": "sub_1",
            "metadata": {"plan": "starter"}}}})
        .to_string();

        // Rejected with 4xx and no state change: wrong secret, tampered body, stale timestamp.
        assert_eq!(
            deliver(&app, header("whsec_wrong", now, &checkout), &checkout).await,
            StatusCode::BAD_REQUEST
        );
        let tampered = checkout.replace("starter", "professional");
        assert_eq!(
            deliver(&app, header(SECRET, now, &checkout), &tampered).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            deliver(&app, header(SECRET, now - 301, &checkout), &checkout).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            deliver(&app, String::new(), &checkout).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM stripe_events").await,
            0,
            "{}",
            app.backend
        );
        let status = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/billing/status", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(status.body["plan"], "free", "{}", status.text);

        // Valid during a secret roll: the old secret's v1 first, the current one second.
        let rolled = format!(
            "t={now},v1={},v1={}",
            sign(OLD_SECRET, now, checkout.as_bytes()),
            sign(SECRET, now, checkout.as_bytes())
        );
        assert_eq!(
            deliver(&app, rolled.clone(), &checkout).await,
            StatusCode::OK
        );
        // A redelivery is acknowledged and applied once.
        assert_eq!(deliver(&app, rolled, &checkout).await, StatusCode::OK);
        assert_eq!(app.count("SELECT COUNT(*) FROM stripe_events").await, 1);
        let status = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/billing/status", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(status.body["plan"], "starter", "{}", status.text);
        assert_eq!(status.body["subscription"]["stripeCustomerId"], "cus_1");
        assert_eq!(status.body["usage"]["limits"]["monthlyCalls"], 500);

        // Subscription updated to the professional price, then a failed invoice, then deleted.
        let updated = json!({"id": "evt_upd", "type": "customer.subscription.updated", "data": {"object": {
            "id": "sub_1", "customer": "cus_1", "status": "active",
            "items": {"data": [{"price": {"id": "price_pro"}, "current_period_end": now + 86_400}]}}}})
        .to_string();
        assert_eq!(
            deliver(&app, header(SECRET, now, &updated), &updated).await,
            StatusCode::OK
        );
        let failed = json!({"id": "evt_fail", "type": "invoice.payment_failed", "data": {"object": {"customer": "cus_1"}}}).to_string();
        assert_eq!(
            deliver(&app, header(SECRET, now, &failed), &failed).await,
            StatusCode::OK
        );
        let status = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/billing/status", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(status.body["plan"], "professional", "{}", status.text);
        assert_eq!(
            status.body["subscription"]["subscriptionStatus"],
            "past_due"
        );
        let deleted = json!({"id": "evt_del", "type": "customer.subscription.deleted", "data": {"object": {"id": "sub_1", "customer": "cus_1"}}}).to_string();
        assert_eq!(
            deliver(&app, header(SECRET, now, &deleted), &deleted).await,
            StatusCode::OK
        );
        let status = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/billing/status", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(status.body["plan"], "free");
        // Issue 15 item 12: each plan change by Stripe is in the tenant's audit log.
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE tenant_id = '{}' AND action = 'billing.plan_changed' AND actor_id = 'stripe'",
                tenant.id
            ))
            .await,
            3,
            "{}",
            app.backend
        );

        // Checkout and portal sessions go to Stripe with the documented form fields.
        let session = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/billing/checkout", tenant.slug),
                Some(&tenant.access),
                Some(json!({"plan": "starter"})),
            )
            .await;
        assert_eq!(session.status, StatusCode::OK, "{}", session.text);
        assert_eq!(
            session.body["url"],
            "https://checkout.stripe.test/cs_test_1"
        );
        let portal = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/billing/portal", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(portal.status, StatusCode::OK, "{}", portal.text);
        let calls = seen.lock().unwrap().clone();
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&calls[0].1).unwrap();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("mode").as_deref(), Some("subscription"));
        assert_eq!(
            get("line_items[0][price]").as_deref(),
            Some("price_starter")
        );
        assert_eq!(get("client_reference_id"), Some(tenant.id.clone()));
        assert_eq!(get("customer").as_deref(), Some("cus_1"));
        assert!(calls[1].1.contains("customer=cus_1"));
        let unknown = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/billing/checkout", tenant.slug),
                Some(&tenant.access),
                Some(json!({"plan": "gold"})),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        let _: Value = unknown.body;
        app.finish().await;
    }
}

#[tokio::test]
async fn billed_minutes_are_reported_to_the_stripe_meter_once() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let router = Router::new().route(
        "/v1/billing/meter_events",
        post(move |body: String| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(body);
                axum::Json(json!({"object": "billing.meter_event"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let extra = vec![
        "--stripe-secret-key".to_owned(),
        "sk_test_123".to_owned(),
        "--stripe-webhook-secrets".to_owned(),
        SECRET.to_owned(),
        "--stripe-api-base".to_owned(),
        format!("http://{addr}"),
        "--stripe-meter-event-name".to_owned(),
        "call_minutes".to_owned(),
    ];
    for app in apps("stripe_meter", &extra).await {
        seen.lock().unwrap().clear();
        let tenant = app.signup("meter@example.com", "Meter Inc").await;
        app.route_number("+15550600", &tenant.id, "twilio", "platform")
            .await;
        let now = chrono::Utc::now().timestamp();
        let checkout = json!({"id": "evt_m", "type": "checkout.session.completed", "data": {"object": {
            "client_reference_id": tenant.id, "customer": "cus_m", "subscription": "sub_m", "metadata": {"plan": "starter"}}}})
        .to_string();
        assert_eq!(
            deliver(&app, header(SECRET, now, &checkout), &checkout).await,
            StatusCode::OK
        );
        let token = crate::harness::TWILIO_TOKEN;
        app.twilio_post(
            "/api/v1/webhooks/twilio/voice",
            token,
            &[("CallSid", "CAm"), ("To", "+15550600")],
        )
        .await;
        app.twilio_post(
            "/api/v1/webhooks/twilio/status",
            token,
            &[
                ("CallSid", "CAm"),
                ("To", "+15550600"),
                ("CallStatus", "completed"),
                ("CallDuration", "61"),
            ],
        )
        .await;
        assert_eq!(
            switchboard_gateway::billing::meter::report_once(&app.state)
                .await
                .unwrap(),
            1,
            "{}",
            app.backend
        );
        assert_eq!(
            switchboard_gateway::billing::meter::report_once(&app.state)
                .await
                .unwrap(),
            0
        );
        let bodies = seen.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1);
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&bodies[0]).unwrap();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("event_name").as_deref(), Some("call_minutes"));
        assert_eq!(get("payload[stripe_customer_id]").as_deref(), Some("cus_m"));
        assert_eq!(get("payload[value]").as_deref(), Some("2"));
        assert!(get("identifier").unwrap().starts_with(&tenant.id));
        app.finish().await;
    }
}
