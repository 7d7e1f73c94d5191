//! The middleware recording every request in the HTTP metrics ([`crate::metrics::HttpMetrics`]),
//! by route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// Middleware recording every request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.http_metrics.record(
        &method,
        &route,
        response.status().as_str(),
        started.elapsed().as_secs_f64(),
    );
    response
}
