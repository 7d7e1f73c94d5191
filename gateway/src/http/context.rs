//! Facts about the caller that handlers record (client IP, request id).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::errors::ApiError;
use crate::state::AppState;

/// The client's address and the request id, for audit entries and rate limits.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// Client IP address (`unknown` when the server was not given peer addresses).
    pub ip: String,
    /// The `x-request-id` of this request.
    pub request_id: Option<String>,
}

impl ClientInfo {
    /// Reads the client information from request parts.
    pub fn from_parts(parts: &Parts, trust_forwarded_for: bool) -> Self {
        let forwarded = trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Self {
            ip: forwarded.or(peer).unwrap_or_else(|| "unknown".to_owned()),
            request_id,
        }
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, state.config.trust_forwarded_for))
    }
}
