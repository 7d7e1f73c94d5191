//! `Idempotency-Key` on creating `POST`s (issue 18): a retry with the same key and body gets
//! the stored answer without a second effect; another body is 422 naming the header; a key
//! still in progress is 409; keys are the caller's and the tenant's own; error answers are not
//! remembered; stored answers are sealed; expired keys are pruned. Number purchases (the
//! expensive case) are in `numbers.rs`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use sqlx::Row;
use switchboard_gateway::idempotency::{Idempotency, LEASE_MS, RETENTION_MS, prune};
use switchboard_gateway::store::idempotency::{self as rows, Claim};
use switchboard_gateway::store::{Scope, now_ms, system};

use crate::common::{Options, Reply, TestApp, apps};

/// `POST path` with a bearer token, an `Idempotency-Key` and a JSON body sent as `raw` text.
pub async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, raw: &str) -> Reply {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(raw.to_owned()))
        .unwrap();
    app.raw(request).await
}

fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

async fn key_rows(app: &TestApp, tenant_id: &str) -> Vec<(String, Option<String>)> {
    let mut tx = app
        .state
        .store
        .read(&Scope::tenant(tenant_id))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT key_hash, ciphertext FROM idempotency_keys")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<Option<String>, _>(1)))
        .collect();
    tx.commit().await.unwrap();
    rows
}

async fn api_key_count(app: &TestApp, tenant_id: &str) -> i64 {
    let mut tx = app
        .state
        .store
        .read(&Scope::tenant(tenant_id))
        .await
        .unwrap();
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    count
}

#[tokio::test]
async fn same_key_same_body_replays_and_other_bodies_are_refused() {
    for app in apps("idempotency_replay", Options::default()).await {
        let owner = app.signup("idem@acme.io", "Idem Co").await;
        let other = app.signup("idem@other.io", "Other Co").await;
        let keys = format!("/api/v1/tenants/{}/api-keys", owner.slug);
        let body = r#"{"name": "CRM", "scopes": ["read"]}"#;

        let first = post_with_key(&app, &keys, &owner.access, "key-1", body).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
        assert!(!replayed(&first));
        let secret = first.body["key"].as_str().unwrap().to_owned();

        // The retry (re-serialised differently) gets the same answer, secret included, and
        // creates nothing.
        let retry = post_with_key(
            &app,
            &keys,
            &owner.access,
            "key-1",
            r#"{"scopes":["read"],"name":"CRM"}"#,
        )
        .await;
        assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
        assert!(replayed(&retry));
        assert_eq!(retry.body, first.body);
        assert_eq!(api_key_count(&app, &owner.tenant_id).await, 1);

        // The stored answer is sealed: the secret is not in the database as such.
        let stored = key_rows(&app, &owner.tenant_id).await;
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].0.contains("key-1"));
        let ciphertext = stored[0].1.clone().unwrap();
        assert!(!ciphertext.contains(&secret) && !ciphertext.contains("CRM"));

        // The same key for another body: 422 naming the header, nothing created.
        let reused = post_with_key(
            &app,
            &keys,
            &owner.access,
            "key-1",
            r#"{"name": "ERP", "scopes": ["read"]}"#,
        )
        .await;
        assert_eq!(
            reused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reused.text
        );
        assert_eq!(reused.body["error"]["code"], "idempotency_key_reused");
        assert_eq!(reused.body["error"]["field"], "Idempotency-Key");
        assert_eq!(api_key_count(&app, &owner.tenant_id).await, 1);

        // Without a key nothing is remembered: two requests, two keys.
        assert_eq!(
            app.post(
                &keys,
                Some(&owner.access),
                json!({"name": "A", "scopes": ["read"]})
            )
            .await
            .status,
            StatusCode::CREATED
        );
        assert_eq!(
            app.post(
                &keys,
                Some(&owner.access),
                json!({"name": "A", "scopes": ["read"]})
            )
            .await
            .status,
            StatusCode::CREATED
        );
        assert_eq!(api_key_count(&app, &owner.tenant_id).await, 3);

        // Keys are the tenant's (and the caller's) own: another tenant's "key-1" is new.
        let theirs = format!("/api/v1/tenants/{}/api-keys", other.slug);
        let elsewhere = post_with_key(&app, &theirs, &other.access, "key-1", body).await;
        assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.text);
        assert!(!replayed(&elsewhere));
        assert_ne!(elsewhere.body["key"], first.body["key"]);
        // An outsider sending the owner's key to the owner's tenant learns nothing.
        let outsider = post_with_key(&app, &keys, &other.access, "key-1", body).await;
        assert_eq!(outsider.status, StatusCode::NOT_FOUND, "{}", outsider.text);

        // Malformed keys are refused before anything runs.
        let long = "k".repeat(256);
        for bad in [long.as_str(), "two words"] {
            let refused = post_with_key(&app, &keys, &owner.access, bad, body).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
            assert_eq!(refused.body["error"]["code"], "invalid_idempotency_key");
            assert_eq!(refused.body["error"]["field"], "Idempotency-Key");
        }
        assert_eq!(api_key_count(&app, &owner.tenant_id).await, 3);
        app.finish().await;
    }
}

