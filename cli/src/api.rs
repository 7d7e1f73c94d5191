//! A small client for the gateway's REST API (`/api/v1/…`) that turns the API's error body
//! `{"error": {"code", "message", "field"}}` into [`ApiError::Api`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use switchboard_crds::idempotency::KEY_HEADER;

/// How long one API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The gateway answered with its JSON error body.
    #[error("{}{message} ({code}, HTTP {status})", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable machine-readable code, e.g. `email_taken`.
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The request field at fault.
        field: Option<String>,
        /// Seconds to wait before retrying (429).
        retry_after: Option<u64>,
    },
    /// The gateway answered with something that is not the API's error shape.
    #[error("HTTP {status} from {url}: {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// The URL called.
        url: String,
        /// The start of the body.
        body: String,
    },
    /// The gateway could not be reached or the connection broke.
    #[error("cannot reach {url}")]
    Transport {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A success answer was not the JSON we expect.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl ApiError {
    /// The HTTP status, when the gateway answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Api { status, .. } | ApiError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error as the API's JSON shape (for `--json` output).
    pub fn to_json(&self) -> Value {
        match self {
            ApiError::Api {
                status,
                code,
                message,
                field,
                retry_after,
            } => serde_json::json!({"error": {
                "status": status, "code": code, "message": message,
                "field": field, "retryAfter": retry_after
            }}),
            other => serde_json::json!({"error": {
                "status": other.status(), "code": "client_error", "message": with_causes(other)
            }}),
        }
    }
}

/// An error and its causes, `outer: inner: innermost`, as `{:#}` prints an anyhow chain.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    #[serde(default)]
    field: Option<String>,
}

/// A REST client bound to one gateway.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
}

impl ApiClient {
    /// A client for the gateway at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ApiError::Transport {
                url: base.to_owned(),
                source,
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The gateway's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` with an optional bearer token and JSON body. Answers `Value::Null`
    /// for empty successful bodies (204).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.request_with_key(method, path, token, body, None).await
    }

    /// [`ApiClient::request`] with an `Idempotency-Key` (for creating `POST`s): sent again
    /// with the same key, the request is answered from the first one, never done twice.
    pub async fn request_with_key(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        let payload = body.map(|b| Payload::Json(b.clone()));
        let bytes = self
            .send(method, path, token, payload.as_ref(), idempotency_key)
            .await?;
        success_body(&url, &bytes)
    }

    /// Sends `method path` with any [`Payload`] and answers the successful body's bytes (CSV
    /// downloads are not JSON); failures become the API's error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        payload: Option<&Payload>,
        idempotency_key: Option<&str>,
    ) -> Result<Vec<u8>, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            request = request.header(KEY_HEADER, key);
        }
        match payload {
            Some(Payload::Json(body)) => request = request.json(body),
            Some(Payload::Csv(text)) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "text/csv")
                    .body(text.clone());
            }
            None => {}
        }
        let response = request.send().await.map_err(|source| ApiError::Transport {
            url: url.clone(),
            source,
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ApiError::Transport {
                url: url.clone(),
                source,
            })?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(error_from_body(status, &url, &bytes, retry_after))
    }
}

/// A request body.
#[derive(Clone, Debug)]
pub enum Payload {
    /// `application/json`.
    Json(Value),
    /// `text/csv` (contact uploads).
    Csv(String),
}

/// A successful body as JSON (`Value::Null` when empty, as a 204 is).
pub fn success_body(url: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        url: url.to_owned(),
        reason: format!("body is not JSON: {e}"),
    })
}

/// Turns a failed response into the API's error, or an [`ApiError::Unexpected`] that shows
/// the start of whatever else came back (a proxy's HTML page, say).
pub fn error_from_body(
    status: StatusCode,
    url: &str,
    bytes: &[u8],
    retry_after: Option<u64>,
) -> ApiError {
    match serde_json::from_slice::<ErrorEnvelope>(bytes) {
        Ok(ErrorEnvelope { error }) => ApiError::Api {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
            field: error.field,
            retry_after,
        },
        Err(_) => ApiError::Unexpected {
            status: status.as_u16(),
            url: url.to_owned(),
            body: String::from_utf8_lossy(bytes).chars().take(300).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_name_the_field_code_and_status() {
        let error = error_from_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            "http://x/api/v1/auth/signup",
            br#"{"error":{"code":"weak_password","message":"too short","field":"password"}}"#,
            None,
        );
        assert_eq!(
            error.to_string(),
            "password: too short (weak_password, HTTP 422)"
        );
        assert_eq!(error.to_json()["error"]["field"], "password");
        let error = error_from_body(
            StatusCode::BAD_GATEWAY,
            "http://x/y",
            b"<html>bad gateway</html>",
            None,
        );
        assert_eq!(
            error.to_string(),
            "HTTP 502 from http://x/y: <html>bad gateway</html>"
        );
    }
}
