//! Campaign registration over the internal API, as the operator calls it.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{INTERNAL_TOKEN, Reply, TestApp, apps};

/// The operator's progress read of the campaign at `path`.
async fn read_progress(app: &TestApp, path: &str) -> Reply {
    app.json(
        Method::GET,
        &format!("{path}/progress"),
        Some(INTERNAL_TOKEN),
        None,
    )
    .await
}

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
        let missing = read_progress(&app, &path).await;
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
        // The same registration again changes nothing.
        let again = app
            .json(Method::PUT, &path, Some(INTERNAL_TOKEN), Some(body(1, csv)))
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
        // The same generation with an edited contacts ConfigMap adds the new rows.
        let edited = app
            .json(
                Method::PUT,
                &path,
                Some(INTERNAL_TOKEN),
                Some(body(2, "phone\n+15550001\n+15550003\n+15550004\n")),
            )
            .await;
        assert_eq!(edited.body["contacts"], 4, "{}", edited.text);

        let progress = read_progress(&app, &path).await;
        assert_eq!(progress.status, StatusCode::OK, "{}", progress.text);
        assert_eq!(progress.body["phase"], "Running");
        assert_eq!(progress.body["total"], 4);
        assert_eq!(progress.body["pending"], 4);
        assert_eq!(progress.body["inProgress"], 0);

        for _ in 0..2 {
            let stopped = app
                .json(Method::DELETE, &path, Some(INTERNAL_TOKEN), None)
                .await;
            assert_eq!(stopped.status, StatusCode::NO_CONTENT);
        }
        let gone = read_progress(&app, &path).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_finished_campaign_raises_campaign_finished_once() {
    for app in apps("campaign_finished", &[]).await {
        let tenant = app.signup("fin@example.com", "Fin Inc").await;
        let hook = app
            .json(
                Method::POST,
                &format!("/api/v1/tenants/{}/webhooks", tenant.slug),
                Some(&tenant.access),
                Some(json!({"url": "https://hooks.example.com/hook", "events": ["campaign.finished"]})),
            )
            .await;
        assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.text);
        let path = format!("/internal/v1/tenants/{}/campaigns/done", tenant.slug);
        let body = json!({"namespace": "ns", "uid": "u", "generation": 1,
            "spec": {"fromNumber": "line", "contacts": {"uploaded": true}},
            "fromNumber": "+15550100", "contactsCsv": "phone\n+15550001\n"});
        app.json(Method::PUT, &path, Some(INTERNAL_TOKEN), Some(body.clone()))
            .await;
        // The dialer marks the contact reached.
        let scope = switchboard_gateway::store::Scope::tenant(&tenant.id);
        let mut tx = app.state.store.write(&scope).await.unwrap();
        sqlx::query("UPDATE campaign_contacts SET state = 'completed' WHERE tenant_id = $1")
            .bind(&tenant.id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for _ in 0..2 {
            let progress = read_progress(&app, &path).await;
            assert_eq!(progress.body["phase"], "Completed", "{}", progress.text);
        }
        assert_eq!(
            app.count("SELECT COUNT(*) FROM webhook_outbox WHERE event_type = 'campaign.finished'")
                .await,
            1,
            "{}",
            app.backend
        );
        // Registered again (same or new generation, nothing new): still finished, once.
        for generation in [1, 2] {
            let mut again = body.clone();
            again["generation"] = json!(generation);
            let reply = app
                .json(Method::PUT, &path, Some(INTERNAL_TOKEN), Some(again))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            let progress = read_progress(&app, &path).await;
            assert_eq!(progress.body["phase"], "Completed", "{}", progress.text);
        }
        // A new contact reopens it.
        let mut more = body.clone();
        more["generation"] = json!(2);
        more["contactsCsv"] = json!("phone\n+15550001\n+15550002\n");
        app.json(Method::PUT, &path, Some(INTERNAL_TOKEN), Some(more))
            .await;
        let progress = read_progress(&app, &path).await;
        assert_eq!(progress.body["phase"], "Running", "{}", progress.text);
        assert_eq!(progress.body["pending"], 1);
        assert_eq!(
            app.count("SELECT COUNT(*) FROM webhook_outbox WHERE event_type = 'campaign.finished'")
                .await,
            1
        );
        app.finish().await;
    }
}

/// Issue 18: `GET …/campaigns` lists the tenant's campaigns by name, paged with the
/// `{items, nextCursor}` envelope and an opaque cursor; stopped campaigns and other tenants'
/// are not listed.
#[tokio::test]
async fn campaign_list_is_paged_by_name_and_scoped_to_the_tenant() {
    for app in apps("campaign_list", &[]).await {
        let tenant = app.signup("list@example.com", "List Inc").await;
        let other = app.signup("other@example.com", "Other Inc").await;
        for name in ["gamma", "alpha", "beta", "delta"] {
            let path = format!("/internal/v1/tenants/{}/campaigns/{name}", tenant.slug);
            let body = json!({"namespace": format!("tenant-{}", tenant.slug), "uid": format!("uid-{name}"), "generation": 1,
                "spec": {"fromNumber": "main-line", "contacts": {"configMapRef": {"name": "contacts"}}},
                "fromNumber": "+15550100", "contactsCsv": "phone\n+15550001\n"});
            let registered = app
                .json(Method::PUT, &path, Some(INTERNAL_TOKEN), Some(body))
                .await;
            assert_eq!(registered.status, StatusCode::OK, "{}", registered.text);
        }
        let list = format!("/api/v1/tenants/{}/campaigns", tenant.slug);
        let stopped = app
            .json(
                Method::DELETE,
                &format!("{list}/delta"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert!(stopped.status.is_success(), "{}", stopped.text);

        let first = app
            .json(
                Method::GET,
                &format!("{list}?limit=2"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        let names = |reply: &Reply| -> Vec<String> {
            reply.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names(&first), ["alpha", "beta"]);
        assert_eq!(first.body["items"][0]["fromNumber"], "+15550100");
        assert!(first.body["items"][0]["phase"].is_string());
        assert!(first.body["items"][0]["createdAt"].is_string());
        let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
        assert!(!cursor.contains("beta"), "the cursor is opaque: {cursor}");
        let second = app
            .json(
                Method::GET,
                &format!("{list}?limit=2&cursor={cursor}"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(names(&second), ["gamma"]);
        assert!(second.body["nextCursor"].is_null());

        let bad = app
            .json(
                Method::GET,
                &format!("{list}?cursor=%%%"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        let too_many = app
            .json(
                Method::GET,
                &format!("{list}?limit=500"),
                Some(&tenant.access),
                None,
            )
            .await;
        assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
        let theirs = app
            .json(
                Method::GET,
                &format!("/api/v1/tenants/{}/campaigns", other.slug),
                Some(&other.access),
                None,
            )
            .await;
        assert_eq!(theirs.body["items"], json!([]));
        let peek = app
            .json(Method::GET, &list, Some(&other.access), None)
            .await;
        assert_eq!(peek.status, StatusCode::NOT_FOUND);
        app.finish().await;
    }
}
