//! Batched metering of API-key requests: counted in memory, shown on the usage page at once,
//! written in one upsert per tenant by a flush, and written by the flusher's final flush (the
//! shutdown path) so that no count is lost.

use axum::http::StatusCode;
use serde_json::json;
use switchboard_gateway::store::Scope;
use switchboard_gateway::workers::spawn_api_meter_flusher;

use crate::common::{Options, TestApp, apps};

/// `(api_requests summed over months, last_used_at of the key)` as stored, in tenant scope.
async fn stored(app: &TestApp, tenant_id: &str, key_id: &str) -> (i64, Option<i64>) {
    let mut tx = app
        .state
        .store
        .read(&Scope::tenant(tenant_id))
        .await
        .unwrap();
    let months: Vec<i64> =
        sqlx::query_scalar("SELECT api_requests FROM usage_counters WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    let used: Option<i64> =
        sqlx::query_scalar("SELECT last_used_at FROM api_keys WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(key_id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    (months.iter().sum(), used)
}

#[tokio::test]
async fn api_key_requests_are_counted_in_memory_and_flushed_in_batches() {
    for app in apps(
        "api_key_requests_are_counted_in_memory_and_flushed_in_batches",
        Options::default(),
    )
    .await
    {
        let owner = app.signup("meter@acme.io", "Meter Co").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let created = app
            .post(
                &format!("{t}/api-keys"),
                Some(&owner.access),
                json!({"name": "load", "scopes": ["read"]}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let key = created.body["key"].as_str().unwrap().to_owned();
        let key_id = created.body["apiKey"]["id"].as_str().unwrap().to_owned();

        for _ in 0..25 {
            assert_eq!(app.get(&t, &key).await.status, StatusCode::OK);
        }
        // Nothing written yet, but the usage page counts the unflushed requests.
        assert_eq!(
            stored(&app, &owner.tenant_id, &key_id).await,
            (0, None),
            "{}: no write on the request path",
            app.backend
        );
        let usage = app.get(&format!("{t}/usage"), &owner.access).await;
        assert_eq!(usage.body["usage"]["apiRequests"], 25, "{}", usage.text);

        // One flush writes the count and the key's last use.
        assert_eq!(
            app.state
                .api_meter
                .flush(&app.state.store, &app.state.plan_limits)
                .await,
            25
        );
        let (count, used) = stored(&app, &owner.tenant_id, &key_id).await;
        assert_eq!(count, 25, "{}", app.backend);
        assert!(used.is_some(), "{}: last use written", app.backend);
        assert_eq!(
            app.state
                .api_meter
                .flush(&app.state.store, &app.state.plan_limits)
                .await,
            0,
            "nothing left"
        );
        let usage = app.get(&format!("{t}/usage"), &owner.access).await;
        assert_eq!(usage.body["usage"]["apiRequests"], 25, "not counted twice");

        // The flusher's final flush (what `serve` runs after draining on shutdown) writes the
        // requests of the last interval.
        let flusher = spawn_api_meter_flusher(&app.state);
        for _ in 0..10 {
            assert_eq!(app.get(&t, &key).await.status, StatusCode::OK);
        }
        flusher.finish().await;
        assert_eq!(
            stored(&app, &owner.tenant_id, &key_id).await.0,
            35,
            "{}: nothing lost on shutdown",
            app.backend
        );
        let usage = app.get(&format!("{t}/usage"), &owner.access).await;
        assert_eq!(usage.body["usage"]["apiRequests"], 35);

        // Counting goes on after a flush, from the stored value.
        assert_eq!(app.get(&t, &key).await.status, StatusCode::OK);
        assert_eq!(
            app.state
                .api_meter
                .unflushed(&owner.tenant_id, usage.body["period"].as_str().unwrap()),
            1
        );
        app.state
            .api_meter
            .flush(&app.state.store, &app.state.plan_limits)
            .await;
        assert_eq!(stored(&app, &owner.tenant_id, &key_id).await.0, 36);
        app.finish().await;
    }
}
