//! Stripe's webhook events (`POST /api/v1/webhooks/stripe`), applied to a tenant's plan.
//!
//! Verified by hand rather than with async-stripe's parser, which keeps only the last `v1`
//! of the header: `Stripe-Signature: t=…,v1=…[,v1=…]` must carry a `t` within 300 s of now
//! and at least one `v1` equal (constant time) to hex HMAC-SHA256(secret, "{t}.{body}") for
//! one of the configured endpoint secrets (several during a roll). Then the event JSON is
//! read for the few fields used. Each event id is processed once (`stripe_events`), in the
//! same transaction as its effect, so a redelivery is acknowledged and changes nothing.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use crate::state::AppState;
use crate::store::billing::{self, BillingRow};
use crate::store::tenants;
use crate::store::{Backend, Scope, StoreError, Tx, now_ms, set_scope, system};

/// Stripe's default signature tolerance.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a Stripe signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StripeSignatureError {
    /// No `t` or no `v1` in the header.
    #[error("Stripe-Signature header is malformed")]
    Malformed,
    /// `t` is more than the tolerance away from now.
    #[error("Stripe-Signature timestamp outside the tolerance")]
    Stale,
    /// No `v1` matches any secret.
    #[error("no Stripe v1 signature matches")]
    Mismatch,
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Computes a `v1` signature (for tests and tools).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    mac(secret, &timestamp.to_string(), body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Verifies a `Stripe-Signature` header against any of `secrets`.
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<(), StripeSignatureError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.trim()),
            Some(("v1", sig)) => candidates.push(sig.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(StripeSignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(StripeSignatureError::Malformed);
    }
    let t: i64 = timestamp
        .parse()
        .map_err(|_| StripeSignatureError::Malformed)?;
    // Checked: `t` near i64::MIN must not wrap around into the window (or panic in debug).
    if now
        .checked_sub(t)
        .is_none_or(|skew| skew.unsigned_abs() > TOLERANCE_SECS.unsigned_abs())
    {
        return Err(StripeSignatureError::Stale);
    }
    let mut matched = false;
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for candidate in &candidates {
            let Ok(given) = hex::decode(candidate) else {
                continue;
            };
            if let Some(mac) = mac(secret, timestamp, body) {
                // `verify_slice` compares in constant time.
                matched |= mac.verify_slice(&given).is_ok();
            }
        }
    }
    if matched {
        Ok(())
    } else {
        Err(StripeSignatureError::Mismatch)
    }
}

/// The acknowledgement.
#[derive(Debug, Serialize)]
pub struct Ack {
    /// Always true.
    pub received: bool,
    /// The event id was processed before.
    pub duplicate: bool,
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = value;
    for key in path {
        v = v.get(*key)?;
    }
    v.as_str()
}

