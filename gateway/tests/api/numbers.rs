//! The tenant phone-number API with the sandbox carrier attached (standalone mode), on SQLite
//! and, when `DATABASE_URL` points at Postgres, on Postgres as a non-superuser role (so
//! row-level security applies). The full standalone process over real sockets is covered by
//! `tests/tests/e2e_standalone.rs`.

use axum::http::StatusCode;
use serde_json::json;
use switchboard_carriers::SandboxCarrier;

use crate::common::{Options, TestApp, apps};

/// The harness's app with a sandbox carrier attached, as `standalone` does.
fn with_sandbox(mut app: TestApp) -> (TestApp, SandboxCarrier) {
    let sandbox = SandboxCarrier::in_memory();
    app.state.sandbox = Some(sandbox.clone());
    app.router = switchboard_gateway::app(app.state.clone());
    (app, sandbox)
}

#[tokio::test]
async fn buy_list_limit_isolation_and_release() {
    for app in apps("numbers_api", Options::default()).await {
        let (app, sandbox) = with_sandbox(app);
        let acme = app.signup("owner@acme.test", "Acme").await;
        let other = app.signup("owner@other.test", "Other").await;
        let numbers = format!("/api/v1/tenants/{}/numbers", acme.slug);

        let bought = app
            .post(&numbers, Some(&acme.access), json!({"areaCode": "555"}))
            .await;
        assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.text);
        let e164 = bought.body["e164"].as_str().unwrap().to_owned();
        assert_eq!(e164, "+15550100");
        assert_eq!(bought.body["carrier"], "sandbox");
        // Routed at once, to this tenant.
        let route = app.state.numbers.lookup(&e164).unwrap();
        assert_eq!(route.tenant_id, acme.tenant_id);
        assert_eq!(route.carrier, "sandbox");

        let listed = app.get(&numbers, &acme.access).await;
        assert_eq!(listed.status, StatusCode::OK);
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(listed.body["items"][0]["status"], "Ready");

        // Free plan: one number. The second purchase is refused before the carrier is asked.
        let refused = app.post(&numbers, Some(&acme.access), json!({})).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert_eq!(refused.body["error"]["code"], "limit_exceeded");
        assert_eq!(sandbox.purchase_count(), 1);

        // Another tenant neither sees nor releases it.
        let peek = app.get(&numbers, &other.access).await;
        assert_eq!(peek.status, StatusCode::NOT_FOUND);
        let theirs = format!("/api/v1/tenants/{}/numbers", other.slug);
        assert_eq!(
            app.get(&theirs, &other.access).await.body["items"],
            json!([])
        );
        let steal = app.delete(&format!("{theirs}/{e164}"), &other.access).await;
        assert_eq!(steal.status, StatusCode::NOT_FOUND);
        assert!(app.state.numbers.lookup(&e164).is_some());
        assert_eq!(sandbox.owned_numbers().len(), 1);

        // Release: unrouted and back with the carrier; both steps are audited.
        let released = app.delete(&format!("{numbers}/{e164}"), &acme.access).await;
        assert_eq!(released.status, StatusCode::NO_CONTENT, "{}", released.text);
        assert!(app.state.numbers.lookup(&e164).is_none());
        assert!(sandbox.owned_numbers().is_empty());
        let audit = app
            .get(
                &format!("/api/v1/tenants/{}/audit-log", acme.slug),
                &acme.access,
            )
            .await;
        let actions: Vec<_> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(actions.contains(&"number.purchased"), "{actions:?}");
        assert!(actions.contains(&"number.released"), "{actions:?}");

        // The slot is free again.
        let again = app.post(&numbers, Some(&acme.access), json!({})).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
        app.finish().await;
    }
}

#[tokio::test]
async fn without_a_carrier_backend_purchases_are_unavailable() {
    for app in apps("numbers_api_no_backend", Options::default()).await {
        let acme = app.signup("owner@acme.test", "Acme").await;
        let numbers = format!("/api/v1/tenants/{}/numbers", acme.slug);
        let reply = app.post(&numbers, Some(&acme.access), json!({})).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.text
        );
        assert_eq!(app.get(&numbers, &acme.access).await.status, StatusCode::OK);
        let unauthenticated = app
            .call(axum::http::Method::GET, &numbers, None, None)
            .await;
        assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
        app.finish().await;
    }
}

