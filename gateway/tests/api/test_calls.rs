//! The console's "call it now": `POST …/agents/{name}/test-calls` records a call of the
//! tenant (carrier `browser`, callee `agent:<name>`), counts it like a call, and answers the
//! media URL and a call token naming the agent under its signature.

use axum::http::StatusCode;
use serde_json::json;

use crate::common::{Options, apps};

#[tokio::test]
async fn a_test_call_is_recorded_counted_and_gets_a_token_naming_its_agent() {
    for app in apps(
        "a_test_call_is_recorded_counted_and_gets_a_token_naming_its_agent",
        Options::default(),
    )
    .await
    {
        let owner = app.signup("test-calls@acme.io", "Test Call Co").await;
        let other = app.signup("test-calls@globex.io", "Globex").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);

        let reply = app
            .post(
                &format!("{t}/agents/default/test-calls"),
                Some(&owner.access),
                json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        let call_id = reply.body["callId"].as_str().unwrap().to_owned();
        assert_eq!(reply.body["agent"], "default");
        let media_url = reply.body["mediaUrl"].as_str().unwrap();
        assert!(
            media_url.starts_with("ws") && media_url.ends_with("/media"),
            "{media_url}"
        );
        assert_eq!(reply.body["mediaFormat"]["encoding"], "audio/x-mulaw");
        assert_eq!(reply.body["mediaFormat"]["sampleRate"], 8000);
        assert!(reply.body["expiresInSeconds"].as_i64().unwrap() > 0);
        let token = reply.body["callToken"].as_str().unwrap();
        let claims = app
            .state
            .call_tokens
            .verify(token, chrono::Utc::now().timestamp())
            .unwrap();
        assert_eq!(claims.agent.as_deref(), Some("default"));
        assert_eq!(claims.call_id, call_id);
        assert_eq!(claims.tenant_id, owner.tenant_id);

        // The record, marked as a test call, and counted against the month's calls.
        let call = app
            .get(&format!("{t}/calls/{call_id}"), &owner.access)
            .await;
        assert_eq!(call.status, StatusCode::OK, "{}", call.text);
        assert_eq!(call.body["carrier"], "browser");
        assert_eq!(call.body["to"], "agent:default");
        assert!(call.body["from"].is_null(), "{}", call.text);
        let usage = app.get(&format!("{t}/usage"), &owner.access).await;
        assert_eq!(usage.status, StatusCode::OK, "{}", usage.text);
        assert_eq!(usage.body["usage"]["callCount"], 1, "{}", usage.text);

        // An agent the tenant does not have; another tenant's member.
        let missing = app
            .post(
                &format!("{t}/agents/nobody/test-calls"),
                Some(&owner.access),
                json!({}),
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
        let foreign = app
            .post(
                &format!("{t}/agents/default/test-calls"),
                Some(&other.access),
                json!({}),
            )
            .await;
        assert!(
            foreign.status == StatusCode::NOT_FOUND || foreign.status == StatusCode::FORBIDDEN,
            "{}",
            foreign.text
        );
        app.finish().await;
    }
}
