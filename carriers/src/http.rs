//! HTTP plumbing shared by the REST clients: client construction with timeouts, sending,
//! error classification and JSON decoding.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::{CarrierError, CarrierResult};

/// Whole-request timeout used when the caller does not choose one. Number purchases at
/// Twilio normally answer within a few seconds; a reconcile must not hang much longer.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Connect timeout: a carrier that does not accept a TCP/TLS connection in this time is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the HTTP client a carrier client uses.
pub(crate) fn build_client(timeout: Duration) -> CarrierResult<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CarrierError::Permanent {
            status: None,
            code: None,
            message: format!("cannot build HTTP client: {e}"),
        })
}

/// Turns an error response (status, headers, body) into a [`CarrierError`]; one per carrier.
pub(crate) type ErrorParser = fn(u16, &HeaderMap, &[u8]) -> CarrierError;

/// Sends `request`; any non-2xx response becomes an error through `parse_error`.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    parse_error: ErrorParser,
) -> CarrierResult<reqwest::Response> {
    let response = request.send().await.map_err(CarrierError::from_transport)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(CarrierError::from_transport)?;
    Err(parse_error(status.as_u16(), &headers, &body))
}

/// Sends `request` and decodes a JSON success body.
pub(crate) async fn send_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    parse_error: ErrorParser,
) -> CarrierResult<T> {
    let response = send(request, parse_error).await?;
    let body = response
        .bytes()
        .await
        .map_err(CarrierError::from_transport)?;
    serde_json::from_slice(&body).map_err(|e| CarrierError::Permanent {
        status: None,
        code: None,
        message: format!("unexpected response body from carrier: {e}"),
    })
}

impl CarrierError {
    /// Whether this is the carrier saying "no such resource" (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Permanent {
                status: Some(404),
                ..
            }
        )
    }
}

/// Maps a 404 to `Ok(None)`, for lookups.
pub(crate) fn none_if_not_found<T>(result: CarrierResult<T>) -> CarrierResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Joins a base URL and a path that starts with `/`, tolerating a trailing slash on the base.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// Checks that a carrier id is safe to put in a URL path (carrier ids are alphanumeric with
/// `-`, `_`, `:` and `.`), so a malformed id can never reach another endpoint.
pub(crate) fn path_id(id: &str) -> CarrierResult<&str> {
    let safe = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        && id != "."
        && id != "..";
    if safe {
        Ok(id)
    } else {
        Err(CarrierError::Permanent {
            status: None,
            code: None,
            message: format!("invalid carrier id {id:?}"),
        })
    }
}