/// Kubernetes mode: `POST` applies a `PhoneNumber` for the operator to buy (202), `GET` shows
/// it pending and then routed, `DELETE` deletes the object (202). Against kube-fake-client's
/// in-memory API server; the operator's part (buying, routing) is played by the test.
#[tokio::test]
async fn kubernetes_mode_applies_and_deletes_phone_number_objects() {
    use kube::api::{Api, Patch, PatchParams};
    use switchboard_crds::phone_number::PhoneNumber;
    use switchboard_gateway::kube::KubeSync;
    use switchboard_gateway::store::numbers::{self, NumberRow};
    use switchboard_gateway::store::system;

    for mut app in apps("numbers_api_kubernetes", Options::default()).await {
        let acme = app.signup("owner@acme.test", "Acme").await;
        let client = kube_fake_client::ClientBuilder::new()
            .with_resource::<PhoneNumber>()
            .with_status_subresource::<PhoneNumber>()
            .build()
            .await
            .unwrap();
        app.state.kube = KubeSync::with_client(client.clone());
        app.router = switchboard_gateway::app(app.state.clone());
        let numbers = format!("/api/v1/tenants/{}/numbers", acme.slug);

        let requested = app
            .post(&numbers, Some(&acme.access), json!({"areaCode": "415"}))
            .await;
        assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.text);
        assert_eq!(requested.body["status"], "Pending");
        let name = requested.body["name"].as_str().unwrap().to_owned();
        let api: Api<PhoneNumber> = Api::namespaced(client.clone(), "tenant-acme");
        let object = api.get(&name).await.unwrap();
        assert_eq!(object.spec.area_code.as_deref(), Some("415"));
        assert_eq!(object.spec.country, "US");
        assert_eq!(
            object.metadata.labels.unwrap()["voice.switchboard.dev/tenant"],
            "acme"
        );

        let listed = app.get(&numbers, &acme.access).await;
        assert_eq!(listed.body["items"][0]["name"], name.as_str());
        assert_eq!(listed.body["items"][0]["status"], "Pending");
        // The pending object already takes the free plan's only slot.
        let second = app.post(&numbers, Some(&acme.access), json!({})).await;
        assert_eq!(second.status, StatusCode::FORBIDDEN, "{}", second.text);
        assert_eq!(second.body["error"]["code"], "limit_exceeded");
        assert_eq!(api.list(&Default::default()).await.unwrap().items.len(), 1);

        // The operator buys it and routes it.
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"e164": "+14155550123"}})),
        )
        .await
        .unwrap();
        let mut tx = system::write(&app.state.store).await.unwrap();
        numbers::upsert(
            &mut tx,
            &NumberRow {
                e164: "+14155550123".into(),
                tenant_id: acme.tenant_id.clone(),
                carrier: "twilio".into(),
                account: "platform".into(),
                agent: None,
                updated_at: 0,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let listed = app.get(&numbers, &acme.access).await;
        assert_eq!(
            listed.body["items"],
            json!([{"e164": "+14155550123", "name": name, "carrier": "twilio", "status": "Ready",
                    "agent": null, "updatedAt": listed.body["items"][0]["updatedAt"]}])
        );

        let unknown = app
            .delete(&format!("{numbers}/+14155550999"), &acme.access)
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let released = app
            .delete(&format!("{numbers}/+14155550123"), &acme.access)
            .await;
        assert_eq!(released.status, StatusCode::ACCEPTED, "{}", released.text);
        assert!(
            api.list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        app.finish().await;
    }
}

/// Issue 18: a purchase retried with the same `Idempotency-Key` (a client that timed out)
/// buys once and gets the first answer again; another body with the key is refused (422).
#[tokio::test]
async fn retried_purchase_with_the_same_key_buys_once() {
    use crate::idempotency::post_with_key;
    for app in apps("numbers_idempotent_purchase", Options::default()).await {
        let (app, sandbox) = with_sandbox(app);
        let acme = app.signup("owner@acme.test", "Acme").await;
        let numbers = format!("/api/v1/tenants/{}/numbers", acme.slug);

        let first = post_with_key(
            &app,
            &numbers,
            &acme.access,
            "buy-1",
            r#"{"areaCode":"555"}"#,
        )
        .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
        for _ in 0..3 {
            let retry = post_with_key(
                &app,
                &numbers,
                &acme.access,
                "buy-1",
                r#"{ "areaCode": "555" }"#,
            )
            .await;
            assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
            assert_eq!(retry.headers["idempotent-replayed"], "true");
            assert_eq!(retry.body, first.body);
        }
        assert_eq!(sandbox.purchase_count(), 1);
        assert_eq!(sandbox.owned_numbers().len(), 1);

        let other_body = post_with_key(
            &app,
            &numbers,
            &acme.access,
            "buy-1",
            r#"{"number":"+15550150"}"#,
        )
        .await;
        assert_eq!(
            other_body.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            other_body.text
        );
        assert_eq!(other_body.body["error"]["field"], "Idempotency-Key");
        assert_eq!(sandbox.purchase_count(), 1);

        // A refusal is not remembered: over the plan's limit now, bought once the slot is free.
        let over = post_with_key(&app, &numbers, &acme.access, "buy-2", "{}").await;
        assert_eq!(over.status, StatusCode::FORBIDDEN, "{}", over.text);
        let e164 = first.body["e164"].as_str().unwrap();
        let released = app.delete(&format!("{numbers}/{e164}"), &acme.access).await;
        assert_eq!(released.status, StatusCode::NO_CONTENT, "{}", released.text);
        let bought = post_with_key(&app, &numbers, &acme.access, "buy-2", "{}").await;
        assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.text);
        assert_eq!(sandbox.purchase_count(), 2);
        app.finish().await;
    }
}