/// Why a Stripe event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum StripeEventError {
    /// The signature header is missing, stale or does not match.
    #[error(transparent)]
    Signature(#[from] StripeSignatureError),
    /// The body is not JSON.
    #[error("event is not JSON")]
    NotJson,
    /// The event has no id.
    #[error("event has no id")]
    NoId,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for StripeEventError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

/// Verifies a signed event (`Stripe-Signature` header value and raw body) and applies it once
/// per event id; a tenant whose plan changed gets its Tenant CR updated afterwards.
pub async fn receive(
    state: &AppState,
    signature: &str,
    body: &[u8],
) -> Result<Ack, StripeEventError> {
    verify(
        signature,
        body,
        &state.config.voice.stripe_webhook_secrets,
        chrono::Utc::now().timestamp(),
    )
    .inspect_err(|e| tracing::warn!(error = %e, "rejected Stripe webhook"))?;
    let event: Value = serde_json::from_slice(body).map_err(|_| StripeEventError::NotJson)?;
    let id = text(&event, &["id"]).ok_or(StripeEventError::NoId)?;
    let kind = text(&event, &["type"]).unwrap_or_default().to_owned();
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut tx = system::write(&state.store).await?;
    if !billing::claim_event(&mut tx, id, &kind, now_ms()).await? {
        tx.commit().await?;
        return Ok(Ack {
            received: true,
            duplicate: true,
        });
    }
    let changed = apply(state, &mut tx, &kind, &object).await?;
    tx.commit().await?;
    if let Some(tenant_id) = changed {
        sync_tenant_cr(state, &tenant_id).await;
    }
    Ok(Ack {
        received: true,
        duplicate: false,
    })
}

/// Pushes a tenant's new plan to its Tenant CR (Kubernetes mode); failures are logged and
/// healed by the next change or the operator's resync.
async fn sync_tenant_cr(state: &AppState, tenant_id: &str) {
    if !state.kube.enabled() {
        return;
    }
    let tenant = match tenants::load(&state.store, tenant_id).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, tenant_id, "cannot read the tenant to apply its new plan");
            return;
        }
    };
    // A plan the tenant's manifest holds stays the manifest's (the watcher mirrors it back).
    if let Err(error) = state.kube.apply_tenant(&tenant, &["plan"]).await {
        tracing::warn!(%error, tenant = %tenant.slug, "cannot apply the new plan to the Tenant CR");
    }
}

fn plan_of_subscription(state: &AppState, object: &Value) -> Option<String> {
    if let Some(plan) = text(object, &["metadata", "plan"]) {
        return Some(plan.to_owned());
    }
    let price = object
        .get("items")
        .and_then(|i| i.get("data"))
        .and_then(|d| d.get(0))
        .and_then(|item| text(item, &["price", "id"]))?;
    state.config.voice.plan_for_price(price).map(str::to_owned)
}

fn period_end(object: &Value) -> Option<i64> {
    object
        .get("current_period_end")
        .or_else(|| {
            object
                .get("items")
                .and_then(|i| i.get("data"))
                .and_then(|d| d.get(0))
                .and_then(|item| item.get("current_period_end"))
        })
        .and_then(Value::as_i64)
        .map(|s| s * 1000)
}

