//! Every resource command end to end: the real `switchboard` binary against the real gateway
//! (in process, SQLite, numbers from an in-memory sandbox carrier as in standalone mode), each
//! effect checked through the API itself (the CLI's `--json` output is the API's body, and
//! some checks read the API directly). Also the typed client's contract with the gateway's
//! OpenAPI document.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::{PASSWORD, Run, session, start_gateway_with, switchboard};
use switchboard_cli::client::contract::{OPERATIONS, check};

/// Runs the CLI with `--url` and the session in `home`; answers the run.
async fn cli(home: &Path, url: &str, args: &[&str]) -> Run {
    cli_in(home, url, args, &[], None).await
}

async fn cli_in(
    home: &Path,
    url: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Run {
    let mut all = vec!["--url", url];
    all.extend_from_slice(args);
    switchboard(home, &all, env, stdin).await
}

/// Runs with `--json`, asserts success and answers the JSON printed.
async fn ok_json(home: &Path, url: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = cli(home, url, &all).await;
    assert_eq!(
        run.status,
        Some(0),
        "{args:?}\n{}\n{}",
        run.stdout,
        run.stderr
    );
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", run.stdout))
}

/// Runs for people, asserts success and answers standard output.
async fn ok_text(home: &Path, url: &str, args: &[&str]) -> String {
    let run = cli(home, url, args).await;
    assert_eq!(
        run.status,
        Some(0),
        "{args:?}\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// Signs up through the CLI; answers the tenant's slug.
async fn signup(home: &Path, url: &str, email: &str, company: &str) -> String {
    let answer = ok_json(
        home,
        url,
        &[
            "signup",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--name",
            "Test Person",
            "--company",
            company,
        ],
    )
    .await;
    answer["tenant"]["slug"].as_str().unwrap().to_owned()
}

/// The access token of the session in `home`, for checks made through the API directly.
fn token(home: &Path) -> String {
    session(home).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sets a tenant's plan in the gateway's SQLite database (the platform admin API needs a
/// verified e-mail address; the plan is what matters here).
async fn set_plan(home: &Path, slug: &str, plan: &str) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", home.join("gateway.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE tenants SET plan = ? WHERE slug = ?")
        .bind(plan)
        .bind(slug)
        .execute(&mut conn)
        .await
        .unwrap();
}

#[test]
fn the_typed_client_matches_the_gateways_openapi_document() {
    let document = serde_json::to_value(switchboard_gateway::http::openapi_document()).unwrap();
    assert_eq!(document["openapi"], "3.1.0", "the check below reads 3.1");
    let mut problems = Vec::new();
    for operation in OPERATIONS {
        let endpoint = operation.endpoint;
        let name = format!("{} {}", endpoint.verb.openapi(), endpoint.path);
        let Some(described) = document["paths"][endpoint.path].get(endpoint.verb.openapi()) else {
            problems.push(format!("{name}: not in the document"));
            continue;
        };
        let status = operation.status.to_string();
        let Some(response) = described["responses"].get(&status) else {
            problems.push(format!("{name}: no {status} response"));
            continue;
        };
        if let Some(trace) = operation.response {
            let shape = trace().unwrap_or_else(|e| panic!("{name}: {e}"));
            match response.pointer("/content/application~1json/schema") {
                Some(schema) => check(
                    &shape,
                    schema,
                    &document,
                    &format!("{name} -> {status}"),
                    &mut problems,
                ),
                None => problems.push(format!("{name}: {status} has no JSON schema")),
            }
        }
        if let Some(trace) = operation.request {
            let shape = trace().unwrap_or_else(|e| panic!("{name}: {e}"));
            match described.pointer("/requestBody/content/application~1json/schema") {
                Some(schema) => check(
                    &shape,
                    schema,
                    &document,
                    &format!("{name} <-"),
                    &mut problems,
                ),
                None => problems.push(format!("{name}: no JSON request body")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the client disagrees with the API:\n{}",
        problems.join("\n")
    );
    println!(
        "checked {} operations against the OpenAPI document",
        OPERATIONS.len()
    );
}

#[tokio::test]
async fn agents_credentials_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let url = start_gateway_with(home, &[], true).await;
    let slug = signup(home, &url, "agents@example.com", "Agent Co").await;
    set_plan(home, &slug, "professional").await;

    // Agents: create, list, get, update, delete.
    let created = ok_json(
        home,
        &url,
        &[
            "agents",
            "create",
            "sales",
            "--greeting",
            "Hello from sales",
            "--language",
            "en-GB",
        ],
    )
    .await;
    assert_eq!(created["name"], "sales");
    let listed = ok_json(home, &url, &["agents", "list"]).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "sales"]);
    let text = ok_text(home, &url, &["agents", "list"]).await;
    assert!(
        text.contains("sales") && text.contains("Hello from sales"),
        "{text}"
    );
    ok_json(
        home,
        &url,
        &["agents", "update", "sales", "--greeting", "Hi again"],
    )
    .await;
    let got = ok_json(home, &url, &["agents", "get", "sales"]).await;
    assert_eq!(got["greeting"], "Hi again");
    assert_eq!(got["language"], "en-GB");
    let run = cli(home, &url, &["agents", "update", "sales"]).await;
    assert_eq!(
        run.status,
        Some(1),
        "nothing to change is refused before sending"
    );

    // Numbers: buy for the named agent, list, release.
    let bought = ok_json(
        home,
        &url,
        &["numbers", "buy", "--area-code", "555", "--agent", "sales"],
    )
    .await;
    let e164 = bought["e164"].as_str().unwrap().to_owned();
    assert_eq!(bought["agent"], "sales");
    let listed = ok_json(home, &url, &["numbers", "list"]).await;
    assert_eq!(listed["items"][0]["e164"], e164.as_str());
    let text = ok_text(home, &url, &["numbers", "list"]).await;
    assert!(text.contains(&e164) && text.contains("sales"), "{text}");
    // An agent the tenant lacks: the API's error, naming the field, exit 1.
    let run = cli(home, &url, &["numbers", "buy", "--agent", "nobody"]).await;
    assert_eq!(run.status, Some(1));
    assert!(run.stderr.contains("agent"), "{}", run.stderr);
    // The default agent cannot be deleted: the API's message, naming the field.
    let run = cli(home, &url, &["agents", "delete", "default"]).await;
    assert_eq!(run.status, Some(1), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("name: the default agent cannot be deleted"),
        "{}",
        run.stderr
    );
    ok_text(home, &url, &["numbers", "release", &e164]).await;
    let listed = ok_json(home, &url, &["numbers", "list"]).await;
    assert_eq!(listed["items"], json!([]));
    ok_text(home, &url, &["agents", "delete", "sales"]).await;
    let listed = ok_json(home, &url, &["agents", "list"]).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Provider credentials: the secret from standard input, shown masked only.
    let secret = "sk-test-0123456789abcdef";
    let run = cli_in(
        home,
        &url,
        &[
            "--json",
            "credentials",
            "add",
            "--provider",
            "openai",
            "--label",
            "production",
            "--secret-stdin",
        ],
        &[],
        Some(&format!("{secret}\n")),
    )
    .await;
    assert_eq!(run.status, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains(secret), "the secret is never printed");
    let first: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let first_id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(
        first["isDefault"], true,
        "a vendor's first credential is its default"
    );
    let run = cli_in(
        home,
        &url,
        &[
            "--json",
            "provider-keys",
            "add",
            "--provider",
            "openai",
            "--label",
            "staging",
        ],
        &[("SWITCHBOARD_PROVIDER_SECRET", "sk-test-second-key-9876")],
        None,
    )
    .await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    let second: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let second_id = second["id"].as_str().unwrap().to_owned();
    let text = ok_text(home, &url, &["credentials", "list"]).await;
    assert!(
        !text.contains(secret) && text.contains("cdef"),
        "masked: {text}"
    );
    ok_text(home, &url, &["credentials", "set-default", &second_id]).await;
    let listed = ok_json(home, &url, &["credentials", "list"]).await;
    let default_of = |id: &str| {
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["isDefault"]
            .clone()
    };
    assert_eq!(
        (default_of(&first_id), default_of(&second_id)),
        (json!(false), json!(true))
    );
    // A test reaches no vendor from here, but answers a verdict rather than failing.
    let tested = ok_json(home, &url, &["credentials", "test", &first_id]).await;
    assert!(tested["result"].is_string(), "{tested}");
    let run = cli(
        home,
        &url,
        &["credentials", "add", "--provider", "openai", "--label", "x"],
    )
    .await;
    assert_eq!(run.status, Some(1), "no secret given");
    ok_text(home, &url, &["credentials", "delete", &first_id]).await;
    let listed = ok_json(home, &url, &["credentials", "list"]).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn campaigns_create_upload_progress_pause_results_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let url = start_gateway_with(home, &[], true).await;
    let slug = signup(home, &url, "camp@example.com", "Camp Co").await;
    let bought = ok_json(home, &url, &["numbers", "buy"]).await;
    let from = bought["e164"].as_str().unwrap().to_owned();

    // The free plan has no campaigns: the API's refusal is shown, exit 1.
    let run = cli(
        home,
        &url,
        &["campaigns", "create", "spring", "--from-number", &from],
    )
    .await;
    assert_eq!(run.status, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("campaigns"), "{}", run.stderr);
    set_plan(home, &slug, "professional").await;

    let created = ok_json(
        home,
        &url,
        &[
            "campaigns",
            "create",
            "spring",
            "--from-number",
            &from,
            "--calls-per-minute",
            "5",
        ],
    )
    .await;
    assert!(created["phase"].is_string(), "{created}");
    let csv = home.join("contacts.csv");
    std::fs::write(
        &csv,
        "phone,name\n+15550001,Ann\nnot-a-number,Bob\n+15550002,Cy\n",
    )
    .unwrap();
    let csv_arg = csv.display().to_string();
    let text = ok_text(home, &url, &["campaigns", "upload", "spring", &csv_arg]).await;
    assert!(text.starts_with("2 contact(s) stored, 1 refused"), "{text}");
    assert!(
        text.contains("ROW")
            && text
                .lines()
                .any(|l| l.starts_with('2') && l.contains("not-a-number")),
        "the refused row and why: {text}"
    );
    let progress = ok_json(home, &url, &["campaigns", "progress", "spring"]).await;
    assert_eq!(progress["total"], 2, "{progress}");

    ok_text(
        home,
        &url,
        &["campaigns", "pause", "spring", "--from-number", &from],
    )
    .await;
    let listed = ok_json(home, &url, &["campaigns", "list"]).await;
    assert_eq!(listed["items"][0]["name"], "spring");
    assert_eq!(listed["items"][0]["phase"], "Paused", "{listed}");
    ok_text(
        home,
        &url,
        &["campaigns", "resume", "spring", "--from-number", &from],
    )
    .await;
    let listed = ok_json(home, &url, &["campaigns", "list"]).await;
    assert_ne!(listed["items"][0]["phase"], "Paused", "{listed}");

    let results = home.join("results.csv");
    let results_arg = results.display().to_string();
    ok_text(
        home,
        &url,
        &["campaigns", "results", "spring", "--out", &results_arg],
    )
    .await;
    let written = std::fs::read_to_string(&results).unwrap();
    assert!(
        written.contains("+15550001") && written.contains("+15550002"),
        "{written}"
    );
    let printed = ok_text(home, &url, &["campaigns", "results", "spring"]).await;
    assert_eq!(
        printed, written,
        "without --out the CSV goes to standard output"
    );

    ok_text(home, &url, &["campaigns", "stop", "spring"]).await;
    let run = cli(
        home,
        &url,
        &["campaigns", "create", "bad", "--calls-per-minute", "5"],
    )
    .await;
    assert_eq!(run.status, Some(1), "--from-number is required");
    assert!(run.stderr.contains("--from-number"), "{}", run.stderr);
}

#[tokio::test]
async fn api_keys_members_and_invitations() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let url = start_gateway_with(home, &[], true).await;
    let slug = signup(home, &url, "owner@example.com", "Team Co").await;

    // API keys: the key is shown once, works, and stops working once revoked.
    let text = ok_text(
        home,
        &url,
        &["api-keys", "create", "--name", "crm", "--scope", "read"],
    )
    .await;
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once, store it now): "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    let listed = ok_text(home, &url, &["api-keys", "list"]).await;
    assert!(listed.contains("crm") && !listed.contains(&key), "{listed}");
    let keys = ok_json(home, &url, &["api-keys", "list"]).await;
    let id = keys["items"][0]["id"].as_str().unwrap().to_owned();
    let keyhome = home.join("keyhome");
    let env = [
        ("SWITCHBOARD_API_KEY", key.as_str()),
        ("SWITCHBOARD_TENANT", slug.as_str()),
    ];
    let run = cli_in(&keyhome, &url, &["--json", "numbers", "list"], &env, None).await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    ok_text(home, &url, &["api-keys", "revoke", &id]).await;
    let run = cli_in(&keyhome, &url, &["--json", "numbers", "list"], &env, None).await;
    assert_eq!(run.status, Some(1));
    let error: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(error["error"]["status"], 401, "{error}");

    // Invitations: create, list, revoke; a second invitation is accepted.
    let invited = ok_json(
        home,
        &url,
        &["invitations", "create", "--email", "late@example.com"],
    )
    .await;
    let late = invited["id"].as_str().unwrap().to_owned();
    ok_json(
        home,
        &url,
        &[
            "invitations",
            "create",
            "--email",
            "bob@example.com",
            "--role",
            "viewer",
        ],
    )
    .await;
    let text = ok_text(home, &url, &["invitations", "list"]).await;
    assert!(
        text.contains("late@example.com") && text.contains("bob@example.com"),
        "{text}"
    );
    ok_text(home, &url, &["invitations", "revoke", &late]).await;
    let listed = ok_json(home, &url, &["invitations", "list"]).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["email"], "bob@example.com");

    let bob = home.join("bob");
    signup(&bob, &url, "bob@example.com", "Bob Co").await;
    let http = reqwest::Client::new();
    let outbox = home.join("outbox");
    let verified = http
        .post(format!("{url}/api/v1/auth/verify-email"))
        .bearer_auth(token(&bob))
        .json(&json!({"token": mailed_token(&outbox, "bob@example.com", "verify-email?token=")}))
        .send()
        .await
        .unwrap();
    assert!(
        verified.status().is_success(),
        "{}",
        verified.text().await.unwrap()
    );
    let accepted = http
        .post(format!("{url}/api/v1/invitations/accept"))
        .bearer_auth(token(&bob))
        .json(&json!({"token": mailed_token(&outbox, "bob@example.com", "invitations/accept?token=")}))
        .send()
        .await
        .unwrap();
    assert!(
        accepted.status().is_success(),
        "{}",
        accepted.text().await.unwrap()
    );

    // Members: list, change a role by e-mail address, remove.
    let text = ok_text(home, &url, &["members", "list"]).await;
    assert!(
        text.contains("bob@example.com") && text.contains("viewer"),
        "{text}"
    );
    let changed = ok_json(home, &url, &["members", "role", "bob@example.com", "admin"]).await;
    assert_eq!(changed["role"], "admin");
    let run = cli(
        home,
        &url,
        &["members", "role", "bob@example.com", "emperor"],
    )
    .await;
    assert_eq!(run.status, Some(1));
    assert!(
        run.stderr.contains("role"),
        "the API names the field: {}",
        run.stderr
    );
    ok_text(home, &url, &["members", "remove", "bob@example.com"]).await;
    let members = ok_json(home, &url, &["members", "list"]).await;
    assert_eq!(members["items"].as_array().unwrap().len(), 1);
    let run = cli(home, &url, &["members", "remove", "nobody@example.com"]).await;
    assert_eq!(run.status, Some(1));
}

/// The token after `marker` in the newest-matching mail to `to` in the outbox (the gateway
/// writes each message as a JSON file `{to, subject, body}`).
fn mailed_token(outbox: &Path, to: &str, marker: &str) -> String {
    for entry in std::fs::read_dir(outbox).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["to"] != to {
            continue;
        }
        let body = message["body"].as_str().unwrap_or_default();
        if let Some(start) = body.find(marker) {
            let rest = &body[start + marker.len()..];
            return rest.split_whitespace().next().unwrap().to_owned();
        }
    }
    panic!("no mail to {to} with {marker} in {}", outbox.display());
}

