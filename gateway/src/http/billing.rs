//! A tenant's billing over the API: Checkout session for a plan, Billing Portal session, and
//! the billing status (plan, subscription, usage against limits). Sessions are made by
//! [`crate::billing`].

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::errors::{ApiError, ApiJson};
use super::principal::TenantAccess;
use super::usage::{UsageReply, current};
use crate::billing::{BillingError, SessionView, create_session};
use crate::state::AppState;
use crate::store::billing::{self, BillingRow};
use crate::store::tenants::Role;

/// The billing routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkout))
        .routes(routes!(portal))
        .routes(routes!(status))
}

/// Body of a Checkout request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutBody {
    /// `starter`, `professional` or `enterprise`.
    pub plan: String,
    /// Where Stripe sends the customer after paying.
    pub success_url: Option<String>,
    /// Where Stripe sends the customer after cancelling.
    pub cancel_url: Option<String>,
}

async fn billing_row(
    state: &AppState,
    access: &TenantAccess,
) -> Result<Option<BillingRow>, ApiError> {
    let mut tx = state.store.read(&access.scope()).await?;
    let row = billing::get(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    Ok(row)
}

/// `POST /api/v1/tenants/{tenant}/billing/checkout` (admins).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/billing/checkout", tag = "billing", params(("tenant" = String, Path, description = "Tenant slug or id")), request_body = CheckoutBody,
    responses((status = 200, body = SessionView, description = "A Stripe Checkout session URL"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn checkout(
    State(state): State<AppState>,
    access: TenantAccess,
    ApiJson(body): ApiJson<CheckoutBody>,
) -> Result<Json<SessionView>, ApiError> {
    access.require(Role::Admin)?;
    let price = state
        .config
        .voice
        .price_for(&body.plan)
        .ok_or(BillingError::UnknownPlan)?
        .to_owned();
    let base = state.config.public_base();
    let slug = &access.tenant.slug;
    let mut form = vec![
        ("mode".to_owned(), "subscription".to_owned()),
        ("line_items[0][price]".to_owned(), price),
        ("line_items[0][quantity]".to_owned(), "1".to_owned()),
        (
            "success_url".to_owned(),
            body.success_url.unwrap_or_else(|| {
                format!("{base}/tenants/{slug}/billing?session={{CHECKOUT_SESSION_ID}}")
            }),
        ),
        (
            "cancel_url".to_owned(),
            body.cancel_url
                .unwrap_or_else(|| format!("{base}/tenants/{slug}/billing")),
        ),
        ("client_reference_id".to_owned(), access.tenant.id.clone()),
        ("metadata[plan]".to_owned(), body.plan.clone()),
        (
            "subscription_data[metadata][plan]".to_owned(),
            body.plan.clone(),
        ),
        (
            "subscription_data[metadata][tenant_id]".to_owned(),
            access.tenant.id.clone(),
        ),
    ];
    if let Some(customer) = billing_row(&state, &access)
        .await?
        .and_then(|b| b.stripe_customer_id)
    {
        form.push(("customer".to_owned(), customer));
    }
    Ok(Json(
        create_session(&state, "/v1/checkout/sessions", &form).await?,
    ))
}

/// Body of a portal request.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalBody {
    /// Where the portal's back link goes.
    pub return_url: Option<String>,
}

/// `POST /api/v1/tenants/{tenant}/billing/portal` (admins; needs a Stripe customer).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/billing/portal", tag = "billing", params(("tenant" = String, Path, description = "Tenant slug or id")), request_body(content = Option<PortalBody>, description = "Optional; an empty body takes the defaults"),
    responses((status = 200, body = SessionView, description = "A Stripe Billing Portal session URL"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn portal(
    State(state): State<AppState>,
    access: TenantAccess,
    body: axum::body::Bytes,
) -> Result<Json<SessionView>, ApiError> {
    // The body is optional: empty means defaults.
    let body: PortalBody = if body.is_empty() {
        PortalBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid body: {e}")))?
    };
    access.require(Role::Admin)?;
    let customer = billing_row(&state, &access)
        .await?
        .and_then(|b| b.stripe_customer_id)
        .ok_or(BillingError::NoCustomer)?;
    let return_url = body.return_url.unwrap_or_else(|| {
        format!(
            "{}/tenants/{}/billing",
            state.config.public_base(),
            access.tenant.slug
        )
    });
    let form = vec![
        ("customer".to_owned(), customer),
        ("return_url".to_owned(), return_url),
    ];
    Ok(Json(
        create_session(&state, "/v1/billing_portal/sessions", &form).await?,
    ))
}

/// Plan, subscription and usage against limits.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingStatus {
    /// Plan name.
    pub plan: String,
    /// Stripe subscription, when there is one.
    pub subscription: Option<BillingRow>,
    /// This month's usage and limits.
    pub usage: UsageReply,
}

/// `GET /api/v1/tenants/{tenant}/billing/status`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/billing/status", tag = "billing", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = BillingStatus, description = "Plan and subscription status"), (status = 403, body = super::errors::ErrorBody, description = "Not a member of the tenant, or the role is too low")), security(("bearer" = [])))]
pub async fn status(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<BillingStatus>, ApiError> {
    let subscription = billing_row(&state, &access).await?;
    let usage = current(&state, &access).await?;
    Ok(Json(BillingStatus {
        plan: access.tenant.plan.clone(),
        subscription,
        usage,
    }))
}
