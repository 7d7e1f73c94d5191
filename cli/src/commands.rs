//! Account, tenant and number commands over the REST API, with the stored session and a
//! single transparent refresh when the access token has expired.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiClient, ApiError};
use crate::session::{Session, SessionError, SessionStore};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The API said no (or could not be reached).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The session file could not be used.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The command needs a login.
    #[error("not logged in: run `switchboard login` (or `switchboard signup`) first")]
    NotLoggedIn,
    /// No tenant was given and the session has none.
    #[error("no tenant selected: pass --tenant or run `switchboard tenants use <slug>`")]
    NoTenant,
    /// The tenant is not one of the caller's.
    #[error("you are not a member of tenant `{0}` (see `switchboard tenants list`)")]
    UnknownTenant(String),
    /// The answer lacks something we need.
    #[error("unexpected answer from the gateway: {0}")]
    Unexpected(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

#[derive(Deserialize)]
struct UserRef {
    email: String,
}

#[derive(Deserialize)]
struct TenantRef {
    slug: String,
}

#[derive(Deserialize)]
struct SignupAnswer {
    user: UserRef,
    tenant: TenantRef,
    tokens: Tokens,
}

#[derive(Deserialize)]
struct LoginAnswer {
    user: UserRef,
    tokens: Tokens,
}

#[derive(Deserialize)]
struct MeAnswer {
    #[serde(default)]
    tenants: Vec<TenantRef>,
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, CommandError> {
    serde_json::from_value(value.clone())
        .map_err(|e| CommandError::Unexpected(format!("{what}: {e}")))
}

/// What every command works with: the gateway, the session file and the session in it.
pub struct Context {
    api: ApiClient,
    store: SessionStore,
    session: Option<Session>,
    api_key: Option<String>,
}

/// How often a creating request is sent (with the same `Idempotency-Key`) when the gateway
/// cannot be reached or the first attempt is still running there.
const CREATE_ATTEMPTS: u32 = 3;

impl Context {
    /// A context for the gateway at `url`.
    pub fn new(
        url: &str,
        store: SessionStore,
        session: Option<Session>,
    ) -> Result<Self, CommandError> {
        Ok(Self {
            api: ApiClient::new(url)?,
            store,
            session,
            api_key: None,
        })
    }

    /// Authenticates every tenant command with a customer API key (`SWITCHBOARD_API_KEY`)
    /// instead of the stored session; an API key belongs to one tenant, so the tenant comes
    /// from `--tenant`/`SWITCHBOARD_TENANT` (or the session).
    pub fn use_api_key(&mut self, key: &str) {
        self.api_key = Some(key.to_owned());
    }

    /// The stored session, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    fn remember(&mut self, session: Session) -> Result<(), CommandError> {
        self.store.save(&session)?;
        self.session = Some(session);
        Ok(())
    }

    /// `POST /api/v1/auth/signup`; stores the new session. Answers the API's body.
    pub async fn signup(
        &mut self,
        email: &str,
        password: &str,
        name: &str,
        company: &str,
    ) -> Result<Value, CommandError> {
        let body = json!({"email": email, "password": password, "name": name, "company": company});
        let answer = self
            .api
            .request(Method::POST, "/api/v1/auth/signup", None, Some(&body))
            .await?;
        let parsed: SignupAnswer = decode(&answer, "signup")?;
        self.remember(Session {
            url: self.api.base().to_owned(),
            email: Some(parsed.user.email),
            access_token: parsed.tokens.access_token,
            refresh_token: parsed.tokens.refresh_token,
            tenant: Some(parsed.tenant.slug),
        })?;
        Ok(redact_tokens(answer))
    }

    /// `POST /api/v1/auth/login`, then `me` to choose the tenant (`tenant` or the first).
    pub async fn login(
        &mut self,
        email: &str,
        password: &str,
        tenant: Option<&str>,
    ) -> Result<Value, CommandError> {
        let body = json!({"email": email, "password": password});
        let answer = self
            .api
            .request(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await?;
        let parsed: LoginAnswer = decode(&answer, "login")?;
        let me = self
            .api
            .request(
                Method::GET,
                "/api/v1/auth/me",
                Some(&parsed.tokens.access_token),
                None,
            )
            .await?;
        let me_parsed: MeAnswer = decode(&me, "me")?;
        let chosen = match tenant {
            Some(wanted) => {
                if !me_parsed.tenants.iter().any(|t| t.slug == wanted) {
                    return Err(CommandError::UnknownTenant(wanted.to_owned()));
                }
                Some(wanted.to_owned())
            }
            None => me_parsed.tenants.first().map(|t| t.slug.clone()),
        };
        self.remember(Session {
            url: self.api.base().to_owned(),
            email: Some(parsed.user.email),
            access_token: parsed.tokens.access_token,
            refresh_token: parsed.tokens.refresh_token,
            tenant: chosen.clone(),
        })?;
        let mut shown = redact_tokens(answer);
        shown["tenants"] = me["tenants"].clone();
        shown["tenant"] = json!(chosen);
        Ok(shown)
    }

    /// `POST /api/v1/auth/logout` and forget the session. An already-ended session is fine.
    /// Answers whether there was a session.
    pub async fn logout(&mut self) -> Result<bool, CommandError> {
        let Some(session) = self.session.take() else {
            return Ok(false);
        };
        let result = self
            .api
            .request(
                Method::POST,
                "/api/v1/auth/logout",
                Some(&session.access_token),
                None,
            )
            .await;
        // The local session goes whatever the gateway says: logging out must always work.
        self.store.clear()?;
        match result {
            Ok(_) => Ok(true),
            Err(ApiError::Api { status: 401, .. }) => Ok(true),
            Err(error) => Err(error.into()),
        }
    }

    /// An authenticated call; on 401 it refreshes the tokens once and retries.
    pub async fn authed(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CommandError> {
        self.authed_with_key(method, path, body, None).await
    }

    async fn authed_with_key(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Value, CommandError> {
        if let Some(api_key) = &self.api_key {
            // An API key is not refreshed: a 401 means it is invalid or revoked.
            return Ok(self
                .api
                .request_with_key(method, path, Some(api_key), body, key)
                .await?);
        }
        let session = self.session.clone().ok_or(CommandError::NotLoggedIn)?;
        let first = self
            .api
            .request_with_key(method.clone(), path, Some(&session.access_token), body, key)
            .await;
        match first {
            Err(ApiError::Api { status: 401, .. }) => {
                let renewed = self.refresh(session).await?;
                Ok(self
                    .api
                    .request_with_key(method, path, Some(&renewed.access_token), body, key)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// A creating `POST` with a fresh `Idempotency-Key`, sent again with the same key when
    /// the gateway cannot be reached or still runs the first attempt (409
    /// `idempotency_key_in_progress`): a retry never creates (or buys) twice.
    pub async fn create(&mut self, path: &str, body: &Value) -> Result<Value, CommandError> {
        let key = uuid::Uuid::new_v4().to_string();
        let mut attempt = 1;
        loop {
            let result = self
                .authed_with_key(Method::POST, path, Some(body), Some(&key))
                .await;
            let retry_after = match &result {
                Err(CommandError::Api(ApiError::Transport { .. })) => 1,
                Err(CommandError::Api(ApiError::Api {
                    status: 409,
                    code,
                    retry_after,
                    ..
                })) if code == "idempotency_key_in_progress" => retry_after.unwrap_or(1),
                _ => return result,
            };
            if attempt >= CREATE_ATTEMPTS {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(std::time::Duration::from_secs(retry_after.min(10))).await;
        }
    }

    async fn refresh(&mut self, session: Session) -> Result<Session, CommandError> {
        let body = json!({"refreshToken": session.refresh_token});
        let answer = match self
            .api
            .request(Method::POST, "/api/v1/auth/refresh", None, Some(&body))
            .await
        {
            Ok(answer) => answer,
            Err(ApiError::Api { status: 401, .. }) => {
                // The session is over (expired, revoked or logged out elsewhere).
                self.store.clear()?;
                self.session = None;
                return Err(CommandError::NotLoggedIn);
            }
            Err(error) => return Err(error.into()),
        };
        let tokens: Tokens = decode(&answer, "refresh")?;
        let renewed = Session {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            ..session
        };
        self.remember(renewed.clone())?;
        Ok(renewed)
    }

    /// `GET /api/v1/auth/me`.
    pub async fn whoami(&mut self) -> Result<Value, CommandError> {
        self.authed(Method::GET, "/api/v1/auth/me", None).await
    }

    /// `GET /api/v1/tenants`.
    pub async fn tenants(&mut self) -> Result<Value, CommandError> {
        self.authed(Method::GET, "/api/v1/tenants", None).await
    }

    /// Makes `slug` the default tenant, after checking the caller belongs to it.
    pub async fn use_tenant(&mut self, slug: &str) -> Result<(), CommandError> {
        let tenants = self.tenants().await?;
        let known = list_items(&tenants).iter().any(|t| t["slug"] == slug);
        if !known {
            return Err(CommandError::UnknownTenant(slug.to_owned()));
        }
        let mut session = self.session.clone().ok_or(CommandError::NotLoggedIn)?;
        session.tenant = Some(slug.to_owned());
        self.remember(session)
    }

    /// The tenant a scoped command acts on: `explicit`, else the session's.
    pub fn tenant(&self, explicit: Option<&str>) -> Result<String, CommandError> {
        explicit
            .map(str::to_owned)
            .or_else(|| self.session.as_ref().and_then(|s| s.tenant.clone()))
            .ok_or(CommandError::NoTenant)
    }

    /// `POST /api/v1/tenants/{tenant}/numbers` with `{"areaCode": …}` (a sandbox number on
    /// the sandbox carrier).
    pub async fn buy_number(
        &mut self,
        tenant: &str,
        area_code: Option<&str>,
    ) -> Result<Value, CommandError> {
        let body = match area_code {
            Some(code) => json!({"areaCode": code}),
            None => json!({}),
        };
        self.create(&numbers_path(tenant), &body).await
    }

    /// `GET /api/v1/tenants/{tenant}/numbers`.
    pub async fn numbers(&mut self, tenant: &str) -> Result<Value, CommandError> {
        self.authed(Method::GET, &numbers_path(tenant), None).await
    }
}

impl Context {
    /// `GET /api/v1/tenants/{tenant}/calls/{id}/transcript`: the turns the runtime reported.
    pub async fn transcript(&mut self, tenant: &str, call_id: &str) -> Result<Value, CommandError> {
        let path = format!(
            "/api/v1/tenants/{}/calls/{}/transcript",
            path_segment(tenant),
            path_segment(call_id)
        );
        self.authed(Method::GET, &path, None).await
    }

    /// `GET /api/v1/tenants/{tenant}/calls?limit=…`: call records, newest first.
    pub async fn calls(&mut self, tenant: &str, limit: u32) -> Result<Value, CommandError> {
        let path = format!(
            "/api/v1/tenants/{}/calls?limit={limit}",
            path_segment(tenant)
        );
        self.authed(Method::GET, &path, None).await
    }

    /// `GET /api/v1/tenants/{tenant}/usage`: this month's usage against the plan's limits.
    pub async fn usage(&mut self, tenant: &str) -> Result<Value, CommandError> {
        let path = format!("/api/v1/tenants/{}/usage", path_segment(tenant));
        self.authed(Method::GET, &path, None).await
    }
}

/// `/api/v1/tenants/{tenant}/{rest}`, the tenant escaped (`rest` is the client's own, with
/// user-typed ids escaped by [`segment`]).
pub fn tenant_path(tenant: &str, rest: &str) -> String {
    format!("/api/v1/tenants/{}/{rest}", path_segment(tenant))
}

/// A user-typed id as one path segment.
pub fn segment(value: &str) -> String {
    path_segment(value)
}

fn numbers_path(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/numbers", path_segment(tenant))
}

/// Keeps a user-typed slug from escaping its path segment.
fn path_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The answer without its tokens: they are stored, and never printed.
fn redact_tokens(mut answer: Value) -> Value {
    if let Some(object) = answer.as_object_mut() {
        object.remove("tokens");
    }
    answer
}

/// The items of a list answer: every list of the API is `{"items": [...], "nextCursor": …}`.
pub fn list_items(value: &Value) -> Vec<Value> {
    value["items"].as_array().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_cannot_escape_their_segment() {
        assert_eq!(numbers_path("acme"), "/api/v1/tenants/acme/numbers");
        assert_eq!(
            numbers_path("../admin?x"),
            "/api/v1/tenants/..%2Fadmin%3Fx/numbers"
        );
    }

    #[test]
    fn lists_are_the_items_of_the_envelope() {
        assert_eq!(
            list_items(&json!({"items": [1], "nextCursor": null})).len(),
            1
        );
        assert!(list_items(&json!([1, 2])).is_empty());
        assert!(list_items(&json!({"x": 1})).is_empty());
        assert_eq!(
            redact_tokens(json!({"tokens": {"accessToken": "s"}, "user": 1})),
            json!({"user": 1})
        );
    }
}
