//! `GET /media`: the carriers' media WebSocket entry, upgraded and handed to the media proxy
//! ([`crate::media::proxy`]), which admits only streams with a valid call token.

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;

use crate::media::proxy;
use crate::state::AppState;

/// The media route (mounted beside the public API, without its per-IP budget).
pub fn routes() -> Router<AppState> {
    Router::new().route("/media", get(entry))
}

/// `GET /media`.
pub async fn entry(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| proxy::serve(state, socket))
}
