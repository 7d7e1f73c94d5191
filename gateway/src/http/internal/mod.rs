//! The cluster-internal API (`/internal/v1`). The operator's routes (campaigns, numbers) are
//! authenticated by the shared `SWITCHBOARD_INTERNAL_TOKEN` compared in constant time
//! ([`Internal`]); the runtimes' events by each tenant's runtime credential
//! ([`events::RuntimeCaller`]). Its wire types are
//! `switchboard_crds::internal_api` and `switchboard_crds::events`, shared with the operator
//! and the runtime.
//!
//! * [`events`] — runtime call events (`POST /internal/v1/events`);
//! * [`recordings`] — a recorded call's WAV file from the runtime
//!   (`PUT /internal/v1/tenants/{tenant}/calls/{callId}/recording`);
//! * [`campaigns`] — campaign registration, progress and stop by the operator;
//! * [`numbers`] — number routes set by the operator.

pub mod campaigns;
pub mod events;
pub mod numbers;
pub mod recordings;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::{get, post, put};

use super::errors::ApiError;
use crate::state::AppState;
use crate::store::constant_time_eq;

/// The internal API's routes (mounted beside the public API, without its per-IP budget).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/internal/v1/events", post(events::receive))
        .route(
            "/internal/v1/tenants/{tenant}/calls/{call_id}/recording",
            put(recordings::receive),
        )
        .route(
            "/internal/v1/tenants/{tenant}/campaigns/{name}",
            put(campaigns::register).delete(campaigns::stop),
        )
        .route(
            "/internal/v1/tenants/{tenant}/campaigns/{name}/progress",
            get(campaigns::progress),
        )
        .route(
            "/internal/v1/numbers/{e164}",
            put(numbers::put).delete(numbers::delete),
        )
}

/// Proof that the caller presented the internal token.
#[derive(Debug, Clone, Copy)]
pub struct Internal;

impl FromRequestParts<AppState> for Internal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.internal_token else {
            return Err(ApiError::unavailable(
                "the internal API is disabled (SWITCHBOARD_INTERNAL_TOKEN is unset)",
            ));
        };
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(given.trim(), expected) {
            Ok(Internal)
        } else {
            Err(ApiError::unauthorized(
                "invalid_token",
                "internal token is invalid",
            ))
        }
    }
}
