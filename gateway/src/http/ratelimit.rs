//! Per-IP rate limit on the API (per-key and login limits are applied where the key or the
//! e-mail address is known: `principal` and `auth::login`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::context::ClientInfo;
use super::errors::ApiError;
use crate::ratelimit::{Decision, LimitClass};
use crate::state::AppState;

/// Middleware: 429 with `Retry-After` once the client IP exceeds its budget.
pub async fn per_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let client = ClientInfo::from_parts(&parts, state.config.trust_forwarded_for);
    if let Decision::Limited { retry_after_secs } =
        state.limiter.check(LimitClass::Ip, &client.ip).await
    {
        return ApiError::too_many_requests(retry_after_secs).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
