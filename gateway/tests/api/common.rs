//! Test harness: the real router over a real database, SQLite always and Postgres when
//! `DATABASE_URL` points at one. Each Postgres app gets a fresh schema, migrated by the
//! connecting (super)user, and the app itself connects as an ordinary role so that
//! row-level security applies to every query of the tests.

#[path = "../support/postgres_schema.rs"]
mod postgres_schema;
use postgres_schema::fresh_schema;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use clap::Parser;
use serde_json::Value;
use sqlx::Executor;
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::store::Store;
use switchboard_gateway::{AppState, Config, app};
use tower::ServiceExt;

/// The ordinary (non-superuser, no BYPASSRLS) role the app uses on Postgres in tests.
pub const APP_ROLE: &str = "switchboard_gateway_test_app";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    config: Config,
}

/// Knobs a test may turn.
#[derive(Clone)]
pub struct Options {
    pub ip_per_minute: u32,
    pub login_per_minute: u32,
    pub api_key_per_minute: u32,
    pub cors: Option<String>,
    pub body_limit: usize,
    /// `SWITCHBOARD_PROVIDER_API_BASES` (vendor=url) for credential checks.
    pub provider_api_bases: Vec<String>,
    /// `TWILIO_API_BASE`.
    pub twilio_api_base: Option<String>,
    /// `SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE` (local fake vendors).
    pub outbound_allow_private: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ip_per_minute: 100_000,
            login_per_minute: 1_000,
            api_key_per_minute: 100_000,
            cors: None,
            body_limit: 64 * 1024,
            provider_api_bases: Vec::new(),
            twilio_api_base: None,
            outbound_allow_private: false,
        }
    }
}

pub struct TestApp {
    pub backend: &'static str,
    pub router: Router,
    pub state: AppState,
    pub mailer: Arc<MemoryMailer>,
    /// Postgres: the admin URL and schema (for RLS tests and cleanup).
    pub postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

pub fn config(database_url: &str, options: &Options) -> Config {
    let key = "11".repeat(32);
    let mut args = vec![
        "gateway".to_owned(),
        "--database-url".into(),
        database_url.into(),
        "--jwt-secret".into(),
        JWT_SECRET.into(),
        "--master-encryption-key".into(),
        key,
        "--kubernetes".into(),
        "false".into(),
        "--dev-mode".into(),
        "false".into(),
        "--public-url".into(),
        "https://gateway.test".into(),
        "--rate-limit-ip-per-minute".into(),
        options.ip_per_minute.to_string(),
        "--rate-limit-login-per-minute".into(),
        options.login_per_minute.to_string(),
        "--rate-limit-api-key-per-minute".into(),
        options.api_key_per_minute.to_string(),
        "--body-limit-bytes".into(),
        options.body_limit.to_string(),
        "--database-max-connections".into(),
        "4".into(),
    ];
    if let Some(origin) = &options.cors {
        args.extend(["--cors-allowed-origins".into(), origin.clone()]);
    }
    let mut config = Wrapper::try_parse_from(args).unwrap().config;
    // These suites test the in-memory limiter: a REDIS_URL inherited from the environment (CI
    // sets one) would share buckets between the SQLite and Postgres apps and between runs.
    // The Redis limiter has its own test in src/ratelimit.rs.
    config.redis_url = None;
    config.voice.provider_api_bases = options.provider_api_bases.clone();
    if let Some(base) = &options.twilio_api_base {
        config.voice.twilio_api_base = base.clone();
    }
    config.outbound_allow_private = options.outbound_allow_private;
    config
}

async fn build(
    backend: &'static str,
    url: &str,
    options: &Options,
    postgres: Option<(String, String)>,
    dir: Option<tempfile::TempDir>,
) -> TestApp {
    let store = Store::connect(url, 4).await.unwrap();
    if backend == "sqlite" {
        store.migrate().await.unwrap();
    }
    let mailer = Arc::new(MemoryMailer::default());
    let state = AppState::assemble(
        config(url, options),
        store,
        mailer.clone(),
        KubeSync::disabled(),
    )
    .await
    .unwrap();
    TestApp {
        backend,
        router: app(state.clone()),
        state,
        mailer,
        postgres,
        _dir: dir,
    }
}

pub async fn sqlite_app(options: &Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("gateway.db").display()
    );
    build("sqlite", &url, options, None, Some(dir)).await
}