/// Applies one event; returns the tenant whose plan may have changed.
async fn apply(
    state: &AppState,
    tx: &mut Tx,
    kind: &str,
    object: &Value,
) -> Result<Option<String>, StoreError> {
    let now = now_ms();
    let tenant_id = match kind {
        "checkout.session.completed" => text(object, &["client_reference_id"]).map(str::to_owned),
        _ => {
            let customer = text(object, &["customer"]).unwrap_or_default();
            billing::tenant_of_customer(&mut *tx, customer).await?
        }
    };
    let Some(tenant_id) = tenant_id else {
        tracing::info!(kind, "Stripe event for no known tenant; acknowledged");
        return Ok(None);
    };
    // The tenant's own rows (its plan) are written under its scope.
    if state.store.backend() == Backend::Postgres {
        set_scope(tx, &Scope::tenant(&tenant_id)).await?;
    }
    if tenants::by_id(&mut *tx, &tenant_id).await?.is_none() {
        return Ok(None);
    }
    let mut row = billing::get(&mut *tx, &tenant_id)
        .await?
        .unwrap_or_else(|| BillingRow {
            tenant_id: tenant_id.clone(),
            limit_overrides: "{}".to_owned(),
            ..BillingRow::default()
        });
    let mut plan = None;
    match kind {
        "checkout.session.completed" => {
            row.stripe_customer_id = text(object, &["customer"])
                .map(str::to_owned)
                .or(row.stripe_customer_id);
            row.subscription_id = text(object, &["subscription"])
                .map(str::to_owned)
                .or(row.subscription_id);
            row.subscription_status = Some("active".to_owned());
            plan = text(object, &["metadata", "plan"]).map(str::to_owned);
        }
        "customer.subscription.created" | "customer.subscription.updated" => {
            row.subscription_id = text(object, &["id"]).map(str::to_owned);
            let status = text(object, &["status"]).unwrap_or("active").to_owned();
            row.price_id = object
                .get("items")
                .and_then(|i| i.get("data"))
                .and_then(|d| d.get(0))
                .and_then(|item| text(item, &["price", "id"]))
                .map(str::to_owned);
            row.current_period_end = period_end(object).or(row.current_period_end);
            plan = match status.as_str() {
                "active" | "trialing" | "past_due" => plan_of_subscription(state, object),
                "canceled" | "unpaid" | "incomplete_expired" => Some("free".to_owned()),
                _ => None,
            };
            row.subscription_status = Some(status);
        }
        "customer.subscription.deleted" => {
            row.subscription_status = Some("canceled".to_owned());
            plan = Some("free".to_owned());
        }
        "invoice.paid" => row.subscription_status = Some("active".to_owned()),
        "invoice.payment_failed" => row.subscription_status = Some("past_due".to_owned()),
        _ => return Ok(None),
    }
    row.updated_at = now;
    billing::upsert(&mut *tx, &row).await?;
    let plan = plan.filter(|p| p.parse::<switchboard_crds::Plan>().is_ok());
    if let Some(plan) = &plan {
        let before = tenants::by_id(&mut *tx, &tenant_id)
            .await?
            .map(|t| t.plan)
            .unwrap_or_default();
        billing::set_plan(&mut *tx, &tenant_id, plan, now).await?;
        tracing::info!(tenant_id, plan, "plan changed by Stripe");
        crate::store::audit::record(
            &mut *tx,
            &crate::store::audit::AuditEvent {
                tenant_id: &tenant_id,
                actor_type: "system",
                actor_id: Some("stripe"),
                action: "billing.plan_changed",
                target_type: Some("tenant"),
                target_id: Some(&tenant_id),
                ip: None,
                request_id: None,
                details: serde_json::json!({"from": before, "to": plan, "event": kind}),
            },
            now,
        )
        .await?;
    }
    Ok(plan.map(|_| tenant_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15 item 8: `t` = now − 2^63 used to wrap around into the window (and panic in
    /// debug builds) before the signature was looked at.
    #[test]
    fn timestamps_that_would_overflow_are_stale() {
        let body = br#"{"id":"evt_1"}"#;
        let secrets = vec!["whsec".to_owned()];
        let now: i64 = 1_800_000_000;
        for t in [i64::MIN, now.wrapping_sub(i64::MAX), i64::MAX] {
            let good = sign("whsec", t, body);
            assert_eq!(
                verify(&format!("t={t},v1={good}"), body, &secrets, now),
                Err(StripeSignatureError::Stale),
                "{t}"
            );
        }
    }

    #[test]
    fn any_v1_may_match_and_stale_or_wrong_ones_fail() {
        let body = br#"{"id":"evt_1"}"#;
        let secrets = vec!["whsec_new".to_owned()];
        let good = sign("whsec_new", 1_000, body);
        let old = sign("whsec_old", 1_000, body);
        assert_eq!(
            verify(&format!("t=1000,v1={old},v1={good}"), body, &secrets, 1_100),
            Ok(())
        );
        assert_eq!(
            verify(&format!("t=1000,v1={good},v1={old}"), body, &secrets, 1_100),
            Ok(())
        );
        assert_eq!(
            verify(&format!("t=1000,v1={old}"), body, &secrets, 1_100),
            Err(StripeSignatureError::Mismatch)
        );
        assert_eq!(
            verify(&format!("t=1000,v1={good}"), body, &secrets, 1_301),
            Err(StripeSignatureError::Stale)
        );
        assert_eq!(
            verify(&format!("t=1000,v1={good}"), b"{}", &secrets, 1_100),
            Err(StripeSignatureError::Mismatch)
        );
        assert_eq!(
            verify("v1=00", body, &secrets, 0),
            Err(StripeSignatureError::Malformed)
        );
        assert_eq!(
            verify(&format!("t=1000,v0={good}"), body, &secrets, 1_100),
            Err(StripeSignatureError::Malformed)
        );
    }
}
