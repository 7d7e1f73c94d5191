//! The HTTP API: routes, extractors and the cross-cutting layers.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod context;
pub mod credentials;
pub mod errors;
pub mod members;
pub mod metrics;
pub mod numbers;
pub mod openapi;
pub mod principal;
pub mod ratelimit;
pub mod tenants;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use switchboard_telemetry::{ReadinessCheck, observability_router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use errors::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The gateway's router: the API under `/api/v1`, plus `/healthz`, `/readyz` (checks the
/// database) and `/metrics`. Later parts add routes with [`Router::merge`] on the result.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that per-IP rate
/// limits see the peer address.
pub fn app(state: AppState) -> Router {
    let api = api_routes()
        .layer(from_fn_with_state(state.clone(), ratelimit::per_ip))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .with_state(state.clone());
    let store = state.store.clone();
    let ready: ReadinessCheck = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
    });
    let mut router = Router::new()
        .merge(api)
        .merge(observability_router(state.registry.clone(), ready))
        // Part 2: carrier webhooks, media entry, internal API (no per-IP budget).
        .merge(crate::routes::machine_api(state.clone()))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(from_fn_with_state(state.clone(), metrics::track));
    if let Some(cors) = cors_layer(&state.config.cors_allowed_origins) {
        router = router.layer(cors);
    }
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
            let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            // Path only: never query strings, which could carry tokens.
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/auth/signup", post(auth::signup))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/verify-email", post(auth::verify_email))
        .route(
            "/api/v1/auth/verify-email/resend",
            post(auth::resend_verification),
        )
        .route(
            "/api/v1/auth/password-reset",
            post(auth::request_password_reset),
        )
        .route(
            "/api/v1/auth/password-reset/confirm",
            post(auth::confirm_password_reset),
        )
        .route("/api/v1/invitations/accept", post(members::accept))
        .route("/api/v1/tenants", get(tenants::list))
        .route(
            "/api/v1/tenants/{tenant}",
            get(tenants::get).patch(tenants::patch),
        )
        .route("/api/v1/tenants/{tenant}/members", get(members::list))
        .route(
            "/api/v1/tenants/{tenant}/members/{user_id}",
            patch(members::change_role).delete(members::remove),
        )
        .route(
            "/api/v1/tenants/{tenant}/invitations",
            get(members::list_invitations).post(members::invite),
        )
        .route(
            "/api/v1/tenants/{tenant}/invitations/{id}",
            delete(members::revoke_invitation),
        )
        .route(
            "/api/v1/tenants/{tenant}/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route(
            "/api/v1/tenants/{tenant}/api-keys/{id}",
            delete(api_keys::revoke),
        )
        .route(
            "/api/v1/tenants/{tenant}/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/api/v1/tenants/{tenant}/credentials/{id}",
            get(credentials::get)
                .patch(credentials::update)
                .delete(credentials::delete),
        )
        .route("/api/v1/tenants/{tenant}/audit-log", get(audit::list))
        // Part 2: usage, calls, billing, customer webhooks.
        .merge(crate::routes::tenant_api())
        // Issue 8: the tenant's phone numbers (sandbox purchases in standalone mode).
        .merge(numbers::routes())
        // Issue 7: campaign progress, contacts upload, results and the do-not-call list.
        .merge(campaigns::routes())
}

/// CORS for the configured origins only; `None` (no CORS headers at all) when the list is empty.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
            .expose_headers([REQUEST_ID, header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

/// Maps a rejected extractor or handler result into a response (keeps handler signatures short).
pub fn error_response(error: ApiError) -> axum::response::Response {
    error.into_response()
}
