//! Part 2's routes. Tenant-facing ones join the API router (same per-IP limit and body
//! limit); carrier webhooks, the media entry and the internal API are mounted beside it
//! (carriers and the cluster must not share a per-IP budget with browsers).

use axum::Router;
use axum::routing::{get, post, put};

use crate::state::AppState;
use crate::{internal, media, usage, webhooks};

/// Routes under `/api/v1/tenants/{tenant}/…` (need a caller with access to the tenant).
pub fn tenant_api() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tenants/{tenant}/usage", get(usage::api::get))
        .route(
            "/api/v1/tenants/{tenant}/usage/history",
            get(usage::api::history),
        )
}

/// Carrier webhooks, the media WebSocket and the internal API.
pub fn machine_api(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/webhooks/twilio/voice",
            post(webhooks::twilio::voice),
        )
        .route(
            "/api/v1/webhooks/twilio/status",
            post(webhooks::twilio::status),
        )
        .route("/api/v1/webhooks/telnyx", post(webhooks::telnyx::webhook))
        .route("/media", get(media::proxy::entry))
        .route("/internal/v1/events", post(internal::events))
        .route(
            "/internal/v1/numbers/{e164}",
            put(internal::put_number).delete(internal::delete_number),
        )
        .with_state(state)
}
