//! Webhooks the gateway receives: carriers' voice and status callbacks (Twilio, the sandbox,
//! Telnyx), Stripe's billing events and PBX call detail records. Each handler is thin: parse,
//! find the number's owner, verify the signature with that account's secret, then hand over
//! to the domain ([`crate::calls`], [`crate::billing`]).
//!
//! They are mounted beside the public API: carriers must not share a per-IP budget with
//! browsers.

pub mod cdr;
pub mod stripe;
pub mod telnyx;
pub mod twilio;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

use super::errors::ApiError;
use crate::state::AppState;

/// The webhook routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks/twilio/voice", post(twilio::voice))
        .route("/api/v1/webhooks/twilio/status", post(twilio::status))
        .route("/api/v1/webhooks/telnyx", post(telnyx::webhook))
        .route("/api/v1/webhooks/stripe", post(stripe::webhook))
        .route("/api/v1/webhooks/cdr/{tenant}", post(cdr::ingest))
}

/// 403 for a webhook whose signature does not verify (nothing was touched before).
fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_signature",
        "webhook signature is invalid",
    )
}

/// The media WebSocket URL carriers stream to: `wss://host/media` (or `ws://` for plain-HTTP
/// development setups) from the public URL.
pub fn media_url(public_base: &str) -> String {
    let ws = if let Some(rest) = public_base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = public_base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        public_base.to_owned()
    };
    format!("{ws}/media")
}
