//! Every HTTP handler, and the one place the gateway's router is assembled ([`app`]).
//!
//! * The public API under `/api/v1`, one module per resource: [`auth`], [`tenants`],
//!   [`members`], [`api_keys`], [`credentials`], [`agents`], [`test_calls`] (the console's
//!   "call it now"), [`numbers`], [`campaigns`], [`calls`],
//!   [`recordings`] (a call's recording and its audio),
//!   [`usage`], [`billing`], [`customer_webhooks`], [`audit`], [`data_lifecycle`] (retention,
//!   export, deletion) and [`admin`] (the platform admins) (plus [`openapi`], the document
//!   generated from the router, and [`reference`], its offline HTML rendering at `/api/docs`). It shares a
//!   per-IP rate limit and a body limit.
//! * Beside it, without that per-IP budget (carriers and the cluster must not share one with
//!   browsers): [`webhooks`] (carriers, Stripe, PBX CDRs), [`media`] (the media WebSocket
//!   entry) and [`internal`] (the cluster-internal API).
//! * The tenant console at `/` (static pages compiled in): [`console`].
//! * The server loop with its connection limits: [`server`].
//! * Cross-cutting: [`csv_export`] (spreadsheet-safe CSV), [`errors`] (the error shape and the mapping of domain errors),
//!   [`principal`] (who is calling), [`context`], [`page`] (the one list envelope and its
//!   cursors), [`ratelimit`], [`metrics`], [`validate`],
//!   [`idempotency`] (`Idempotency-Key` on tenant-scoped `POST`s).
//!
//! Handlers parse, authorise and answer; the work is done by the domain modules below
//! (`calls`, `campaigns`, `usage`, `billing`, …), which never speak HTTP.

pub mod admin;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod calls;
pub mod campaigns;
pub mod console;
pub mod context;
pub mod credentials;
pub mod csv_export;
pub mod customer_webhooks;
pub mod data_lifecycle;
pub mod errors;
pub mod idempotency;
pub mod internal;
pub mod media;
pub mod members;
pub mod metrics;
pub mod numbers;
pub mod openapi;
pub mod page;
pub mod principal;
pub mod ratelimit;
pub mod recordings;
pub mod reference;
pub mod server;
pub mod tenants;
pub mod test_calls;
pub mod usage;
pub mod validate;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use switchboard_telemetry::{ReadinessCheck, health_router, observability_router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use errors::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The gateway's router: the API under `/api/v1`; carrier, Stripe and PBX webhooks, the media
/// entry and the internal API beside it; `/healthz` and `/readyz` (checks the database; fails
/// while draining, see [`crate::drain`]). `/metrics` is not here: it names tenants, so it is
/// served on the metrics port only ([`metrics_app`]).
///
/// The tenant console ([`console`]) is served at `/` beside them.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that per-IP rate
/// limits see the peer address.
pub fn app(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .route_layer(from_fn_with_state(state.clone(), idempotency::guard))
        .layer(from_fn_with_state(state.clone(), ratelimit::per_ip))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .with_state(state.clone());
    let mut router = Router::new()
        .merge(api)
        .merge(health_router(readiness(&state)))
        .merge(machine_routes().with_state(state.clone()))
        .merge(console::routes().with_state(state.clone()))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(from_fn_with_state(state.clone(), metrics::track))
        // A body that stalls longer than this between chunks is answered 408 (the header-read
        // timeout is in `server`): a client cannot hold a request open by sending nothing.
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
            state.config.body_read_timeout_secs.max(1),
        )));
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

/// Readiness of a gateway: not draining, and the database answers.
pub fn readiness(state: &AppState) -> ReadinessCheck {
    let store = state.store.clone();
    let drain = state.drain.clone();
    Arc::new(move || {
        let store = store.clone();
        let draining = drain.is_draining();
        Box::pin(async move {
            if draining {
                return Err("draining: taking no new calls".to_owned());
            }
            store.ping().await.map_err(|e| e.to_string())
        })
    })
}

/// The metrics port's router: `/metrics`, `/healthz` and `/readyz`. Served by the binary on
/// `SWITCHBOARD_METRICS_LISTEN` (see `switchboard_telemetry::serve_observability`); never
/// merged into [`app`].
pub fn metrics_app(state: &AppState) -> Router {
    observability_router(state.registry.clone(), readiness(state))
}

/// The public API (per-IP limit and body limit apply) with its OpenAPI description: every
/// route is registered with `routes!` from its handler's `#[utoipa::path]`, so the router and
/// the document are one list and cannot drift apart.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi::document))
        .routes(routes!(openapi::reference))
        .merge(auth::routes())
        .merge(tenants::routes())
        .merge(members::routes())
        .merge(api_keys::routes())
        .merge(credentials::routes())
        .merge(agents::routes())
        .merge(test_calls::routes())
        .merge(audit::routes())
        .merge(numbers::routes())
        .merge(campaigns::routes())
        .merge(calls::routes())
        .merge(recordings::routes())
        .merge(usage::routes())
        .merge(billing::routes())
        .merge(customer_webhooks::routes())
        .merge(data_lifecycle::routes())
        .merge(admin::routes())
}

/// The OpenAPI document of the public API, as [`api_routes`] builds it (served at
/// `/api/v1/openapi.json` and rendered at `/api/docs`).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_routes().into_openapi()
}

/// Carrier, Stripe and PBX webhooks, the media WebSocket and the internal API.
fn machine_routes() -> Router<AppState> {
    Router::new()
        .merge(webhooks::routes())
        .merge(media::routes())
        .merge(internal::routes())
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
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                REQUEST_ID,
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                REQUEST_ID,
                header::RETRY_AFTER,
                HeaderName::from_static("idempotent-replayed"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Maps a rejected extractor or handler result into a response (keeps handler signatures short).
pub fn error_response(error: ApiError) -> axum::response::Response {
    error.into_response()
}
