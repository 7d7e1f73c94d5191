//! The client against the real gateway (router on SQLite, in process, over real HTTP):
//! account commands, and a simulated call through the real voice webhook (signature checked
//! with the sandbox auth token over the public URL) and the real media proxy to a runtime
//! stand-in. Token refresh and session scoping run against a small stand-in whose access
//! token has "expired" on purpose. The resource commands' tests are in `resources.rs`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

mod support;

use support::{PASSWORD, session, start_gateway, switchboard};

#[tokio::test]
async fn signup_whoami_tenants_logout_and_login_against_the_real_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_gateway(dir.path(), &[]).await;
    let home = dir.path();

    let run = switchboard(
        home,
        &[
            "--url",
            &url,
            "signup",
            "--email",
            "Alice@Example.com",
            "--password",
            PASSWORD,
            "--name",
            "Alice",
            "--company",
            "Acme Voice",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(run.status, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.trim(),
        format!(
            "Signed up alice@example.com with tenant acme-voice (plan free). Logged in to {url}."
        )
    );
    let stored = session(home).unwrap();
    assert_eq!(stored["url"], url.as_str());
    assert_eq!(stored["tenant"], "acme-voice");
    assert_eq!(stored["email"], "alice@example.com");
    let access = stored["access_token"].as_str().unwrap().to_owned();
    assert!(!run.stdout.contains(&access), "tokens are never printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(home.join("config/switchboard/session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The stored URL is used when --url is not given.
    let run = switchboard(home, &["whoami"], &[], None).await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("alice@example.com (e-mail not verified)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("* acme-voice"), "{}", run.stdout);
    assert!(run.stdout.contains("owner"), "{}", run.stdout);
    let run = switchboard(home, &["--json", "whoami"], &[], None).await;
    let me: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(me["tenants"][0]["slug"], "acme-voice");
    assert_eq!(me["user"]["email"], "alice@example.com");

    let run = switchboard(home, &["tenants", "list"], &[], None).await;
    assert!(run.stdout.starts_with("* acme-voice"), "{}", run.stdout);
    let run = switchboard(home, &["tenants", "use", "someone-else"], &[], None).await;
    assert_eq!(run.status, Some(1));
    assert!(
        run.stderr.contains("not a member of tenant `someone-else`"),
        "{}",
        run.stderr
    );

    // The API's errors, field and code included.
    let run = switchboard(
        home,
        &[
            "signup",
            "--email",
            "alice@example.com",
            "--password",
            PASSWORD,
            "--name",
            "A",
            "--company",
            "Other",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(run.status, Some(1));
    assert!(
        run.stderr
            .contains("email: an account with this e-mail address exists (email_taken, HTTP 409)"),
        "{}",
        run.stderr
    );
    let run = switchboard(
        home,
        &[
            "signup",
            "--email",
            "bob@example.com",
            "--password",
            "short",
            "--name",
            "B",
            "--company",
            "Bob Co",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(run.status, Some(1));
    assert!(run.stderr.contains("password: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("(weak_password, HTTP 422)"),
        "{}",
        run.stderr
    );
    // A failed signup keeps the existing session.
    assert_eq!(session(home).unwrap()["access_token"], access.as_str());

    let run = switchboard(home, &["logout"], &[], None).await;
    assert_eq!((run.status, run.stdout.trim()), (Some(0), "Logged out."));
    assert!(session(home).is_none());
    // The gateway ended the session: the old token no longer works.
    let me = reqwest::Client::new()
        .get(format!("{url}/api/v1/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), reqwest::StatusCode::UNAUTHORIZED);
    let run = switchboard(home, &["--url", &url, "whoami"], &[], None).await;
    assert_eq!(run.status, Some(1));
    assert!(run.stderr.contains("not logged in"), "{}", run.stderr);

    let run = switchboard(
        home,
        &[
            "--url",
            &url,
            "login",
            "--email",
            "alice@example.com",
            "--password",
            "wrong password here",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(run.status, Some(1));
    assert!(
        run.stderr
            .contains("e-mail address or password is wrong (invalid_credentials, HTTP 401)"),
        "{}",
        run.stderr
    );
    let run = switchboard(
        home,
        &[
            "--url",
            &url,
            "--json",
            "login",
            "--email",
            "alice@example.com",
            "--password",
            "wrong password here",
        ],
        &[],
        None,
    )
    .await;
    let error: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(error["error"]["code"], "invalid_credentials");
    assert_eq!(error["error"]["status"], 401);

    // Password from the environment, and from standard input.
    let run = switchboard(
        home,
        &["--url", &url, "login", "--email", "alice@example.com"],
        &[("SWITCHBOARD_PASSWORD", PASSWORD)],
        None,
    )
    .await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("as alice@example.com (tenant acme-voice)"),
        "{}",
        run.stdout
    );
    let run = switchboard(
        home,
        &[
            "--url",
            &url,
            "login",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    let run = switchboard(home, &["whoami"], &[], None).await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
}

/// A stand-in for the numbers API and token refresh: `at-1` has expired, `rt-1` renews it.
#[derive(Clone, Default)]
struct Standin {
    authorizations: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    idempotency_keys: Arc<Mutex<Vec<String>>>,
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": {"code": "invalid_token", "message": "access token expired"}})),
    )
        .into_response()
}

async fn numbers_post(
    State(s): State<Standin>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let auth = bearer(&headers);
    s.authorizations.lock().unwrap().push(auth.clone());
    s.idempotency_keys.lock().unwrap().push(
        headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );
    if auth != "Bearer at-2" {
        return unauthorized();
    }
    s.bodies.lock().unwrap().push(body);
    (
        StatusCode::CREATED,
        axum::Json(
            json!({"name": "n-1", "e164": "+15550100", "carrier": "sandbox", "status": "Ready"}),
        ),
    )
        .into_response()
}

async fn numbers_get(State(s): State<Standin>, headers: HeaderMap) -> Response {
    let auth = bearer(&headers);
    s.authorizations.lock().unwrap().push(auth.clone());
    if auth != "Bearer at-2" {
        return unauthorized();
    }
    axum::Json(json!({"items": [{"name": "n-1", "e164": "+15550100", "carrier": "sandbox", "status": "Ready"}], "nextCursor": null}))
        .into_response()
}

async fn refresh(State(s): State<Standin>, axum::Json(body): axum::Json<Value>) -> Response {
    s.bodies.lock().unwrap().push(body.clone());
    if body["refreshToken"] == "rt-1" {
        axum::Json(json!({"accessToken": "at-2", "tokenType": "Bearer", "expiresIn": 900, "refreshToken": "rt-2", "refreshTokenExpiresAt": "2026-12-21T00:00:00.000Z"})).into_response()
    } else {
        unauthorized()
    }
}

async fn start_standin() -> (String, Standin) {
    let standin = Standin::default();
    let app = Router::new()
        .route(
            "/api/v1/tenants/acme/numbers",
            post(numbers_post).get(numbers_get),
        )
        .route("/api/v1/auth/refresh", post(refresh))
        .with_state(standin.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), standin)
}

#[tokio::test]
async fn numbers_refresh_an_expired_token_once_and_tokens_stay_with_their_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (url, standin) = start_standin().await;
    let path = home.join("config/switchboard");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(
        path.join("session.json"),
        json!({"url": url, "access_token": "at-1", "refresh_token": "rt-1", "tenant": "acme"})
            .to_string(),
    )
    .unwrap();

    let run = switchboard(home, &["numbers", "buy", "--area-code", "555"], &[], None).await;
    assert_eq!(run.status, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "Bought +15550100 for tenant acme (Ready)."
    );
    assert_eq!(
        *standin.authorizations.lock().unwrap(),
        vec!["Bearer at-1".to_owned(), "Bearer at-2".to_owned()],
        "one attempt, one refresh, one retry"
    );
    // The purchase carries an Idempotency-Key, the same on the retry after the refresh.
    let keys = standin.idempotency_keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].len() >= 16 && keys[0] == keys[1], "{keys:?}");
    assert_eq!(
        *standin.bodies.lock().unwrap(),
        vec![json!({"refreshToken": "rt-1"}), json!({"areaCode": "555"})]
    );
    let stored = session(home).unwrap();
    assert_eq!(
        (
            stored["access_token"].as_str(),
            stored["refresh_token"].as_str()
        ),
        (Some("at-2"), Some("rt-2"))
    );

    let run = switchboard(home, &["numbers", "list"], &[], None).await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    let row = run.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with("+15550100"), "{}", run.stdout);
    assert!(run.stdout.contains("Ready"), "{}", run.stdout);
    let run = switchboard(
        home,
        &["--json", "numbers", "list", "--tenant", "acme"],
        &[],
        None,
    )
    .await;
    let listed: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(listed["items"][0]["e164"], "+15550100");

    // Another gateway never sees this session's tokens.
    let (other_url, other) = start_standin().await;
    let run = switchboard(
        home,
        &["--url", &other_url, "numbers", "list", "--tenant", "acme"],
        &[],
        None,
    )
    .await;
    assert_eq!(run.status, Some(1));
    assert!(run.stderr.contains("not logged in"), "{}", run.stderr);
    assert!(other.authorizations.lock().unwrap().is_empty());

    // A refresh token that no longer works ends the local session.
    std::fs::write(
        path.join("session.json"),
        json!({"url": url, "access_token": "at-1", "refresh_token": "rt-stale", "tenant": "acme"})
            .to_string(),
    )
    .unwrap();
    let run = switchboard(home, &["numbers", "list"], &[], None).await;
    assert_eq!(run.status, Some(1));
    assert!(run.stderr.contains("not logged in"), "{}", run.stderr);
    assert!(session(home).is_none());
}

/// What the runtime stand-in saw of the proxied stream.
#[derive(Clone, Default)]
struct RuntimeSeen {
    /// The gateway's base URL, for reporting events (set once the gateway runs).
    gateway: Arc<Mutex<String>>,
    start: Arc<Mutex<Option<Value>>>,
    media: Arc<Mutex<usize>>,
    marks: Arc<Mutex<Vec<String>>>,
}

/// A runtime stand-in behind the gateway's media proxy: after 25 caller frames it speaks
/// 25 frames (500 ms), sends mark `bye`, and once the mark comes back reports two transcript
/// turns to the gateway's internal API (as the runtime does) and hangs up.
async fn start_runtime() -> (String, RuntimeSeen) {
    use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    async fn talk(mut socket: WebSocket, seen: RuntimeSeen) {
        let mut stream_sid = String::new();
        while let Some(Ok(Message::Text(text))) = socket.recv().await {
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            match value["event"].as_str() {
                Some("start") => {
                    stream_sid = value["streamSid"].as_str().unwrap().to_owned();
                    *seen.start.lock().unwrap() = Some(value);
                }
                Some("media") => {
                    let count = {
                        let mut media = seen.media.lock().unwrap();
                        *media += 1;
                        *media
                    };
                    if count == 25 {
                        use base64::Engine as _;
                        let payload =
                            base64::engine::general_purpose::STANDARD.encode([0x10u8; 160]);
                        for _ in 0..25 {
                            let frame = json!({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}});
                            socket
                                .send(Message::Text(frame.to_string().into()))
                                .await
                                .unwrap();
                        }
                        let mark = json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": "bye"}});
                        socket
                            .send(Message::Text(mark.to_string().into()))
                            .await
                            .unwrap();
                    }
                }
                Some("mark") => {
                    seen.marks
                        .lock()
                        .unwrap()
                        .push(value["mark"]["name"].as_str().unwrap().to_owned());
                    report_transcript(&seen).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                _ => {}
            }
        }
    }
    async fn report_transcript(seen: &RuntimeSeen) {
        let start = seen.start.lock().unwrap().clone().unwrap();
        let custom = &start["start"]["customParameters"];
        let turn = |index: u32, role: &str, text: &str, offset: u64| {
            json!({
                "id": uuid::Uuid::new_v4().to_string(), "tenant": custom["tenant"],
                "callId": custom["callId"], "occurredAt": "2026-11-21T06:00:00Z",
                "type": "transcriptTurn", "index": index, "role": role, "text": text,
                "interrupted": false, "offsetMs": offset
            })
        };
        let batch = json!({"events": [
            turn(0, "caller", "[utterance 0.5s]", 0),
            turn(1, "agent", "You said something.", 520),
        ]});
        let gateway = seen.gateway.lock().unwrap().clone();
        let reply = reqwest::Client::new()
            .post(format!("{gateway}/internal/v1/events"))
            .bearer_auth("internal-secret-for-tests")
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert!(
            reply.status().is_success(),
            "{}",
            reply.text().await.unwrap()
        );
    }
    let seen = RuntimeSeen::default();
    let state = seen.clone();
    let app = Router::new().route(
        "/media/twilio",
        axum::routing::any(move |upgrade: WebSocketUpgrade| {
            let seen = state.clone();
            async move { upgrade.on_upgrade(move |socket| talk(socket, seen)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("ws://{address}"), seen)
}

/// A 1 s, 8 kHz caller WAV.
fn caller_wav(dir: &Path) -> String {
    let path = dir.join("caller.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for n in 0..8_000 {
        writer
            .write_sample(if n % 16 < 8 { 3000i16 } else { -3000 })
            .unwrap();
    }
    writer.finalize().unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_simulated_call_passes_the_real_webhook_signature_check_and_media_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (runtime_url, runtime) = start_runtime().await;
    let url = start_gateway(
        home,
        &[
            "--sandbox-auth-token",
            "sandbox-secret-for-tests",
            "--internal-token",
            "internal-secret-for-tests",
            "--runtime-url",
            &runtime_url,
        ],
    )
    .await;
    *runtime.gateway.lock().unwrap() = url.clone();
    let run = switchboard(
        home,
        &[
            "--url",
            &url,
            "signup",
            "--email",
            "carol@example.com",
            "--password",
            PASSWORD,
            "--name",
            "Carol",
            "--company",
            "Carol Calls",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    // The operator's part: route the sandbox number to the tenant.
    let routed = reqwest::Client::new()
        .put(format!("{url}/internal/v1/numbers/+15550100"))
        .bearer_auth("internal-secret-for-tests")
        .json(&json!({"tenant": "carol-calls", "carrier": "sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(routed.status(), reqwest::StatusCode::NO_CONTENT);

    let audio = caller_wav(home);
    let out = home.join("agent.wav");
    let out_arg = out.display().to_string();
    let call = |token: &'static str, to: &'static str| {
        let (audio, out_arg) = (audio.clone(), out_arg.clone());
        async move {
            switchboard(
                home,
                &[
                    "call",
                    "--to",
                    to,
                    "--audio",
                    &audio,
                    "--out",
                    &out_arg,
                    "--say-silence-seconds",
                    "0.2",
                    "--idle-seconds",
                    "2",
                    "--max-seconds",
                    "15",
                ],
                &[("SWITCHBOARD_SANDBOX_AUTH_TOKEN", token)],
                None,
            )
            .await
        }
    };

    // A wrong token: the gateway's 403 is shown.
    let run = call("not-the-sandbox-token", "+15550100").await;
    assert_eq!(run.status, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("(invalid_signature, HTTP 403)"),
        "{}",
        run.stderr
    );

    // An unknown number: the gateway's polite refusal, exit 3.
    let run = call("sandbox-secret-for-tests", "+15550177").await;
    assert_eq!(run.status, Some(3), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("not in service"), "{}", run.stderr);

    // The real thing: signed webhook accepted, stream proxied both ways, agent hangs up.
    let run = call("sandbox-secret-for-tests", "+15550100").await;
    assert_eq!(run.status, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary = run.stdout.lines().last().unwrap();
    assert!(summary.contains("(the agent hung up)"), "{summary}");
    assert!(
        summary.contains("heard 0.50s of agent audio (1 turn)"),
        "{summary}"
    );
    // The transcript the runtime reported, read back from the call record.
    assert!(
        run.stdout
            .contains("transcript:\n  caller: [utterance 0.5s]\n  agent: You said something.\n"),
        "{}",
        run.stdout
    );
    let start = runtime
        .start
        .lock()
        .unwrap()
        .clone()
        .expect("the runtime got the start message");
    let custom = &start["start"]["customParameters"];
    assert_eq!(custom["tenant"], "carol-calls");
    assert!(custom["callToken"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(custom["callId"].as_str().is_some());
    assert!(*runtime.media.lock().unwrap() >= 25);
    assert_eq!(*runtime.marks.lock().unwrap(), vec!["bye".to_owned()]);
    let reader = hound::WavReader::open(&out).unwrap();
    assert_eq!(reader.len(), 25 * 160);

    // The call record: completed, with its duration.
    let run = switchboard(home, &["--json", "calls", "list"], &[], None).await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    let calls: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let record = &calls["items"][0];
    assert_eq!(record["to"], "+15550100");
    assert_eq!(record["status"], "completed", "{record}");
    let run = switchboard(home, &["calls", "list"], &[], None).await;
    assert!(run.stdout.contains("+15550100"), "{}", run.stdout);

    // The signed status callback closed the call record: one call, one billed minute.
    let run = switchboard(home, &["usage"], &[], None).await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("(plan free): calls 1/50, minutes 1/100"),
        "{}",
        run.stdout
    );
}

/// `SWITCHBOARD_API_KEY` authenticates tenant commands without a login session (issue 18):
/// against the real gateway, a key created by the owner lists the tenant's numbers; a wrong
/// key is refused with the API's error.
#[tokio::test]
async fn an_api_key_from_the_environment_authenticates_without_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let url = start_gateway(home, &[]).await;
    let http = reqwest::Client::new();
    let signed: Value = http
        .post(format!("{url}/api/v1/auth/signup"))
        .json(&json!({"email": "keys@acme.io", "password": PASSWORD, "name": "Key Owner", "company": "Key Co"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = signed["tokens"]["accessToken"].as_str().unwrap().to_owned();
    let slug = signed["tenant"]["slug"].as_str().unwrap().to_owned();
    let created: Value = http
        .post(format!("{url}/api/v1/tenants/{slug}/api-keys"))
        .bearer_auth(&access)
        .json(&json!({"name": "cli", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();

    // No session file at all: the key alone.
    assert!(session(home).is_none());
    let run = switchboard(
        home,
        &["--url", &url, "--json", "numbers", "list"],
        &[("SWITCHBOARD_API_KEY", &key), ("SWITCHBOARD_TENANT", &slug)],
        None,
    )
    .await;
    assert_eq!(run.status, Some(0), "{}\n{}", run.stdout, run.stderr);
    let listed: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(listed["items"], json!([]));
    assert!(session(home).is_none(), "an API key is never stored");

    let run = switchboard(
        home,
        &[
            "--url", &url, "--json", "numbers", "list", "--tenant", &slug,
        ],
        &[("SWITCHBOARD_API_KEY", "sbk_not_a_real_key")],
        None,
    )
    .await;
    assert_eq!(run.status, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("invalid_api_key") || run.stderr.contains("invalid_api_key"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// The webhook and campaign commands over the real gateway, authenticated with an admin API
/// key: create (secret shown once), list, update, rotate, test, deliveries, resend, delete;
/// campaigns list (every page).
#[tokio::test]
async fn webhook_and_campaign_commands_against_the_real_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let url = start_gateway(home, &[]).await;
    let http = reqwest::Client::new();
    let signed: Value = http
        .post(format!("{url}/api/v1/auth/signup"))
        .json(&json!({"email": "hooks@acme.io", "password": PASSWORD, "name": "Hook Owner", "company": "Hook Co"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = signed["tokens"]["accessToken"].as_str().unwrap().to_owned();
    let slug = signed["tenant"]["slug"].as_str().unwrap().to_owned();
    let created: Value = http
        .post(format!("{url}/api/v1/tenants/{slug}/api-keys"))
        .bearer_auth(&access)
        .json(&json!({"name": "ops", "scopes": ["admin"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let env = [
        ("SWITCHBOARD_API_KEY", key.as_str()),
        ("SWITCHBOARD_TENANT", slug.as_str()),
    ];
    let json_run = |args: Vec<String>| {
        let url = url.clone();
        async move {
            let mut all = vec!["--url".to_owned(), url, "--json".to_owned()];
            all.extend(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let run = switchboard(home, &refs, &env, None).await;
            assert_eq!(
                run.status,
                Some(0),
                "{all:?}\n{}\n{}",
                run.stdout,
                run.stderr
            );
            serde_json::from_str::<Value>(run.stdout.trim()).unwrap_or(Value::Null)
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let endpoint = json_run(args(&[
        "webhooks",
        "create",
        "--endpoint-url",
        "https://hooks.example.com/in",
        "--event",
        "call.completed",
    ]))
    .await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    let listed = json_run(args(&["webhooks", "list"])).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert!(listed["items"][0].get("secret").is_none());
    let updated = json_run(args(&["webhooks", "update", &id, "--enabled", "false"])).await;
    assert_eq!(updated["enabled"], false);
    let updated = json_run(args(&[
        "webhooks",
        "update",
        &id,
        "--enabled",
        "true",
        "--event",
        "*",
    ]))
    .await;
    assert_eq!(updated["events"], json!(["*"]));
    let rotated = json_run(args(&[
        "webhooks",
        "rotate-secret",
        &id,
        "--grace-hours",
        "2",
    ]))
    .await;
    assert_ne!(rotated["secret"], endpoint["secret"]);
    assert!(rotated["previousSecretExpiresAt"].is_string());
    let queued = json_run(args(&["webhooks", "test", &id])).await;
    let message = queued["id"].as_str().unwrap().to_owned();
    let deliveries = json_run(args(&["webhooks", "deliveries"])).await;
    assert_eq!(deliveries["items"][0]["id"], message.as_str());
    assert_eq!(deliveries["items"][0]["eventType"], "webhook.test");
    let resent = json_run(args(&["webhooks", "resend", &message])).await;
    assert_eq!(resent["id"], message.as_str());
    json_run(args(&["webhooks", "delete", &id])).await;
    assert_eq!(
        json_run(args(&["webhooks", "list"])).await["items"],
        json!([])
    );

    let campaigns = json_run(args(&["campaigns", "list"])).await;
    assert_eq!(campaigns["items"], json!([]));
    // Text output names the endpoint and never prints the API key.
    let run = switchboard(home, &["--url", &url, "webhooks", "list"], &env, None).await;
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "(none)");
    assert!(!run.stdout.contains(&key) && !run.stderr.contains(&key));
}

/// `switchboard completions <shell>` prints a completion script naming the commands.
#[tokio::test]
async fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let run = switchboard(dir.path(), &["completions", shell], &[], None).await;
        assert_eq!(run.status, Some(0), "{shell}: {}", run.stderr);
        for command in ["webhooks", "campaigns", "numbers"] {
            assert!(run.stdout.contains(command), "{shell} lacks {command}");
        }
    }
    let run = switchboard(dir.path(), &["completions", "cmd"], &[], None).await;
    assert_eq!(run.status, Some(2), "an unknown shell is bad usage");
}
