//! The middleware recording every request in the HTTP metrics ([`crate::metrics::HttpMetrics`]),
//! by route template, and webhooks refused for a bad signature or bad credentials.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::errors::ErrorCode;
use crate::state::AppState;

/// Error codes of a webhook refused because its sender could not be authenticated: a
/// signature that does not verify (carriers, Stripe) or bad credentials (PBX CDRs).
const AUTHENTICATION_FAILURES: [&str; 2] = ["invalid_signature", "invalid_credentials"];

/// Middleware recording every request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>()
        && AUTHENTICATION_FAILURES.contains(code)
        && let Some(source) = webhook_source(&route)
    {
        state
            .metrics
            .webhook_signature_failures
            .with_label_values(&[source])
            .inc();
    }
    state.http_metrics.record(
        &method,
        &route,
        response.status().as_str(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The sender of a webhook route (`twilio`, `telnyx`, `stripe`, `cdr`), `None` for other routes.
fn webhook_source(route: &str) -> Option<&str> {
    let rest = route.strip_prefix("/api/v1/webhooks/")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::webhook_source;

    #[test]
    fn webhook_routes_name_their_sender() {
        assert_eq!(
            webhook_source("/api/v1/webhooks/twilio/voice"),
            Some("twilio")
        );
        assert_eq!(webhook_source("/api/v1/webhooks/cdr/{tenant}"), Some("cdr"));
        assert_eq!(webhook_source("/api/v1/webhooks/stripe"), Some("stripe"));
        assert_eq!(webhook_source("/api/v1/tenants/{tenant}/calls"), None);
    }
}
