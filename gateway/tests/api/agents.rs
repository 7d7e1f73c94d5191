//! Named agents over the API, and checking a stored credential against its vendor (issue 14
//! item 5). The vendors are local HTTP servers answering as OpenAI (`GET /v1/models` with a
//! Bearer key) and Twilio (`GET /Accounts/{sid}.json` with basic auth) do.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::json;

use crate::common::{Options, apps};

const GOOD_KEY: &str = "sk-good-0123456789abcdef";
const BAD_KEY: &str = "sk-bad-0123456789abcdef";

/// A vendor accepting [`GOOD_KEY`] (Bearer, or as Twilio's auth token) and refusing others.
async fn fake_vendor() -> String {
    fn bearer_ok(headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {GOOD_KEY}"))
    }
    async fn models(headers: HeaderMap) -> (StatusCode, &'static str) {
        if bearer_ok(&headers) {
            (StatusCode::OK, r#"{"object":"list","data":[]}"#)
        } else {
            (
                StatusCode::UNAUTHORIZED,
                r#"{"error":{"message":"Incorrect API key"}}"#,
            )
        }
    }
    async fn account(headers: HeaderMap) -> StatusCode {
        use base64::Engine;
        let expected =
            base64::engine::general_purpose::STANDARD.encode(format!("AC123:{GOOD_KEY}"));
        let ok = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Basic {expected}"));
        if ok {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        }
    }
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/2010-04-01/Accounts/AC123.json", get(account));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

#[tokio::test]
async fn credentials_are_tested_against_their_vendor_without_leaking_the_key() {
    let vendor = fake_vendor().await;
    // A port nothing listens on: bind, note, drop.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let options = Options {
        provider_api_bases: vec![format!("openai={vendor}/v1"), format!("groq={closed}/v1")],
        twilio_api_base: Some(format!("{vendor}/2010-04-01")),
        outbound_allow_private: true,
        ..Options::default()
    };
    for app in apps(
        "credentials_are_tested_against_their_vendor_without_leaking_the_key",
        options,
    )
    .await
    {
        let owner = app.signup("keys@acme.io", "Key Co").await;
        let t = format!("/api/v1/tenants/{}/credentials", owner.slug);
        let store = |body: serde_json::Value| {
            let app = &app;
            let t = &t;
            let token = owner.access.clone();
            async move {
                let reply = app.post(t, Some(&token), body).await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
                reply.body["id"].as_str().unwrap().to_owned()
            }
        };
        let test = |id: String| {
            let app = &app;
            let t = &t;
            let token = owner.access.clone();
            async move {
                app.post(&format!("{t}/{id}/test"), Some(&token), json!({}))
                    .await
            }
        };
        let good = store(json!({"provider": "openai", "label": "good", "secret": GOOD_KEY})).await;
        let bad = store(json!({"provider": "openai", "label": "bad", "secret": BAD_KEY})).await;
        let down = store(json!({"provider": "groq", "label": "down", "secret": GOOD_KEY})).await;
        let compatible = store(json!({"provider": "openai-compatible", "label": "vllm",
            "secret": GOOD_KEY, "metadata": {"base_url": format!("{vendor}/v1")}}))
        .await;
        let twilio = store(
            json!({"provider": "twilio", "label": "main", "secret": GOOD_KEY,
            "metadata": {"account_sid": "AC123"}}),
        )
        .await;

        for (id, result, status) in [
            (good, "ok", Some(200u64)),
            (bad, "rejected", Some(401)),
            (down, "unreachable", None),
            (compatible, "ok", Some(200)),
            (twilio, "ok", Some(200)),
        ] {
            let reply = test(id).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            assert_eq!(
                reply.body["result"], result,
                "{} {}",
                app.backend, reply.text
            );
            assert_eq!(reply.body["vendorStatus"].as_u64(), status);
            assert!(!reply.text.contains(GOOD_KEY) && !reply.text.contains(BAD_KEY));
        }

        // openai-compatible is bound to its server: no base_url, no credential.
        let reply = app
            .post(
                &t,
                Some(&owner.access),
                json!({"provider": "openai-compatible", "label": "nourl", "secret": GOOD_KEY}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], "metadata.base_url");
        let missing = app
            .post(&format!("{t}/nope/test"), Some(&owner.access), json!({}))
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        app.finish().await;
    }
}

#[tokio::test]
async fn named_agents_are_validated_limited_and_scoped_to_their_tenant() {
    for app in apps(
        "named_agents_are_validated_limited_and_scoped_to_their_tenant",
        Options::default(),
    )
    .await
    {
        let owner = app.signup("agents@acme.io", "Agent Co").await;
        let other = app.signup("agents@globex.io", "Globex").await;
        let t = format!("/api/v1/tenants/{}/agents", owner.slug);
        // The free plan allows one agent: the default one.
        let reply = app
            .post(&t, Some(&owner.access), json!({"name": "sales"}))
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
        assert_eq!(reply.body["error"]["code"], "limit_exceeded");
        let reply = app
            .post(&t, Some(&owner.access), json!({"name": "default"}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], "name");
        // The default agent is edited here like the tenant's `agent`, errors naming the field.
        let reply = app
            .patch(
                &format!("{t}/default"),
                &owner.access,
                json!({"greeting": "Hi", "language": "English"}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], "language");
        let reply = app
            .patch(
                &format!("{t}/default"),
                &owner.access,
                json!({"greeting": "Hi"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let tenant = app
            .get(&format!("/api/v1/tenants/{}", owner.slug), &owner.access)
            .await;
        assert_eq!(tenant.body["agent"]["greeting"], "Hi");
        let listed = app.get(&t, &owner.access).await;
        assert_eq!(listed.body["items"][0]["name"], "default");
        assert_eq!(listed.body["items"][0]["greeting"], "Hi");
        assert!(listed.body["nextCursor"].is_null());
        // Another tenant's member sees nothing of it.
        let foreign = app.get(&t, &other.access).await;
        assert!(
            foreign.status == StatusCode::NOT_FOUND || foreign.status == StatusCode::FORBIDDEN,
            "{}",
            foreign.text
        );
        let deleted = app.delete(&format!("{t}/default"), &owner.access).await;
        assert_eq!(deleted.status, StatusCode::CONFLICT);
        app.finish().await;
    }
}

/// Issue 14 item 5: agent edits arriving at once (creations, merge patches of the default
/// agent's fields, a tenant rename that rewrites the row) are applied one after the other on
/// the tenant row as locked, so none loses another's change.
#[tokio::test]
async fn concurrent_agent_edits_lose_nothing() {
    for mut app in apps("concurrent_agent_edits_lose_nothing", Options::default()).await {
        // Room for the agents created below.
        app.state.plan_limits = std::sync::Arc::new(
            switchboard_crds::PlanOverrides::parse(Some(r#"{"free":{"agents":20}}"#)).unwrap(),
        );
        app.router = switchboard_gateway::app(app.state.clone());
        let owner = app.signup("race@acme.io", "Race Co").await;
        let t = format!("/api/v1/tenants/{}/agents", owner.slug);
        let default = format!("{t}/default");
        let tenant = format!("/api/v1/tenants/{}", owner.slug);
        let creates = (0..8).map(|i| {
            app.post(
                &t,
                Some(&owner.access),
                json!({"name": format!("agent-{i}"), "greeting": format!("Agent {i}")}),
            )
        });
        let patches = [
            json!({"greeting": "Hello from the race"}),
            json!({"systemPrompt": "Be brief."}),
            json!({"endOfTurnSilenceMs": 300}),
            json!({"transferNumber": "+15550199"}),
        ]
        .into_iter()
        .map(|patch| app.patch(&default, &owner.access, patch));
        let (created, patched, renamed) = tokio::join!(
            futures::future::join_all(creates),
            futures::future::join_all(patches),
            app.patch(&tenant, &owner.access, json!({"name": "Race Renamed"})),
        );
        for reply in created {
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        }
        for reply in patched {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        }
        assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);

        let listed = app.get(&format!("{t}?limit=100"), &owner.access).await;
        let items = listed.body["items"].as_array().unwrap();
        let names: Vec<&str> = items.iter().filter_map(|a| a["name"].as_str()).collect();
        for i in 0..8 {
            assert!(
                names.contains(&format!("agent-{i}").as_str()),
                "agent-{i} lost: {names:?}"
            );
        }
        let agent = app.get(&default, &owner.access).await.body;
        assert_eq!(agent["greeting"], "Hello from the race", "{agent}");
        assert_eq!(agent["systemPrompt"], "Be brief.", "{agent}");
        assert_eq!(agent["endOfTurnSilenceMs"], 300, "{agent}");
        assert_eq!(agent["transferNumber"], "+15550199", "{agent}");
        let view = app.get(&tenant, &owner.access).await.body;
        assert_eq!(view["name"], "Race Renamed", "{view}");
        app.finish().await;
    }
}
