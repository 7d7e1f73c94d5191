//! Rate limits, request ids, CORS, health, readiness, metrics and the OpenAPI document.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::common::{Options, apps, postgres_app_via, sqlite_app};

#[tokio::test]
async fn per_ip_and_login_rate_limits_answer_429() {
    let options = Options {
        ip_per_minute: 8,
        login_per_minute: 3,
        ..Options::default()
    };
    for app in apps("per_ip_and_login_rate_limits_answer_429", options).await {
        // Login throttling per e-mail address, even with the right password.
        let login = json!({"email": "nobody@example.com", "password": "whatever it is"});
        for _ in 0..3 {
            assert_eq!(
                app.post("/api/v1/auth/login", None, login.clone())
                    .await
                    .status,
                StatusCode::UNAUTHORIZED
            );
        }
        let limited = app.post("/api/v1/auth/login", None, login.clone()).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.body["error"]["code"], "rate_limited");
        assert!(limited.headers.contains_key("retry-after"));
        // Per IP: 8 API requests a minute in total from this client (4 used above).
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(
                app.call(Method::GET, "/api/v1/openapi.json", None, None)
                    .await
                    .status,
            );
        }
        // Two over budget; the bucket refills one slot every 7.5 s, so a very slow machine may
        // see only one.
        let limited = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert!((1..=2).contains(&limited), "{statuses:?}");
        // Health endpoints are not limited.
        assert_eq!(
            app.call(Method::GET, "/healthz", None, None).await.status,
            StatusCode::OK
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn api_key_rate_limit_answers_429() {
    let options = Options {
        api_key_per_minute: 3,
        ..Options::default()
    };
    for app in apps("api_key_rate_limit_answers_429", options).await {
        let owner = app.signup("rl@acme.io", "RL Co").await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        let key = app
            .post(
                &format!("{t}/api-keys"),
                Some(&owner.access),
                json!({"name": "k"}),
            )
            .await
            .body["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let statuses: Vec<StatusCode> =
            futures::future::join_all((0..5).map(|_| app.get(&t, &key)))
                .await
                .into_iter()
                .map(|r| r.status)
                .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            3,
            "{statuses:?}"
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
                .count(),
            2,
            "{statuses:?}"
        );
        // The owner's own token is not limited by the key's budget.
        assert_eq!(app.get(&t, &owner.access).await.status, StatusCode::OK);
        app.finish().await;
    }
}

#[tokio::test]
async fn observability_request_ids_cors_and_openapi() {
    let options = Options {
        cors: Some("https://app.example.com".into()),
        ..Options::default()
    };
    for app in apps("observability_request_ids_cors_and_openapi", options).await {
        assert_eq!(
            app.call(Method::GET, "/healthz", None, None).await.status,
            StatusCode::OK
        );
        let ready = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);

        // Request ids: generated when absent, kept when given.
        let generated = app.call(Method::GET, "/healthz", None, None).await;
        assert!(
            generated
                .headers
                .get("x-request-id")
                .is_some_and(|v| v.len() >= 32)
        );
        let given = app
            .raw(
                Request::get("/healthz")
                    .header("x-request-id", "req-123")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(given.headers.get("x-request-id").unwrap(), "req-123");
        // The request id reaches the audit log.
        let signup = app.raw(Request::post("/api/v1/auth/signup").header("content-type", "application/json").header("x-request-id", "signup-req-42")
            .body(Body::from(json!({"email": "obs@acme.io", "password": "correct horse battery", "name": "O", "company": "Obs"}).to_string())).unwrap()).await;
        assert_eq!(signup.status, StatusCode::CREATED);
        let access = signup.body["tokens"]["accessToken"].as_str().unwrap();
        let audit = app.get("/api/v1/tenants/obs/audit-log", access).await;
        assert_eq!(audit.body["items"][0]["requestId"], "signup-req-42");

        // CORS: the allowed origin gets headers, others do not.
        let preflight = |origin: &str| {
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/api/v1/auth/me")
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .body(Body::empty())
                .unwrap()
        };
        let allowed = app.raw(preflight("https://app.example.com")).await;
        assert_eq!(
            allowed.headers.get("access-control-allow-origin").unwrap(),
            "https://app.example.com"
        );
        let denied = app.raw(preflight("https://evil.example.com")).await;
        assert!(denied.headers.get("access-control-allow-origin").is_none());

        // The public port serves no metrics (they name every tenant): issue 15, item 3.
        let public = app.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(public.status, StatusCode::NOT_FOUND, "{}", public.text);
        // Metrics count requests by route template, not by raw path.
        let metrics = app.metrics().await;
        assert_eq!(metrics.status, StatusCode::OK);
        assert!(
            metrics
                .text
                .contains("switchboard_gateway_http_requests_total"),
            "{}",
            metrics.text
        );
        assert!(
            metrics
                .text
                .contains("route=\"/api/v1/tenants/{tenant}/audit-log\"")
        );
        assert!(!metrics.text.contains("/api/v1/tenants/obs/"));

        // The OpenAPI document describes the routes and the error shape.
        let doc = app
            .call(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        assert_eq!(doc.status, StatusCode::OK);
        assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/api/v1/auth/signup",
            "/api/v1/tenants/{tenant}/credentials/{id}",
            "/api/v1/tenants/{tenant}/audit-log",
            "/api/v1/tenants/{tenant}/numbers",
            "/api/v1/tenants/{tenant}/campaigns/{campaign}",
            "/api/v1/tenants/{tenant}/campaigns/{campaign}/contacts",
            "/api/v1/tenants/{tenant}/campaigns/{campaign}/results.csv",
            "/api/v1/tenants/{tenant}/do-not-call/{phone}",
            "/api/v1/tenants/{tenant}/usage",
            "/api/v1/tenants/{tenant}/calls/{id}/transcript",
            "/api/v1/tenants/{tenant}/billing/checkout",
            "/api/v1/tenants/{tenant}/webhooks/{id}",
        ] {
            assert!(
                doc.body["paths"][path].is_object(),
                "{path} missing from the OpenAPI document"
            );
        }
        assert!(doc.body["components"]["schemas"]["SignupRequest"].is_object());
        assert!(doc.body["components"]["schemas"]["UploadResult"].is_object());
        // Every schema reference resolves.
        let text = doc.body.to_string();
        let references: Vec<&str> = text
            .split("\"$ref\":\"#/components/schemas/")
            .skip(1)
            .collect();
        assert!(references.len() > 10, "{} references", references.len());
        for reference in references {
            let name = reference.split('"').next().unwrap();
            assert!(
                doc.body["components"]["schemas"][name].is_object(),
                "dangling schema reference {name}"
            );
        }
        assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
        app.finish().await;
    }
}

#[tokio::test]
async fn readyz_fails_when_the_database_is_gone() {
    for app in apps("readyz_fails_when_the_database_is_gone", Options::default()).await {
        app.state.store.pool().close().await;
        let ready = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            app.call(Method::GET, "/healthz", None, None).await.status,
            StatusCode::OK
        );
        app.finish().await;
    }
}