/// `postgres://user@host/db?x` → same server and database as `user`, with `search_path`.
pub async fn postgres_app(admin_url: &str, options: &Options) -> TestApp {
    let (url, schema) = fresh_schema(admin_url, "gw", APP_ROLE).await;
    build(
        "postgres",
        &url,
        options,
        Some((admin_url.to_owned(), schema)),
        None,
    )
    .await
}

/// A Postgres app (fresh schema, as [`postgres_app`]) that reaches the server through `via`
/// (a TCP forwarder a test can cut) instead of the server's own address.
pub async fn postgres_app_via(
    admin_url: &str,
    options: &Options,
    via: std::net::SocketAddr,
) -> TestApp {
    let (url, schema) = fresh_schema(admin_url, "gw", APP_ROLE).await;
    // postgres://user@host:port/db?… → postgres://user@via/db?…
    let (head, rest) = url.split_once('@').unwrap();
    let path = &rest[rest.find('/').unwrap()..];
    let url = format!("{head}@{via}{path}");
    build(
        "postgres",
        &url,
        options,
        Some((admin_url.to_owned(), schema)),
        None,
    )
    .await
}

/// SQLite always; Postgres too when `DATABASE_URL` is a Postgres URL. Says which ran.
pub async fn apps(test: &str, options: Options) -> Vec<TestApp> {
    let mut apps = vec![sqlite_app(&options).await];
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => apps.push(postgres_app(&url, &options).await),
        _ => println!(
            "{test}: DATABASE_URL is not a Postgres URL, so the Postgres backend did NOT run"
        ),
    }
    let names: Vec<_> = apps.iter().map(|a| a.backend).collect();
    println!("{test}: running on {names:?}");
    apps
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    /// `GET /metrics` on the metrics port's router (the public router has no `/metrics`).
    pub async fn metrics(&self) -> Reply {
        let router = switchboard_gateway::http::metrics_app(&self.state);
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        Self::reply(router.oneshot(request).await.unwrap()).await
    }

    pub async fn raw(&self, request: Request<Body>) -> Reply {
        Self::reply(self.router.clone().oneshot(request).await.unwrap()).await
    }

    async fn reply(response: axum::response::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.raw(request.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Signs up and returns (access token, refresh token, tenant slug, tenant id, user id).
    pub async fn signup(&self, email: &str, company: &str) -> Account {
        let reply = self
            .post("/api/v1/auth/signup", None, serde_json::json!({
                "email": email, "password": "correct horse battery staple", "name": "Test User", "company": company
            }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        Account {
            access: reply.body["tokens"]["accessToken"]
                .as_str()
                .unwrap()
                .to_owned(),
            refresh: reply.body["tokens"]["refreshToken"]
                .as_str()
                .unwrap()
                .to_owned(),
            slug: reply.body["tenant"]["slug"].as_str().unwrap().to_owned(),
            tenant_id: reply.body["tenant"]["id"].as_str().unwrap().to_owned(),
            user_id: reply.body["user"]["id"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
        }
    }

    /// The newest token mailed to `to` (the text after `token=` in the link).
    pub fn mailed_token(&self, to: &str) -> String {
        let mail = self
            .mailer
            .sent()
            .into_iter()
            .rev()
            .find(|m| m.to == to)
            .expect("no mail");
        let start = mail.body.find("token=").unwrap() + "token=".len();
        mail.body[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    /// Drops the Postgres schema (SQLite's temp dir goes with the app).
    pub async fn finish(self) {
        self.state.store.pool().close().await;
        if let Some((admin_url, schema)) = &self.postgres {
            let admin = sqlx::AnyPool::connect(admin_url).await.unwrap();
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

#[derive(Clone, Debug)]
pub struct Account {
    pub access: String,
    pub refresh: String,
    pub slug: String,
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
}
