//! Part 2's routes. Tenant-facing ones join the API router (same per-IP limit and body
//! limit); carrier webhooks, the media entry and the internal API are mounted beside it
//! (carriers and the cluster must not share a per-IP budget with browsers).

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;
use crate::{billing, calls, campaigns, customer_webhooks, internal, media, usage, webhooks};

/// Routes under `/api/v1/tenants/{tenant}/…` (need a caller with access to the tenant).
pub fn tenant_api() -> Router<AppState> {
    const T: &str = "/api/v1/tenants/{tenant}";
    Router::new()
        .route(&format!("{T}/usage"), get(usage::api::get))
        .route(&format!("{T}/usage/history"), get(usage::api::history))
        .route(&format!("{T}/calls"), get(calls::list))
        .route(&format!("{T}/calls/stats"), get(calls::stats))
        .route(&format!("{T}/calls/export.csv"), get(calls::export_csv))
        .route(&format!("{T}/calls/{{id}}"), get(calls::get))
        .route(
            &format!("{T}/calls/{{id}}/transcript"),
            get(calls::transcript),
        )
        .route(
            &format!("{T}/cdr-credentials"),
            post(calls::rotate_cdr_credential),
        )
        .route(&format!("{T}/billing/checkout"), post(billing::checkout))
        .route(&format!("{T}/billing/portal"), post(billing::portal))
        .route(&format!("{T}/billing/status"), get(billing::status))
        .route(
            &format!("{T}/webhooks"),
            get(customer_webhooks::list).post(customer_webhooks::create),
        )
        .route(
            &format!("{T}/webhooks/deliveries"),
            get(customer_webhooks::deliveries),
        )
        .route(
            &format!("{T}/webhooks/{{id}}"),
            delete(customer_webhooks::delete),
        )
}

/// Carrier webhooks, Stripe, PBX CDRs, the media WebSocket and the internal API.
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
        .route("/api/v1/webhooks/stripe", post(webhooks::stripe::webhook))
        .route("/api/v1/webhooks/cdr/{tenant}", post(webhooks::cdr::ingest))
        .route("/media", get(media::proxy::entry))
        .route("/internal/v1/events", post(internal::events))
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
            put(internal::put_number).delete(internal::delete_number),
        )
        .with_state(state)
}
