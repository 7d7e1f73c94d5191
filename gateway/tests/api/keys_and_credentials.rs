//! Customer API keys (shown once, hashed, scoped, last-used, revocable) and provider
//! credentials (encrypted, masked, one default per vendor).

use axum::http::StatusCode;
use serde_json::json;
use sqlx::Row;
use switchboard_gateway::store::Scope;

use crate::common::{Options, apps};

#[tokio::test]
async fn api_keys_work_as_bearer_tokens_within_their_scopes() {
    for app in apps(
        "api_keys_work_as_bearer_tokens_within_their_scopes",
        Options::default(),
    )
    .await
    {
        let owner = app.signup("keys@acme.io", "Key Co").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let created = app
            .post(
                &format!("{t}/api-keys"),
                Some(&owner.access),
                json!({"name": "CRM", "scopes": ["read"]}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        let read_key = created.body["key"].as_str().unwrap().to_owned();
        let read_id = created.body["apiKey"]["id"].as_str().unwrap().to_owned();
        assert!(read_key.starts_with("sbk_"));
        assert!(read_key.starts_with(created.body["apiKey"]["prefix"].as_str().unwrap()));

        // The key is never shown again, and only its hash is stored.
        let listed = app.get(&format!("{t}/api-keys"), &owner.access).await;
        assert!(!listed.text.contains(&read_key));
        assert_eq!(listed.body["items"][0]["scopes"], json!(["read"]));
        assert!(listed.body["items"][0]["lastUsedAt"].is_null());
        let mut tx = app
            .state
            .store
            .read(&Scope::tenant(&owner.tenant_id))
            .await
            .unwrap();
        let stored: Vec<String> = sqlx::query("SELECT key_hash FROM api_keys")
            .fetch_all(&mut *tx)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        tx.commit().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].contains(&read_key) && stored[0].len() == 64);

        // A read key reads, by slug or id, and nothing more.
        assert_eq!(app.get(&t, &read_key).await.status, StatusCode::OK);
        assert_eq!(
            app.get(&format!("/api/v1/tenants/{}", owner.tenant_id), &read_key)
                .await
                .status,
            StatusCode::OK
        );
        let me = app.get("/api/v1/auth/me", &read_key).await;
        assert_eq!(me.body["apiKeyId"], read_id.as_str());
        assert_eq!(
            app.patch(&t, &read_key, json!({"name": "x"})).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.get(&format!("{t}/credentials"), &read_key).await.status,
            StatusCode::FORBIDDEN
        );
        // Key uses are written with the API-request meter's batch (every second in `serve`;
        // this harness runs no ticker, so flush by hand).
        app.state
            .api_meter
            .flush(&app.state.store, &app.state.plan_limits)
            .await;
        let listed = app.get(&format!("{t}/api-keys"), &owner.access).await;
        assert!(
            listed.body["items"][0]["lastUsedAt"].is_string(),
            "use is recorded: {}",
            listed.text
        );

        // An admin key administers, but cannot mint keys or accept invitations.
        let admin = app
            .post(
                &format!("{t}/api-keys"),
                Some(&owner.access),
                json!({"name": "ops", "scopes": ["admin"]}),
            )
            .await;
        let admin_key = admin.body["key"].as_str().unwrap().to_owned();
        assert_eq!(
            app.patch(&t, &admin_key, json!({"name": "Renamed by key"}))
                .await
                .status,
            StatusCode::OK
        );
        let minted = app
            .post(
                &format!("{t}/api-keys"),
                Some(&admin_key),
                json!({"name": "child", "scopes": ["admin"]}),
            )
            .await;
        assert_eq!(minted.status, StatusCode::FORBIDDEN);
        let bad_scope = app
            .post(
                &format!("{t}/api-keys"),
                Some(&owner.access),
                json!({"name": "x", "scopes": ["root"]}),
            )
            .await;
        assert_eq!(bad_scope.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad_scope.body["error"]["field"], "scopes");

        // Revocation takes effect at once; revoking twice is a 404.
        assert_eq!(
            app.delete(&format!("{t}/api-keys/{read_id}"), &owner.access)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        let refused = app.get(&t, &read_key).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused.body["error"]["code"], "invalid_api_key");
        assert_eq!(
            app.delete(&format!("{t}/api-keys/{read_id}"), &owner.access)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Tampered keys are refused.
        let mut tampered = admin_key.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            app.get(&t, &tampered).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.get(&t, "sbk_nonsense").await.status,
            StatusCode::UNAUTHORIZED
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn provider_credentials_are_encrypted_masked_and_defaulted() {
    for app in apps(
        "provider_credentials_are_encrypted_masked_and_defaulted",
        Options::default(),
    )
    .await
    {
        let owner = app.signup("creds@acme.io", "Cred Co").await;
        let t = format!("/api/v1/tenants/{}/credentials", owner.slug);
        let secret_a = "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAA1234";
        let secret_b = "sk-proj-BBBBBBBBBBBBBBBBBBBBBBBBBBBB5678";
        let a = app
            .post(
                &t,
                Some(&owner.access),
                json!({"provider": "openai", "label": "main", "secret": secret_a}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        assert_eq!(
            a.body["isDefault"], true,
            "first of its vendor becomes default"
        );
        assert_eq!(a.body["maskedSecret"], "••••1234");
        assert!(!a.text.contains(secret_a));
        let a_id = a.body["id"].as_str().unwrap().to_owned();
        let b = app.post(&t, Some(&owner.access), json!({"provider": "openai", "label": "backup", "secret": secret_b, "metadata": {"org": "o-1"}})).await;
        assert_eq!(b.body["isDefault"], false);
        assert_eq!(b.body["metadata"]["org"], "o-1");
        let b_id = b.body["id"].as_str().unwrap().to_owned();
        let short = app
            .post(
                &t,
                Some(&owner.access),
                json!({"provider": "deepgram", "label": "dg", "secret": "tiny-key"}),
            )
            .await;
        assert_eq!(
            short.body["maskedSecret"], "••••",
            "short secrets are fully masked"
        );

        let duplicate = app
            .post(
                &t,
                Some(&owner.access),
                json!({"provider": "openai", "label": "main", "secret": "x"}),
            )
            .await;
        assert_eq!(duplicate.status, StatusCode::CONFLICT);
        assert_eq!(duplicate.body["error"]["field"], "label");
        let vendor = app
            .post(
                &t,
                Some(&owner.access),
                json!({"provider": "acme-ai", "label": "x", "secret": "x"}),
            )
            .await;
        assert_eq!(vendor.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(vendor.body["error"]["field"], "provider");
        let empty = app
            .post(
                &t,
                Some(&owner.access),
                json!({"provider": "groq", "label": "x", "secret": "  "}),
            )
            .await;
        assert_eq!(empty.body["error"]["field"], "secret");

        // Switching the default moves it; at most one default per vendor.
        let switched = app
            .patch(
                &format!("{t}/{b_id}"),
                &owner.access,
                json!({"isDefault": true}),
            )
            .await;
        assert_eq!(switched.status, StatusCode::OK, "{}", switched.text);
        let list = app.get(&t, &owner.access).await;
        let defaults: Vec<&str> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["provider"] == "openai" && c["isDefault"] == true)
            .map(|c| c["label"].as_str().unwrap())
            .collect();
        assert_eq!(defaults, ["backup"]);
        assert!(!list.text.contains(secret_a) && !list.text.contains(secret_b));

        // Rotate a secret; the database holds only ciphertext, readable with the master key.
        let rotated = app
            .patch(
                &format!("{t}/{a_id}"),
                &owner.access,
                json!({"secret": "sk-proj-CCCCCCCCCCCCCCCCCCCCCCCCCCCC9999", "label": "primary"}),
            )
            .await;
        assert_eq!(rotated.body["maskedSecret"], "••••9999");
        assert_eq!(rotated.body["label"], "primary");
        let mut tx = app
            .state
            .store
            .read(&Scope::tenant(&owner.tenant_id))
            .await
            .unwrap();
        let rows = sqlx::query("SELECT ciphertext, key_id FROM provider_credentials")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for row in &rows {
            let ciphertext: String = row.get(0);
            assert!(!ciphertext.contains("sk-proj") && !ciphertext.contains("tiny-key"));
            assert_eq!(row.get::<String, _>(1), app.state.keyring.current_key_id());
        }
        let decrypted =
            switchboard_gateway::provider_keys::load_decrypted(&app.state, &owner.tenant_id)
                .await
                .unwrap();
        let secrets: Vec<String> = decrypted
            .iter()
            .map(|(_, s)| String::from_utf8(s.clone()).unwrap())
            .collect();
        assert!(secrets.contains(&"sk-proj-CCCCCCCCCCCCCCCCCCCCCCCCCCCC9999".to_owned()));
        assert!(secrets.contains(&secret_b.to_owned()));

        assert_eq!(
            app.get(&format!("{t}/{a_id}"), &owner.access).await.body["label"],
            "primary"
        );
        assert_eq!(
            app.delete(&format!("{t}/{a_id}"), &owner.access)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            app.get(&format!("{t}/{a_id}"), &owner.access).await.status,
            StatusCode::NOT_FOUND
        );

        // Audit entries name the actions, never the secrets.
        let audit = app
            .get(
                &format!("/api/v1/tenants/{}/audit-log", owner.slug),
                &owner.access,
            )
            .await;
        assert!(
            audit.text.contains("credential.created")
                && audit.text.contains("credential.updated")
                && audit.text.contains("credential.deleted")
        );
        assert!(!audit.text.contains("sk-proj") && !audit.text.contains("tiny-key"));
        app.finish().await;
    }
}

#[tokio::test]
async fn tenant_agent_configuration_is_patched_and_validated() {
    for app in apps(
        "tenant_agent_configuration_is_patched_and_validated",
        Options::default(),
    )
    .await
    {
        let owner = app.signup("agent@acme.io", "Agent Co").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let patched = app.patch(&t, &owner.access, json!({"name": "Agent Company", "agent": {"greeting": "Hi there", "llm": {"provider": "groq", "model": "llama-3.3-70b-versatile"}}})).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
        assert_eq!(patched.body["name"], "Agent Company");
        assert_eq!(patched.body["agent"]["greeting"], "Hi there");
        assert_eq!(patched.body["agent"]["llm"]["provider"], "groq");
        assert_eq!(patched.body["kubernetes"], false);
        assert!(patched.body["readiness"].is_null());
        let read = app.get(&t, &owner.access).await;
        assert_eq!(
            read.body["agent"]["llm"]["model"],
            "llama-3.3-70b-versatile"
        );
        assert_eq!(
            read.body["agent"]["language"], "en-US",
            "untouched fields keep their values"
        );

        let unknown = app
            .patch(&t, &owner.access, json!({"agent": {"llm": {"modle": "x"}}}))
            .await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(unknown.body["error"]["field"], "agent.llm.modle");
        let invalid = app
            .patch(&t, &owner.access, json!({"agent": {"maxCallSeconds": 5}}))
            .await;
        assert_eq!(invalid.body["error"]["field"], "agent.maxCallSeconds");
        let turn = app
            .patch(
                &t,
                &owner.access,
                json!({"agent": {"turnTaking": {"bargeInConfirmMs": 5}}}),
            )
            .await;
        assert_eq!(
            turn.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            turn.text
        );
        assert_eq!(turn.body["error"]["field"], "agent.turnTaking");
        assert!(
            turn.text.contains("bargeInConfirmMs"),
            "the message names the setting: {}",
            turn.text
        );
        let top = app
            .patch(&t, &owner.access, json!({"plan": "enterprise"}))
            .await;
        assert_eq!(top.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            top.body["error"]["field"], "plan",
            "the plan is not customer-editable"
        );
        let unchanged = app.get(&t, &owner.access).await;
        assert_eq!(unchanged.body["plan"], "free");
        app.finish().await;
    }
}
