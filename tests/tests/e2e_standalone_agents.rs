//! Standalone parity of agents (issue 14 items 5 and 6): the embedded runtime answers each
//! tenant's numbers with that tenant's agents.
//!
//! Two tenants sign up; Acme gets a named agent `sales` and buys a number answered by it,
//! Globex changes its default agent and buys a number. A simulated call to each number is
//! answered by that number's agent: the first thing the agent says (the call's transcript, as
//! the runtime reported it) is that agent's greeting. The agents API checks names, counts
//! the plan's limit and refuses unknown agents on numbers.

use std::net::SocketAddr;
use std::path::Path;

use clap::Parser;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_cli::call::{self, CallOptions};
use switchboard_cli::commands::Context;
use switchboard_cli::progress::Progress;
use switchboard_cli::session::SessionStore;
use switchboard_cli::webhook::WebhookTarget;
use switchboard_gateway::Config;
use switchboard_gateway::standalone::{self, Running, StandaloneArgs};

const PASSWORD: &str = "correct horse battery staple";
const CALLER: &str = "+15551234567";
const ACME_SALES: &str = "Acme sales, how can I help?";
const ACME_DEFAULT: &str = "Welcome to Acme.";
const GLOBEX_DEFAULT: &str = "Globex here, what can I do for you?";

#[derive(Parser)]
struct GatewayFlags {
    #[command(flatten)]
    config: Config,
}

async fn start(data_dir: &Path) -> Running {
    let mut config = GatewayFlags::try_parse_from(["switchboard-gateway"])
        .unwrap()
        .config;
    config.database_url = switchboard_gateway::config::DEFAULT_DATABASE_URL.to_owned();
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.metrics_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.public_url = "http://localhost:8080".to_owned();
    // The free plan has one agent (the default); two here, so Acme may add one.
    config.voice.plan_limits = Some(r#"{"free":{"agents":2}}"#.to_owned());
    let args = StandaloneArgs {
        data_dir: data_dir.to_owned(),
        runtime_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    standalone::start(&args, config).await.unwrap()
}

struct Tenant {
    slug: String,
    token: String,
}

async fn sign_up(running: &Running, home: &Path, email: &str, company: &str) -> Tenant {
    let mut cli = Context::new(
        running.public_url(),
        SessionStore::at(home.join("session.json")),
        None,
    )
    .unwrap();
    let signed_up = cli.signup(email, PASSWORD, "Owner", company).await.unwrap();
    let session: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("session.json")).unwrap()).unwrap();
    Tenant {
        slug: signed_up.value.tenant.expect("signup names the tenant"),
        token: session["access_token"].as_str().unwrap().to_owned(),
    }
}