#[tokio::test]
async fn calls_usage_billing_and_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let stripe = start_stripe().await;
    let url = start_gateway_with(
        home,
        &[
            "--stripe-secret-key",
            "sk_test_cli",
            "--stripe-api-base",
            &stripe,
            "--stripe-prices",
            "starter=price_starter",
        ],
        true,
    )
    .await;
    signup(home, &url, "bill@example.com", "Bill Co").await;

    let calls = ok_json(home, &url, &["calls", "list"]).await;
    assert_eq!(calls["items"], json!([]));
    let run = cli(home, &url, &["calls", "get", "no-such-call"]).await;
    assert_eq!(run.status, Some(1));
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);

    let usage = ok_json(home, &url, &["usage"]).await;
    assert_eq!(usage["plan"], "free");
    let text = ok_text(home, &url, &["usage"]).await;
    assert!(
        text.contains("plan free") && text.contains("calls 0/50"),
        "{text}"
    );

    let link = ok_text(home, &url, &["billing", "checkout", "--plan", "starter"]).await;
    assert_eq!(
        link.trim(),
        "Open to subscribe: https://checkout.stripe.test/cs_test_cli"
    );
    let run = cli(home, &url, &["billing", "checkout", "--plan", "platinum"]).await;
    assert_eq!(run.status, Some(1), "{}", run.stdout);
    let status = ok_json(home, &url, &["billing", "status"]).await;
    assert_eq!(status["plan"], "free");
    // The portal needs a Stripe customer, which only a checkout completed at Stripe makes.
    let run = cli(home, &url, &["--json", "billing", "portal"]).await;
    assert_eq!(run.status, Some(1), "{}", run.stdout);
    let error: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert!(error["error"]["message"].is_string(), "{error}");

    // Webhooks over the typed client (the full set is in gateway.rs).
    let endpoint = ok_json(
        home,
        &url,
        &[
            "webhooks",
            "create",
            "--endpoint-url",
            "https://hooks.example.com/in",
        ],
    )
    .await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let text = ok_text(home, &url, &["webhooks", "list"]).await;
    assert!(text.contains(&id) && text.contains("enabled"), "{text}");
    let queued = ok_json(home, &url, &["webhooks", "test", &id]).await;
    let text = ok_text(home, &url, &["webhooks", "deliveries"]).await;
    assert!(
        text.contains(queued["id"].as_str().unwrap()) && text.contains("webhook.test"),
        "{text}"
    );
}

/// A stand-in for Stripe's Checkout API.
async fn start_stripe() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/checkout/sessions",
        post(|| async {
            axum::Json(
                json!({"id": "cs_test_cli", "url": "https://checkout.stripe.test/cs_test_cli"}),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}