/// A TCP forwarder to the Postgres server that can be cut (every forwarded connection closed,
/// new ones hung up on at once) and restored: the database as the gateway sees it when the
/// network or the server goes away and comes back.
struct Cable {
    addr: std::net::SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Cable {
    async fn to(target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, links2) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: hung up on
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links2.lock().unwrap().push(link.abort_handle());
            }
        });
        Self {
            addr,
            up,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Issue 15: `/readyz` answers 503 while the store cannot take writes and 200 again once it
/// can, without a restart. SQLite: another process holds the write lock longer than the
/// probe's timeout. Postgres: the connection to the server is cut (open connections die, new
/// ones are hung up on), then restored.
#[tokio::test]
async fn readyz_follows_the_store_down_and_up_again() {
    use sqlx::Connection;
    // SQLite: a second connection (another process, as far as SQLite knows) takes the write lock.
    let app = sqlite_app(&Options::default()).await;
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    let mut other = sqlx::AnyConnection::connect(&app.state.config.database_url)
        .await
        .unwrap();
    sqlx::Executor::execute(&mut other, "BEGIN IMMEDIATE")
        .await
        .unwrap();
    let locked = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        locked.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "sqlite locked: {}",
        locked.text
    );
    // `/healthz` (liveness) is not the store's business.
    assert_eq!(
        app.call(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    sqlx::Executor::execute(&mut other, "COMMIT").await.unwrap();
    other.close().await.unwrap();
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "sqlite unlocked: {}",
        ready.text
    );
    app.finish().await;
    println!("readyz_follows_the_store_down_and_up_again: sqlite ran");

    let Ok(admin_url) = std::env::var("DATABASE_URL") else {
        println!(
            "readyz_follows_the_store_down_and_up_again: DATABASE_URL unset, Postgres did NOT run"
        );
        return;
    };
    let server = admin_url
        .split_once('@')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap()
        .to_owned();
    let cable = Cable::to(server).await;
    let app = postgres_app_via(&admin_url, &Options::default(), cable.addr).await;
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    cable.cut();
    let down = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "postgres cut: {}",
        down.text
    );
    cable.restore();
    let ready = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "postgres restored: {}",
        ready.text
    );
    app.finish().await;
    println!("readyz_follows_the_store_down_and_up_again: postgres ran");
}