/// Issue 18, Kubernetes mode: the `PhoneNumber`'s name derives from the key, so a retry
/// applies the same object, even when the gateway died between applying it and storing the
/// answer (simulated by deleting the stored key): one object, one purchase by the operator.
#[tokio::test]
async fn kubernetes_mode_retried_purchase_applies_one_phone_number() {
    use kube::api::Api;
    use switchboard_crds::phone_number::PhoneNumber;
    use switchboard_gateway::kube::KubeSync;
    use switchboard_gateway::store::system;

    use crate::idempotency::post_with_key;

    for mut app in apps("numbers_idempotent_kubernetes", Options::default()).await {
        let acme = app.signup("owner@acme.test", "Acme").await;
        let client = kube_fake_client::ClientBuilder::new()
            .with_resource::<PhoneNumber>()
            .with_status_subresource::<PhoneNumber>()
            .build()
            .await
            .unwrap();
        app.state.kube = KubeSync::with_client(client.clone());
        app.router = switchboard_gateway::app(app.state.clone());
        let numbers = format!("/api/v1/tenants/{}/numbers", acme.slug);
        let api: Api<PhoneNumber> = Api::namespaced(client.clone(), "tenant-acme");
        let body = r#"{"areaCode":"415"}"#;

        let first = post_with_key(&app, &numbers, &acme.access, "order-7", body).await;
        assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
        let name = first.body["name"].as_str().unwrap().to_owned();
        assert!(name.starts_with("number-") && name.len() == 23, "{name}");

        let retry = post_with_key(&app, &numbers, &acme.access, "order-7", body).await;
        assert_eq!(retry.status, StatusCode::ACCEPTED, "{}", retry.text);
        assert_eq!(retry.headers["idempotent-replayed"], "true");
        assert_eq!(retry.body["name"], name.as_str());
        assert_eq!(api.list(&Default::default()).await.unwrap().items.len(), 1);

        // The gateway "crashed" after applying: no stored answer. The retry runs again, finds
        // its object by name and answers it (the free plan's one slot is that object, so no
        // limit_exceeded either).
        let mut tx = system::write(&app.state.store).await.unwrap();
        sqlx::query("DELETE FROM idempotency_keys")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let rerun = post_with_key(&app, &numbers, &acme.access, "order-7", body).await;
        assert_eq!(rerun.status, StatusCode::ACCEPTED, "{}", rerun.text);
        assert!(rerun.headers.get("idempotent-replayed").is_none());
        assert_eq!(rerun.body["name"], name.as_str());
        let objects = api.list(&Default::default()).await.unwrap().items;
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].spec.area_code.as_deref(), Some("415"));

        // A new key is a new purchase, refused here by the plan's limit.
        let second = post_with_key(&app, &numbers, &acme.access, "order-8", body).await;
        assert_eq!(second.status, StatusCode::FORBIDDEN, "{}", second.text);
        assert_eq!(api.list(&Default::default()).await.unwrap().items.len(), 1);
        app.finish().await;
    }
}

