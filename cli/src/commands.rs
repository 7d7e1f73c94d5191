//! Account, tenant and number commands over the REST API, with the stored session and a
//! single transparent refresh when the access token has expired.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{ApiClient, ApiError, Payload, success_body};
use crate::client::endpoints::{Answer, LOGIN, LOGOUT, ME, REFRESH, SIGNUP};
use crate::client::types::{
    LoginRequest, LoginResponse, Me, RefreshRequest, RefreshResponse, SignupRequest, SignupResponse,
};
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
    /// A file named on the command line cannot be read or written.
    #[error("cannot use {path}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An argument is not usable (checked before anything is sent).
    #[error("{flag}: {message}")]
    Invalid {
        /// The flag or argument at fault.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn to_value<T: serde::Serialize>(body: &T) -> Result<Value, CommandError> {
    serde_json::to_value(body).map_err(|e| CommandError::Unexpected(format!("request: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, CommandError> {
    serde_json::from_value(value.clone())
        .map_err(|e| CommandError::Unexpected(format!("{what}: {e}")))
}

/// Who signed up or logged in, for the sentence people see.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// Their e-mail address.
    pub email: String,
    /// The tenant now used by default.
    pub tenant: Option<String>,
    /// Its plan (known after signup).
    pub plan: Option<String>,
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

    /// `POST /api/v1/auth/signup`; stores the new session. Answers the API's body without
    /// its tokens.
    pub async fn signup(
        &mut self,
        email: &str,
        password: &str,
        name: &str,
        company: &str,
    ) -> Result<Answer<SignedIn>, CommandError> {
        let body = to_value(&SignupRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            name: name.to_owned(),
            company: company.to_owned(),
        })?;
        let answer = self
            .api
            .request(Method::POST, SIGNUP.path, None, Some(&body))
            .await?;
        let parsed: SignupResponse = decode(&answer, "signup")?;
        let signed_in = SignedIn {
            email: parsed.user.email.clone(),
            tenant: Some(parsed.tenant.slug.clone()),
            plan: Some(parsed.tenant.plan),
        };
        self.remember(Session {
            url: self.api.base().to_owned(),
            email: Some(parsed.user.email),
            access_token: parsed.tokens.access_token,
            refresh_token: parsed.tokens.refresh_token,
            tenant: Some(parsed.tenant.slug),
        })?;
        Ok(Answer {
            json: redact_tokens(answer),
            value: signed_in,
        })
    }

    /// `POST /api/v1/auth/login`, then `me` to choose the tenant (`tenant` or the first).
    pub async fn login(
        &mut self,
        email: &str,
        password: &str,
        tenant: Option<&str>,
    ) -> Result<Answer<SignedIn>, CommandError> {
        let body = to_value(&LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        })?;
        let answer = self
            .api
            .request(Method::POST, LOGIN.path, None, Some(&body))
            .await?;
        let parsed: LoginResponse = decode(&answer, "login")?;
        let me = self
            .api
            .request(
                Method::GET,
                ME.path,
                Some(&parsed.tokens.access_token),
                None,
            )
            .await?;
        let me_parsed: Me = decode(&me, "me")?;
        let chosen = match tenant {
            Some(wanted) => {
                if !me_parsed.tenants.iter().any(|t| t.slug == wanted) {
                    return Err(CommandError::UnknownTenant(wanted.to_owned()));
                }
                Some(wanted.to_owned())
            }
            None => me_parsed.tenants.first().map(|t| t.slug.clone()),
        };
        let signed_in = SignedIn {
            email: parsed.user.email.clone(),
            tenant: chosen.clone(),
            plan: None,
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
        Ok(Answer {
            json: shown,
            value: signed_in,
        })
    }

    /// `POST /api/v1/auth/logout` and forget the session. An already-ended session is fine.
    /// Answers whether there was a session.
    pub async fn logout(&mut self) -> Result<bool, CommandError> {
        let Some(session) = self.session.take() else {
            return Ok(false);
        };
        let result = self
            .api
            .request(Method::POST, LOGOUT.path, Some(&session.access_token), None)
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
        let payload = body.map(|b| Payload::Json(b.clone()));
        let bytes = self.send(method, path, payload.as_ref(), None).await?;
        Ok(success_body(path, &bytes)?)
    }

    /// Sends an authenticated request with any payload and answers the body's bytes; on 401
    /// the session's tokens are refreshed once and the request sent again.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        payload: Option<&Payload>,
        key: Option<&str>,
    ) -> Result<Vec<u8>, CommandError> {
        if let Some(api_key) = &self.api_key {
            // An API key is not refreshed: a 401 means it is invalid or revoked.
            return Ok(self
                .api
                .send(method, path, Some(api_key), payload, key)
                .await?);
        }
        let session = self.session.clone().ok_or(CommandError::NotLoggedIn)?;
        let first = self
            .api
            .send(
                method.clone(),
                path,
                Some(&session.access_token),
                payload,
                key,
            )
            .await;
        match first {
            Err(ApiError::Api { status: 401, .. }) => {
                let renewed = self.refresh(session).await?;
                Ok(self
                    .api
                    .send(method, path, Some(&renewed.access_token), payload, key)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// A creating `POST` with a fresh `Idempotency-Key`, sent again with the same key when
    /// the gateway cannot be reached or still runs the first attempt (409
    /// `idempotency_key_in_progress`): a retry never creates (or buys) twice.
    pub async fn create(&mut self, path: &str, body: &Value) -> Result<Value, CommandError> {
        let bytes = self
            .create_with(path, Some(&Payload::Json(body.clone())))
            .await?;
        Ok(success_body(path, &bytes)?)
    }

    /// [`Context::create`] with any payload (a CSV upload), answering the body's bytes.
    pub async fn create_with(
        &mut self,
        path: &str,
        payload: Option<&Payload>,
    ) -> Result<Vec<u8>, CommandError> {
        let key = uuid::Uuid::new_v4().to_string();
        let mut attempt = 1;
        loop {
            let result = self.send(Method::POST, path, payload, Some(&key)).await;
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
        let body = to_value(&RefreshRequest {
            refresh_token: session.refresh_token.clone(),
        })?;
        let answer = match self
            .api
            .request(Method::POST, REFRESH.path, None, Some(&body))
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
        let tokens: RefreshResponse = decode(&answer, "refresh")?;
        let renewed = Session {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            ..session
        };
        self.remember(renewed.clone())?;
        Ok(renewed)
    }

    /// Makes `slug` the default tenant, after checking the caller belongs to it.
    pub async fn use_tenant(&mut self, slug: &str) -> Result<(), CommandError> {
        let tenants = self.client().tenants().await?;
        let known = tenants.value.items.iter().any(|t| t.slug == slug);
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
}

/// The answer without its tokens: they are stored, and never printed.
fn redact_tokens(mut answer: Value) -> Value {
    if let Some(object) = answer.as_object_mut() {
        object.remove("tokens");
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_never_shown() {
        assert_eq!(
            redact_tokens(json!({"tokens": {"accessToken": "s"}, "user": 1})),
            json!({"user": 1})
        );
    }
}