async fn api(
    running: &Running,
    tenant: &Tenant,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!(
        "{}/api/v1/tenants/{}{path}",
        running.public_url(),
        tenant.slug
    );
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(&tenant.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Places a simulated call to `to` and returns what the agent said first, from the call's
/// transcript once the runtime's events have arrived.
async fn first_words(running: &Running, tenant: &Tenant, to: &str) -> String {
    let options = CallOptions {
        webhook: WebhookTarget {
            base_url: running.public_url().to_owned(),
            signed_base_url: running.public_url().to_owned(),
            auth_token: running.sandbox_auth_token().unwrap().to_owned(),
        },
        from: CALLER.to_owned(),
        to: to.to_owned(),
        account_sid: None,
        caller_audio: switchboard_cli::audio::speech_like(0.8),
        trailing_silence_seconds: 1.0,
        idle_seconds: 1.5,
        max_seconds: 15.0,
        media_url: None,
        status_callback: true,
    };
    let report = call::run(&options, None, &Progress::new(false))
        .await
        .unwrap();
    assert!(report.agent_messages > 0, "the agent sent no audio");
    for _ in 0..100 {
        let (status, page) = api(running, tenant, Method::GET, "/calls", None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let call = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["to"] == to && !c["endedAt"].is_null())
            .cloned();
        if let Some(call) = call {
            let id = call["id"].as_str().unwrap();
            let (_, transcript) = api(
                running,
                tenant,
                Method::GET,
                &format!("/calls/{id}/transcript"),
                None,
            )
            .await;
            let said = transcript["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["role"] == "agent")
                .and_then(|t| t["text"].as_str())
                .map(str::to_owned);
            if let Some(said) = said {
                return said;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the call to {to} never showed what the agent said");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_two_numbers_two_agents_heard() {
    let data = tempfile::tempdir().unwrap();
    let (home_a, home_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let running = start(data.path()).await;
    let acme = sign_up(&running, home_a.path(), "ada@acme.example", "Acme").await;
    let globex = sign_up(&running, home_b.path(), "hank@globex.example", "Globex").await;

    // Acme: a default agent and a named one, checked field by field.
    let (status, body) = api(
        &running,
        &acme,
        Method::PATCH,
        "/agents/default",
        Some(json!({"greeting": ACME_DEFAULT, "endOfTurnSilenceMs": 300})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api(
        &running,
        &acme,
        Method::POST,
        "/agents",
        Some(json!({"name": "Sales Team", "greeting": ACME_SALES})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "name");
    let (status, body) = api(
        &running,
        &acme,
        Method::POST,
        "/agents",
        Some(json!({"name": "sales", "greeting": ACME_SALES, "llm": {"modle": "x"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "llm.modle");
    let (status, body) = api(
        &running,
        &acme,
        Method::POST,
        "/agents",
        Some(json!({"name": "sales", "greeting": ACME_SALES, "endOfTurnSilenceMs": 300})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "sales");
    assert_eq!(body["greeting"], ACME_SALES);
    // The plan allows two agents, the default included.
    let (status, body) = api(
        &running,
        &acme,
        Method::POST,
        "/agents",
        Some(json!({"name": "support"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "limit_exceeded");
    let (_, list) = api(&running, &acme, Method::GET, "/agents", None).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "sales"], "{list}");
    assert!(list["nextCursor"].is_null());
    // Another tenant's agents are not Acme's.
    let (status, _) = api(&running, &globex, Method::GET, "/agents/sales", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Numbers: Acme's is answered by `sales`; an unknown agent is refused.
    let (status, body) = api(
        &running,
        &globex,
        Method::POST,
        "/numbers",
        Some(json!({"areaCode": "555", "agent": "sales"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "agent");
    let (status, body) = api(
        &running,
        &acme,
        Method::POST,
        "/numbers",
        Some(json!({"areaCode": "555", "agent": "sales"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["agent"], "sales");
    let acme_number = body["e164"].as_str().unwrap().to_owned();

    // Globex: its default agent answers its number.
    let (status, body) = api(
        &running,
        &globex,
        Method::PATCH,
        "/agents/default",
        Some(json!({"greeting": GLOBEX_DEFAULT, "endOfTurnSilenceMs": 300})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api(
        &running,
        &globex,
        Method::POST,
        "/numbers",
        Some(json!({"areaCode": "555"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let globex_number = body["e164"].as_str().unwrap().to_owned();

    running.reload_agents().await.unwrap();
    assert_eq!(
        first_words(&running, &acme, &acme_number).await,
        ACME_SALES,
        "Acme's number names the sales agent"
    );
    assert_eq!(
        first_words(&running, &globex, &globex_number).await,
        GLOBEX_DEFAULT,
        "Globex's number gets Globex's default agent"
    );

    // Deleting the agent a number names hands the number to the default agent.
    let (status, _) = api(&running, &acme, Method::DELETE, "/agents/sales", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api(&running, &acme, Method::DELETE, "/agents/default", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    running.reload_agents().await.unwrap();
    let said = first_words_of_second_call(&running, &acme, &acme_number).await;
    assert_eq!(said, ACME_DEFAULT);

    running.shutdown().await;
}

/// [`first_words`] for a number already called once: waits for the second call's transcript.
async fn first_words_of_second_call(running: &Running, tenant: &Tenant, to: &str) -> String {
    let (_, before) = api(running, tenant, Method::GET, "/calls", None).await;
    let known: Vec<Value> = before["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["id"].clone())
        .collect();
    let options = CallOptions {
        webhook: WebhookTarget {
            base_url: running.public_url().to_owned(),
            signed_base_url: running.public_url().to_owned(),
            auth_token: running.sandbox_auth_token().unwrap().to_owned(),
        },
        from: CALLER.to_owned(),
        to: to.to_owned(),
        account_sid: None,
        caller_audio: switchboard_cli::audio::speech_like(0.8),
        trailing_silence_seconds: 1.0,
        idle_seconds: 1.5,
        max_seconds: 15.0,
        media_url: None,
        status_callback: true,
    };
    call::run(&options, None, &Progress::new(false))
        .await
        .unwrap();
    for _ in 0..100 {
        let (_, page) = api(running, tenant, Method::GET, "/calls", None).await;
        let call = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| !known.contains(&c["id"]) && !c["endedAt"].is_null())
            .cloned();
        if let Some(call) = call {
            let id = call["id"].as_str().unwrap();
            let (_, transcript) = api(
                running,
                tenant,
                Method::GET,
                &format!("/calls/{id}/transcript"),
                None,
            )
            .await;
            if let Some(said) = transcript["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["role"] == "agent")
                .and_then(|t| t["text"].as_str())
            {
                return said.to_owned();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the second call to {to} never showed what the agent said");
}