#[tokio::test]
async fn keys_in_progress_conflict_errors_release_and_expired_keys_are_pruned() {
    for app in apps("idempotency_in_progress", Options::default()).await {
        let owner = app.signup("busy@acme.io", "Busy Co").await;
        let keys = format!("/api/v1/tenants/{}/api-keys", owner.slug);
        let body = r#"{"name":"CRM","scopes":["read"]}"#;

        // Another request holds "busy" (claimed and running): the second one is refused.
        let running = Idempotency::new(
            &owner.tenant_id,
            format!("user:{}", owner.user_id),
            "busy",
            "POST",
            &keys,
            body.as_bytes(),
        );
        let now = now_ms();
        let scope = Scope::tenant(&owner.tenant_id).with_user(&owner.user_id);
        let mut tx = app.state.store.write(&scope).await.unwrap();
        let claim = rows::claim(
            &mut tx,
            &running.key,
            &running.request_hash,
            &keys,
            now,
            now + LEASE_MS,
            now + RETENTION_MS,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(claim, Claim::Fresh);
        let conflict = post_with_key(&app, &keys, &owner.access, "busy", body).await;
        assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.text);
        assert_eq!(
            conflict.body["error"]["code"],
            "idempotency_key_in_progress"
        );
        assert!(conflict.headers.contains_key("retry-after"));
        assert_eq!(api_key_count(&app, &owner.tenant_id).await, 0);

        // Error answers are not remembered: the key is free for the corrected request.
        let invalid = post_with_key(
            &app,
            &keys,
            &owner.access,
            "fix-me",
            r#"{"name":"CRM","scopes":["root"]}"#,
        )
        .await;
        assert_eq!(
            invalid.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            invalid.text
        );
        let again = post_with_key(
            &app,
            &keys,
            &owner.access,
            "fix-me",
            r#"{"name":"CRM","scopes":["root"]}"#,
        )
        .await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!replayed(&again));
        let fixed = post_with_key(&app, &keys, &owner.access, "fix-me", body).await;
        assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.text);

        // The pruner deletes keys older than 24 hours, and only those.
        assert_eq!(key_rows(&app, &owner.tenant_id).await.len(), 2);
        let mut tx = system::write(&app.state.store).await.unwrap();
        sqlx::query("UPDATE idempotency_keys SET expires_at = $1 WHERE status IS NOT NULL")
            .bind(now_ms() - 1)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(prune(&app.state.store).await.unwrap(), 1);
        assert_eq!(key_rows(&app, &owner.tenant_id).await.len(), 1);
        // The pruned key runs anew.
        let rerun = post_with_key(&app, &keys, &owner.access, "fix-me", body).await;
        assert_eq!(rerun.status, StatusCode::CREATED, "{}", rerun.text);
        assert!(!replayed(&rerun));
        assert_eq!(api_key_count(&app, &owner.tenant_id).await, 2);
        app.finish().await;
    }
}
