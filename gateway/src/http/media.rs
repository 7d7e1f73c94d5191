//! `GET /media`: the carriers' media WebSocket entry, upgraded and handed to the media proxy
//! ([`crate::media::proxy`]), which admits only streams with a valid call token.

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;

use crate::media::proxy::{self, MediaContext};
use crate::state::AppState;

/// The media route (mounted beside the public API, without its per-IP budget).
pub fn routes() -> Router<AppState> {
    Router::new().route("/media", get(entry))
}

/// `GET /media`.
pub async fn entry(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let context = MediaContext {
        store: state.store.clone(),
        config: state.config.clone(),
        call_tokens: state.call_tokens.clone(),
        media_gate: state.media_gate.clone(),
        metrics: state.metrics.clone(),
        drain: state.drain.clone(),
        runtime_addresses: state.runtime_addresses.clone(),
    };
    // Bounded before anything is authenticated: tungstenite's defaults (64 MiB messages,
    // 16 MiB frames) let a socket without a call token make the proxy buffer that much.
    let limit = state.config.voice.media_max_message_bytes.max(1024);
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| proxy::serve(context, socket))
}
