//! Billing: Stripe Checkout and Billing Portal sessions for a tenant, Stripe's webhook events
//! applied to the tenant's plan ([`stripe_events`]), and billed minutes reported to Stripe's
//! meters ([`meter`]).
//!
//! Stripe is called with reqwest and form bodies rather than async-stripe 1.0 (rc): the calls
//! are small, async-stripe's generated crates cost minutes of compile time on CI's two cores,
//! and its webhook parser keeps only the last `v1` signature (see [`stripe_events`]).

pub mod meter;
pub mod stripe_events;

use serde::Serialize;
use serde_json::Value;

use crate::state::AppState;

/// Why a Stripe session could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// `STRIPE_SECRET_KEY` is unset.
    #[error("billing is not configured (STRIPE_SECRET_KEY is unset)")]
    NotConfigured,
    /// No Stripe price is configured for the plan asked for.
    #[error("no Stripe price is configured for this plan")]
    UnknownPlan,
    /// The tenant has no Stripe customer yet.
    #[error("this tenant has no Stripe customer yet; subscribe first")]
    NoCustomer,
    /// Stripe could not be reached.
    #[error("Stripe is unreachable: {0}")]
    Unreachable(String),
    /// Stripe refused the request (its message) or answered without a session.
    #[error("{0}")]
    Refused(String),
}

/// A Stripe-hosted page to send the customer to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// Stripe session id.
    pub id: String,
    /// The page.
    pub url: String,
}

fn secret_key(state: &AppState) -> Result<&str, BillingError> {
    state
        .config
        .voice
        .stripe_secret_key
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or(BillingError::NotConfigured)
}

/// Creates a Stripe session: `POST {STRIPE_API_BASE}{path}` with `form`.
pub async fn create_session(
    state: &AppState,
    path: &str,
    form: &[(String, String)],
) -> Result<SessionView, BillingError> {
    let key = secret_key(state)?;
    let url = format!(
        "{}{path}",
        state.config.voice.stripe_api_base.trim_end_matches('/')
    );
    let response = state
        .http_client
        .post(url)
        .basic_auth(key, Some(""))
        .form(form)
        .send()
        .await
        .map_err(|e| BillingError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("Stripe refused the request");
        tracing::warn!(%status, message, "Stripe error");
        return Err(BillingError::Refused(message.to_owned()));
    }
    match (body["id"].as_str(), body["url"].as_str()) {
        (Some(id), Some(url)) => Ok(SessionView {
            id: id.to_owned(),
            url: url.to_owned(),
        }),
        _ => Err(BillingError::Refused(
            "Stripe answered without a session URL".to_owned(),
        )),
    }
}
