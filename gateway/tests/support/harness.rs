//! Harness of the call-path and campaign tests: the real router over SQLite (always) and
//! Postgres (when `DATABASE_URL` names one; the app then connects as an ordinary role so RLS
//! applies), with the platform's carrier tokens and the internal token configured.

#[path = "../support/postgres_schema.rs"]
mod postgres_schema;
use postgres_schema::{fresh_schema, postgres_url_as};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use clap::Parser;
use serde_json::{Value, json};
use sqlx::Executor;
use switchboard_carriers::signatures::twilio_signature;
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::store::numbers::{self, NumberRow};
use switchboard_gateway::store::{Store, system};
use switchboard_gateway::{AppState, Config, app};
use tower::ServiceExt;

pub const APP_ROLE: &str = "switchboard_gateway_voice_app";
pub const PUBLIC: &str = "https://gateway.test";
pub const TWILIO_TOKEN: &str = "platform-twilio-auth-token";
pub const SANDBOX_TOKEN: &str = "sandbox-auth-token";
pub const INTERNAL_TOKEN: &str = "internal-token-for-tests";

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    config: Config,
}

pub fn config(database_url: &str, extra: &[String]) -> Config {
    let mut args: Vec<String> = [
        "gateway",
        "--database-url",
        database_url,
        "--jwt-secret",
        "harness-secret-harness-secret-harness-01",
        "--master-encryption-key",
        &"22".repeat(32),
        "--kubernetes",
        "false",
        "--public-url",
        PUBLIC,
        "--rate-limit-ip-per-minute",
        "1000000",
        "--rate-limit-api-key-per-minute",
        "1000000",
        "--database-max-connections",
        "4",
        "--twilio-auth-token",
        TWILIO_TOKEN,
        "--sandbox-auth-token",
        SANDBOX_TOKEN,
        "--internal-token",
        INTERNAL_TOKEN,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().cloned());
    Wrapper::try_parse_from(args).unwrap().config
}

pub struct TestApp {
    pub backend: &'static str,
    pub router: Router,
    pub state: AppState,
    /// Database URL (the restart test builds a second app on it).
    pub url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite_app(extra: &[String]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("gw.db").display());
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    build("sqlite", &url, store, extra, None, Some(dir)).await
}

pub async fn postgres_app(admin_url: &str, extra: &[String]) -> TestApp {
    let (url, schema) = fresh_schema(admin_url, "gw2", APP_ROLE).await;
    let store = Store::connect(&url, 4).await.unwrap();
    build(
        "postgres",
        &url,
        store,
        extra,
        Some((admin_url.to_owned(), schema)),
        None,
    )
    .await
}

async fn build(
    backend: &'static str,
    url: &str,
    store: Store,
    extra: &[String],
    admin: Option<(String, String)>,
    dir: Option<tempfile::TempDir>,
) -> TestApp {
    let state = AppState::assemble(
        config(url, extra),
        store,
        Arc::new(MemoryMailer::default()),
        KubeSync::disabled(),
    )
    .await
    .unwrap();
    TestApp {
        backend,
        router: app(state.clone()),
        state,
        url: url.to_owned(),
        admin,
        _dir: dir,
    }
}

/// SQLite always; Postgres too when `DATABASE_URL` is a Postgres URL.
pub async fn apps(test: &str, extra: &[String]) -> Vec<TestApp> {
    let mut apps = vec![sqlite_app(extra).await];
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => apps.push(postgres_app(&url, extra).await),
        _ => println!(
            "{test}: DATABASE_URL is not a Postgres URL, so the Postgres backend did NOT run"
        ),
    }
    apps
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

pub struct Tenant {
    pub access: String,
    pub slug: String,
    pub id: String,
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
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn json(
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

    pub async fn signup(&self, email: &str, company: &str) -> Tenant {
        let reply = self
            .json(Method::POST, "/api/v1/auth/signup", None, Some(json!({
                "email": email, "password": "correct horse battery staple", "name": "Test", "company": company
            })))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        Tenant {
            access: reply.body["tokens"]["accessToken"]
                .as_str()
                .unwrap()
                .to_owned(),
            slug: reply.body["tenant"]["slug"].as_str().unwrap().to_owned(),
            id: reply.body["tenant"]["id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn route_number(&self, e164: &str, tenant_id: &str, carrier: &str, account: &str) {
        let mut tx = system::write(&self.state.store).await.unwrap();
        numbers::upsert(
            &mut tx,
            &NumberRow {
                e164: e164.into(),
                tenant_id: tenant_id.into(),
                carrier: carrier.into(),
                account: account.into(),
                agent: None,
                updated_at: 0,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        self.state.numbers.reload(&self.state.store).await.unwrap();
    }

    /// A form webhook signed the Twilio way with `token` over `PUBLIC + path`.
    pub async fn twilio_post(&self, path: &str, token: &str, params: &[(&str, &str)]) -> Reply {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = twilio_signature(token, &format!("{PUBLIC}{path}"), &owned);
        let body = serde_urlencoded::to_string(&owned).unwrap();
        self.raw(
            Request::post(path)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", signature)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Rows of a scalar count query, run as the admin (SQLite: the app's own pool).
    pub async fn count(&self, sql: &str) -> i64 {
        match &self.admin {
            Some((admin_url, schema)) => {
                let pool = sqlx::AnyPool::connect(&postgres_url_as(admin_url, None, schema))
                    .await
                    .unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
            None => sqlx::query_scalar(sql)
                .fetch_one(self.state.store.pool())
                .await
                .unwrap(),
        }
    }

    /// A pool that sees every row (Postgres: the admin, past row-level security; SQLite: the
    /// app's own pool, which must stay open).
    pub async fn admin_pool(&self) -> sqlx::AnyPool {
        match &self.admin {
            Some((admin_url, schema)) => {
                sqlx::AnyPool::connect(&postgres_url_as(admin_url, None, schema))
                    .await
                    .unwrap()
            }
            None => self.state.store.pool().clone(),
        }
    }

    /// Serves the app on 127.0.0.1:0 with the gateway's own server loop (and its header-read
    /// timeout from the configuration); returns the address.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        let header_read_timeout =
            std::time::Duration::from_secs(self.state.config.header_read_timeout_secs);
        tokio::spawn(async move {
            switchboard_gateway::http::server::serve(
                listener,
                router,
                header_read_timeout,
                std::future::pending(),
            )
            .await
            .unwrap();
        });
        addr
    }

    /// A second gateway on the same database (a restart, or another replica).
    pub async fn sibling(&self, extra: &[String]) -> TestApp {
        let store = Store::connect(&self.url, 4).await.unwrap();
        build(
            self.backend,
            &self.url,
            store,
            extra,
            self.admin.clone(),
            None,
        )
        .await
    }

    pub async fn finish(self) {
        self.state.store.pool().close().await;
        if let Some((admin_url, schema)) = &self.admin {
            let admin = sqlx::AnyPool::connect(admin_url).await.unwrap();
            admin
                .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                .await
                .unwrap();
            admin.close().await;
        }
    }
}
