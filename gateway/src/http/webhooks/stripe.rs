//! `POST /api/v1/webhooks/stripe`: Stripe's signed billing events, applied by
//! [`crate::billing::stripe_events`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::billing::stripe_events::{self, Ack};
use crate::http::errors::ApiError;
use crate::state::AppState;

/// `POST /api/v1/webhooks/stripe`.
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Ack>, ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(Json(
        stripe_events::receive(&state, signature, &body).await?,
    ))
}
