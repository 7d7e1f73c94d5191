//! Campaign registration over the internal API, as the operator calls it.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{INTERNAL_TOKEN, apps};

#[tokio::test]
async fn campaigns_register_idempotently_and_report_progress() {
    for app in apps("campaigns", &[]).await {
        let tenant = app.signup("camp@example.com", "Camp Inc").await;
        let path = format!("/internal/v1/tenants/{}/campaigns/spring", tenant.slug);
        let body = |generation: i64, csv: &str| {
            json!({"namespace": format!("tenant-{}", tenant.slug), "uid": "uid-1", "generation": generation,
                "spec": {"fromNumber": "main-line", "contacts": {"configMapRef": {"name": "contacts"}}},
                "fromNumber": "+15550100", "contactsCsv": csv})
        };
        let csv = "phone,name\n+15550001,Ann\nnot-a-number,Bob\n+15550002,Cy\n";
        let missing = app
            .json(
                Method::GET,
                &format!("{path}/progress"),
                Some(INTERNAL_TOKEN),
                None,
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let unauth = app
            .json(Method::PUT, &path, Some("nope"), Some(body(1, csv)))
            .await;
        assert_eq!(unauth.status, StatusCode::UNAUTHORIZED);

        let first = app
            .json(Method::PUT, &path, Some(INTERNAL_TOKEN), Some(body(1, csv)))
            .await;
        assert_eq!(
            first.status,
            StatusCode::OK,
            "{}: {}",
            app.backend,
            first.text
        );
        assert_eq!(first.body["contacts"], 2);
        assert_eq!(first.body["rejected"][0]["row"], 2);
        // Same uid + generation: a no-op.
        let again = app
            .json(
                Method::PUT,
                &path,
                Some(INTERNAL_TOKEN),
                Some(body(1, "phone\n+15550009\n")),
            )
            .await;
        assert_eq!(again.body["contacts"], 2);
        // A new generation adds contacts and keeps known ones.
        let next = app
            .json(
                Method::PUT,
                &path,
                Some(INTERNAL_TOKEN),
                Some(body(2, "phone\n+15550001\n+15550003\n")),
            )
            .await;
        assert_eq!(next.body["contacts"], 3, "{}", next.text);

        let progress = app
            .json(
                Method::GET,
                &format!("{path}/progress"),
                Some(INTERNAL_TOKEN),
                None,
            )
            .await;
        assert_eq!(progress.status, StatusCode::OK, "{}", progress.text);
        assert_eq!(progress.body["phase"], "Running");
        assert_eq!(progress.body["total"], 3);
        assert_eq!(progress.body["pending"], 3);
        assert_eq!(progress.body["inProgress"], 0);

        for _ in 0..2 {
            let stopped = app
                .json(Method::DELETE, &path, Some(INTERNAL_TOKEN), None)
                .await;
            assert_eq!(stopped.status, StatusCode::NO_CONTENT);
        }
        let gone = app
            .json(
                Method::GET,
                &format!("{path}/progress"),
                Some(INTERNAL_TOKEN),
                None,
            )
            .await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        app.finish().await;
    }
}