/// `PATCH …/numbers/{e164}` changes which agent answers a number, in both modes: standalone
/// rewrites the routing row; Kubernetes re-applies the gateway's `PhoneNumber` with the new
/// `spec.agent` (a `PhoneNumber` from a manifest answers 409). An agent the tenant does not
/// have answers 422 naming `agent`.
#[tokio::test]
async fn a_numbers_agent_is_changed_in_both_modes() {
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use switchboard_crds::phone_number::PhoneNumber;
    use switchboard_gateway::kube::KubeSync;

    for app in apps("numbers_agent_change", Options::default()).await {
        let (mut app, _sandbox) = with_sandbox(app);
        app.state.plan_limits = std::sync::Arc::new(
            switchboard_crds::PlanOverrides::parse(Some(
                r#"{"free":{"agents":3,"phoneNumbers":3}}"#,
            ))
            .unwrap(),
        );
        app.router = switchboard_gateway::app(app.state.clone());
        let acme = app.signup("owner@acme.test", "Acme").await;
        let other = app.signup("owner@other.test", "Other").await;
        let agents = format!("/api/v1/tenants/{}/agents", acme.slug);
        let created = app
            .post(&agents, Some(&acme.access), json!({"name": "sales"}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let numbers = format!("/api/v1/tenants/{}/numbers", acme.slug);

        // Standalone: the routing row.
        let bought = app.post(&numbers, Some(&acme.access), json!({})).await;
        assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.text);
        let e164 = bought.body["e164"].as_str().unwrap().to_owned();
        let line = format!("{numbers}/{e164}");
        let unknown = app
            .patch(&line, &acme.access, json!({"agent": "nobody"}))
            .await;
        assert_eq!(
            unknown.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            unknown.text
        );
        assert_eq!(unknown.body["error"]["field"], "agent");
        let missing = app.patch(&line, &acme.access, json!({})).await;
        assert_eq!(
            missing.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            missing.text
        );
        assert_eq!(missing.body["error"]["field"], "agent");
        let changed = app
            .patch(&line, &acme.access, json!({"agent": "sales"}))
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(changed.body["agent"], "sales");
        assert_eq!(
            app.state.numbers.lookup(&e164).unwrap().agent.as_deref(),
            Some("sales")
        );
        let listed = app.get(&numbers, &acme.access).await;
        assert_eq!(listed.body["items"][0]["agent"], "sales");
        // Another tenant cannot touch it, even naming its own agents.
        let foreign = app
            .patch(
                &format!("/api/v1/tenants/{}/numbers/{e164}", other.slug),
                &other.access,
                json!({"agent": null}),
            )
            .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.text);
        let back = app.patch(&line, &acme.access, json!({"agent": null})).await;
        assert_eq!(back.status, StatusCode::OK, "{}", back.text);
        assert_eq!(back.body["agent"], serde_json::Value::Null);
        assert_eq!(app.state.numbers.lookup(&e164).unwrap().agent, None);

        // Kubernetes: the PhoneNumber.
        let client = kube_fake_client::ClientBuilder::new()
            .with_resource::<PhoneNumber>()
            .with_status_subresource::<PhoneNumber>()
            .build()
            .await
            .unwrap();
        app.state.sandbox = None;
        app.state.kube = KubeSync::with_client(client.clone());
        app.router = switchboard_gateway::app(app.state.clone());
        let requested = app
            .post(
                &numbers,
                Some(&acme.access),
                json!({"areaCode": "415", "agent": "sales"}),
            )
            .await;
        assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.text);
        let name = requested.body["name"].as_str().unwrap().to_owned();
        let api: Api<PhoneNumber> = Api::namespaced(client.clone(), "tenant-acme");
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"e164": "+14155550123"}})),
        )
        .await
        .unwrap();
        let k8s_line = format!("{numbers}/+14155550123");
        let refused = app
            .patch(&k8s_line, &acme.access, json!({"agent": "nobody"}))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(
            api.get(&name).await.unwrap().spec.agent.as_deref(),
            Some("sales")
        );
        let changed = app
            .patch(&k8s_line, &acme.access, json!({"agent": "default"}))
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(changed.body["agent"], serde_json::Value::Null);
        let object = api.get(&name).await.unwrap();
        assert_eq!(object.spec.agent, None);
        assert_eq!(
            object.spec.area_code.as_deref(),
            Some("415"),
            "the rest kept"
        );
        let changed = app
            .patch(&k8s_line, &acme.access, json!({"agent": "sales"}))
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
        assert_eq!(
            api.get(&name).await.unwrap().spec.agent.as_deref(),
            Some("sales")
        );

        // A PhoneNumber applied with kubectl keeps its manifest's agent.
        let manifest: PhoneNumber = serde_json::from_value(json!({
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
            "metadata": {"name": "from-git", "namespace": "tenant-acme"},
            "spec": {"number": "+14155550177"}}))
        .unwrap();
        api.create(&PostParams::default(), &manifest).await.unwrap();
        let held = app
            .patch(
                &format!("{numbers}/+14155550177"),
                &acme.access,
                json!({"agent": "sales"}),
            )
            .await;
        assert_eq!(held.status, StatusCode::CONFLICT, "{}", held.text);
        assert_eq!(held.body["error"]["field"], "agent");
        assert_eq!(api.get("from-git").await.unwrap().spec.agent, None);
        app.finish().await;
    }
}
