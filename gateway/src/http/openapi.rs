//! The OpenAPI document of the public API, generated from the router itself
//! ([`super::api_routes`]: every route is registered from its handler's `#[utoipa::path]`,
//! with the request, response and query types' schemas), served at `/api/v1/openapi.json`,
//! and rendered for people at `/api/docs` ([`super::reference`]).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// What the document says besides its paths (those come from the router).
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard gateway API", description = "Accounts, tenants, members, API keys, provider credentials, numbers, campaigns, usage, calls, billing and customer webhooks. Authenticate with `Authorization: Bearer <access token or API key>`.\n\nConventions: every field is camelCase; every list answers `{\"items\": [...], \"nextCursor\": \"<opaque>\" | null}` and takes `?cursor=` (the previous page's `nextCursor`) and `?limit=`; errors answer `{\"error\": {\"code\", \"message\", \"field\"}}`; tenant-scoped `POST`s honour `Idempotency-Key`."),
    modifiers(&BearerAuth),
    tags(
        (name = "meta", description = "This API's description"),
        (name = "auth", description = "Signup, login, sessions, e-mail verification, password reset"),
        (name = "tenants", description = "Tenants and their agent configuration"),
        (name = "members", description = "Members, roles and invitations"),
        (name = "api-keys", description = "Customer API keys"),
        (name = "credentials", description = "Bring-your-own provider credentials"),
        (name = "agents", description = "A tenant's named agents and its default agent"),
        (name = "audit", description = "Audit log"),
        (name = "numbers", description = "Phone numbers"),
        (name = "campaigns", description = "Outbound campaigns, contacts, results and the do-not-call list"),
        (name = "usage", description = "Usage against the plan's limits"),
        (name = "calls", description = "Call records, transcripts and PBX CDR credentials"),
        (name = "billing", description = "Stripe Checkout, Billing Portal and subscription status"),
        (name = "webhooks", description = "Outbound customer webhooks (Standard Webhooks signatures)"),
        (name = "data", description = "Retention, export and deletion of a tenant's and a person's data"),
        (name = "admin", description = "The platform admins (SWITCHBOARD_PLATFORM_ADMINS): tenants, suspension, plan overrides, system health"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token (JWT) from login/signup, or an API key (sbk_…)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, made once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string(&super::openapi_document()).unwrap_or_else(|error| {
        tracing::error!(%error, "cannot serialise the OpenAPI document");
        "{}".to_owned()
    })
});

/// The HTML reference, rendered once.
static REFERENCE: LazyLock<String> =
    LazyLock::new(|| super::reference::render(&super::openapi_document()));

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, content_type = "application/json", body = Object, description = "The OpenAPI 3.1 document of the public API")))]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// `GET /api/docs`: the API reference as one self-contained HTML page (no scripts, no
/// external assets: it works on air-gapped clusters).
#[utoipa::path(get, path = "/api/docs", tag = "meta",
    responses((status = 200, content_type = "text/html", body = String, description = "The API reference, rendered from the OpenAPI document")))]
pub async fn reference() -> Html<&'static str> {
    Html(REFERENCE.as_str())
}
