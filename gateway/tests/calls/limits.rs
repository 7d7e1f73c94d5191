//! Plan limits: the free plan's 51st call is refused and its 1,001st API request gets 429.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{TWILIO_TOKEN, apps};

const VOICE: &str = "/api/v1/webhooks/twilio/voice";

#[tokio::test]
async fn free_plan_refuses_the_51st_call_and_the_1001st_api_request() {
    for app in apps("limits", &[]).await {
        let tenant = app.signup("limits@example.com", "Limits Inc").await;
        app.route_number("+15550100", &tenant.id, "twilio", "platform")
            .await;

        for i in 0..50 {
            let sid = format!("CA{i:032}");
            let reply = app
                .twilio_post(
                    VOICE,
                    TWILIO_TOKEN,
                    &[
                        ("CallSid", &sid),
                        ("From", "+15557770000"),
                        ("To", "+15550100"),
                    ],
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}: call {i}: {}",
                app.backend,
                reply.text
            );
            assert!(
                reply
                    .text
                    .contains("<Connect><Stream url=\"wss://gateway.test/media\">"),
                "{}",
                reply.text
            );
            assert!(reply.text.contains("name=\"callToken\""));
        }
        // A carrier retry of an admitted call is admitted again without counting twice.
        let retry = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", &format!("CA{:032}", 49)), ("To", "+15550100")],
            )
            .await;
        assert!(retry.text.contains("<Connect>"), "{}", retry.text);

        let refused = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", "CAfifty-first"), ("To", "+15550100")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::OK);
        assert!(
            refused.text.contains("<Say>") && refused.text.contains("<Hangup/>"),
            "{}",
            refused.text
        );
        assert!(!refused.text.contains("<Connect>"));
        assert_eq!(
            app.count("SELECT COUNT(*) FROM calls").await,
            50,
            "{}",
            app.backend
        );
        // The 80 % and 100 % notices were raised once each.
        assert_eq!(
            app.count("SELECT COUNT(*) FROM usage_alerts WHERE metric = 'call_count'")
                .await,
            2
        );

        let usage = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(usage.status, StatusCode::OK, "{}", usage.text);
        assert_eq!(usage.body["usage"]["callCount"], 50);
        assert_eq!(usage.body["limits"]["monthlyCalls"], 50);

        let created = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/api-keys", tenant.slug),
                Some(&tenant.access),
                Some(json!({"name": "ci", "scopes": ["read"]})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let key = created.body["key"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/tenants/{}", tenant.slug);
        for i in 0..1_000 {
            let reply = app.json(Method::GET, &path, Some(&key), None).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}: request {i}: {}",
                app.backend,
                reply.text
            );
        }
        let limited = app.json(Method::GET, &path, Some(&key), None).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text
        );
        assert_eq!(limited.body["error"]["code"], "usage_limit_reached");
        let retry_after: u64 = limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after > 0 && retry_after <= 31 * 86_400);
        // Users (the dashboard) are not metered, so the owner can still see the usage page.
        let usage = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(usage.body["usage"]["apiRequests"], 1_000);
        let history = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/usage/history", tenant.slug),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
        app.finish().await;
    }
}

#[tokio::test]
async fn suspended_tenants_and_unknown_numbers_are_refused_politely() {
    for app in apps("suspended", &[]).await {
        let tenant = app.signup("susp@example.com", "Susp Inc").await;
        app.route_number("+15550101", &tenant.id, "twilio", "platform")
            .await;
        let scope = switchboard_gateway::store::Scope::tenant(&tenant.id);
        let mut tx = app.state.store.write(&scope).await.unwrap();
        let done = sqlx::query("UPDATE tenants SET suspended = $1 WHERE id = $2")
            .bind(true)
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        tx.commit().await.unwrap();
        let reply = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", "CAsusp"), ("To", "+15550101")],
            )
            .await;
        assert!(
            reply.text.contains("not taking calls"),
            "{}: {}",
            app.backend,
            reply.text
        );
        let unknown = app
            .twilio_post(
                VOICE,
                TWILIO_TOKEN,
                &[("CallSid", "CAunknown"), ("To", "+15559999")],
            )
            .await;
        assert!(unknown.text.contains("not in service"), "{}", unknown.text);
        assert_eq!(app.count("SELECT COUNT(*) FROM calls").await, 0);
        app.finish().await;
    }
}
