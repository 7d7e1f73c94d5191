//! Client of the gateway's internal API (cluster-internal, bearer-token authenticated): the
//! operator registers Campaigns, reads their progress and stops them there, and routes
//! numbers. The wire types are the gateway's own, declared once in
//! `switchboard_crds::internal_api` (re-exported here for the controllers).

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use switchboard_crds::internal_api::ErrorBody;
pub use switchboard_crds::internal_api::{
    NumberRoute, Progress, Registration, RegistrationResult, RejectedRow,
};

/// Time to establish a connection; the gateway is in-cluster, so anything slower is an outage.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for a whole request. Registration carries the contact CSV (at most ~1 MiB, the
/// ConfigMap/Secret size limit), which the gateway validates row by row.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The shared secret authenticating the operator to the gateway's internal API.
///
/// `Debug` redacts it, so it never reaches a log line through a derived `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct InternalToken(String);

impl InternalToken {
    /// Wraps a token; `None` when it is empty (an unset Secret key must not authenticate).
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        let trimmed = token.trim();
        (!trimmed.is_empty()).then(|| Self(trimmed.to_owned()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InternalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InternalToken(<redacted>)")
    }
}

/// Why a call to the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The operator was started without an internal token, so it cannot talk to the gateway.
    #[error(
        "the gateway's internal API is not configured (set SWITCHBOARD_INTERNAL_TOKEN from the internal-token Secret)"
    )]
    NotConfigured,
    /// The configured base URL is not an absolute http(s) URL.
    #[error("invalid gateway URL {0:?}")]
    InvalidUrl(String),
    /// The request did not complete (connection refused, timeout, reset).
    #[error("gateway unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// The gateway refused the token: the operator's and the gateway's Secrets differ.
    #[error("gateway refused the internal token (HTTP {0})")]
    Unauthorized(u16),
    /// The gateway refused the request itself (4xx with an error body): a campaign
    /// registration or a number route.
    #[error("gateway rejected the request: {message}{}", field.as_deref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Machine-readable error code.
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The offending field, when the gateway names one.
        field: Option<String>,
    },
    /// The gateway failed (5xx) or answered with an unexpected status.
    #[error("gateway answered HTTP {0}")]
    Status(u16),
    /// The gateway's answer was not the documented JSON.
    #[error("gateway answered with an unexpected body: {0}")]
    Decode(#[source] reqwest::Error),
}

impl GatewayError {
    /// True when the gateway understood the request and refused it: retrying the same
    /// request cannot help until the Campaign changes.
    pub fn is_rejection(&self) -> bool {
        matches!(self, GatewayError::Rejected { .. })
    }
}

/// A client of the gateway's internal API. Cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct GatewayClient {
    http: reqwest::Client,
    base: Url,
    token: InternalToken,
}

impl GatewayClient {
    /// A client for the internal API at `base_url` (e.g. `http://switchboard-gateway.switchboard-system.svc:8080`).
    pub fn new(base_url: &str, token: InternalToken) -> Result<Self, GatewayError> {
        let base = Url::parse(base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| GatewayError::InvalidUrl(base_url.to_owned()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // The internal API never redirects; following one could send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(GatewayError::Transport)?;
        Ok(Self { http, base, token })
    }

    /// Registers the campaign, or updates it when `registration.generation` is new.
    pub async fn register(
        &self,
        tenant: &str,
        name: &str,
        registration: &Registration,
    ) -> Result<RegistrationResult, GatewayError> {
        let response = self
            .request(Method::PUT, &campaign_path(tenant, name, None))
            .json(registration)
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        let response = check(response).await?;
        response.json().await.map_err(GatewayError::Decode)
    }

    /// The campaign's progress; `None` when the gateway does not know the campaign.
    pub async fn progress(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<Progress>, GatewayError> {
        let response = self
            .request(Method::GET, &campaign_path(tenant, name, Some("progress")))
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = check(response).await?;
        response
            .json()
            .await
            .map(Some)
            .map_err(GatewayError::Decode)
    }

    /// Stops dialing the campaign. Idempotent: an unknown campaign is already stopped.
    pub async fn stop(&self, tenant: &str, name: &str) -> Result<(), GatewayError> {
        let response = self
            .request(Method::DELETE, &campaign_path(tenant, name, None))
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        check(response).await.map(drop)
    }

    /// Routes calls to `e164` to a tenant (idempotent: the same route again changes nothing).
    pub async fn route_number(&self, e164: &str, route: &NumberRoute) -> Result<(), GatewayError> {
        let response = self
            .request(Method::PUT, &["internal", "v1", "numbers", e164])
            .json(route)
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        check(response).await.map(drop)
    }

    /// Stops routing `e164`. Idempotent: an unknown number is already unrouted.
    pub async fn unroute_number(&self, e164: &str) -> Result<(), GatewayError> {
        let response = self
            .request(Method::DELETE, &["internal", "v1", "numbers", e164])
            .send()
            .await
            .map_err(GatewayError::Transport)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        check(response).await.map(drop)
    }

    fn request(&self, method: Method, segments: &[&str]) -> reqwest::RequestBuilder {
        let mut url = self.base.clone();
        // Segment-wise, so names are percent-encoded and a base path is kept.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        // bearer_auth marks the header sensitive, keeping it out of reqwest's own debug output.
        self.http
            .request(method, url)
            .bearer_auth(self.token.expose())
    }
}

fn campaign_path<'a>(tenant: &'a str, name: &'a str, tail: Option<&'a str>) -> Vec<&'a str> {
    let mut segments = vec!["internal", "v1", "tenants", tenant, "campaigns", name];
    segments.extend(tail);
    segments
}

/// Maps non-success answers to errors, reading the documented error body of a 4xx.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, GatewayError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(GatewayError::Unauthorized(status.as_u16()));
    }
    if status.is_client_error() {
        // A 4xx without the documented body still means "refused", with the status as message.
        let detail = response.json::<ErrorBody>().await.ok().map(|b| b.error);
        return Err(match detail {
            Some(detail) => GatewayError::Rejected {
                status: status.as_u16(),
                code: detail.code,
                message: detail.message,
                field: detail.field,
            },
            None => GatewayError::Rejected {
                status: status.as_u16(),
                code: String::new(),
                message: format!("HTTP {}", status.as_u16()),
                field: None,
            },
        });
    }
    Err(GatewayError::Status(status.as_u16()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_and_never_empty() {
        let token = InternalToken::new(" s3cret ").unwrap();
        assert_eq!(token.expose(), "s3cret");
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(InternalToken::new("  ").is_none());
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        let token = || InternalToken::new("t").unwrap();
        assert!(GatewayClient::new("http://gw.svc:8080", token()).is_ok());
        assert!(GatewayClient::new("https://gw.svc/base/", token()).is_ok());
        for bad in ["gw.svc:8080", "ftp://gw", "not a url", ""] {
            assert!(
                matches!(
                    GatewayClient::new(bad, token()),
                    Err(GatewayError::InvalidUrl(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn paths_keep_the_base_path_and_encode_names() {
        let client =
            GatewayClient::new("http://gw.svc:8080/base/", InternalToken::new("t").unwrap())
                .unwrap();
        let request = client
            .request(
                Method::GET,
                &campaign_path("acme", "spring survey", Some("progress")),
            )
            .build()
            .unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://gw.svc:8080/base/internal/v1/tenants/acme/campaigns/spring%20survey/progress"
        );
        assert_eq!(
            request.headers()["authorization"].to_str().unwrap(),
            "Bearer t"
        );
    }
}
