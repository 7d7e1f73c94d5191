//! Reporting metered usage to Stripe (metered plans): billed call minutes of tenants with a
//! Stripe customer and a live subscription are sent as meter events
//! (`POST /v1/billing/meter_events`, `event_name` = `STRIPE_METER_EVENT_NAME`,
//! `payload[stripe_customer_id]`, `payload[value]`, `identifier` = our usage event id,
//! `timestamp`). Stripe deduplicates on `identifier`, so at-least-once sending is safe.
//! Events older than Stripe's 35-day window are skipped.

use std::time::Duration;

use crate::state::AppState;
use crate::store::usage::{mark_reported, unreported_minutes};
use crate::store::{StoreError, now_ms, system};

/// Stripe accepts meter events up to 35 days old; stay a day inside that.
const MAX_AGE_MS: i64 = 34 * 86_400_000;

/// One pass: reports up to 100 unreported minute events; returns how many were accepted.
pub async fn report_once(state: &AppState) -> Result<usize, StoreError> {
    let voice = &state.config.voice;
    let (Some(event_name), Some(key)) = (&voice.stripe_meter_event_name, &voice.stripe_secret_key)
    else {
        return Ok(0);
    };
    let mut tx = system::read(&state.store).await?;
    let pending = unreported_minutes(&mut tx, now_ms() - MAX_AGE_MS, 100).await?;
    tx.commit().await?;
    let url = format!(
        "{}/v1/billing/meter_events",
        voice.stripe_api_base.trim_end_matches('/')
    );
    let mut reported = 0;
    for event in pending {
        let form = [
            ("event_name", event_name.clone()),
            (
                "payload[stripe_customer_id]",
                event.stripe_customer_id.clone(),
            ),
            ("payload[value]", event.amount.to_string()),
            ("identifier", format!("{}:{}", event.tenant_id, event.id)),
            ("timestamp", (event.created_at / 1000).to_string()),
        ];
        let sent = state
            .http_client
            .post(&url)
            .basic_auth(key, Some(""))
            .form(&form)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                let mut tx = system::write(&state.store).await?;
                mark_reported(&mut tx, &event.tenant_id, &event.id, now_ms()).await?;
                tx.commit().await?;
                reported += 1;
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), "Stripe refused a meter event; will retry");
                break;
            }
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "Stripe meter event failed; will retry");
                break;
            }
        }
    }
    Ok(reported)
}

/// Reports every `every` until aborted (only when a meter event name is configured).
pub fn spawn(state: AppState, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
    state.config.voice.stripe_meter_event_name.as_ref()?;
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            if let Err(error) = report_once(&state).await {
                tracing::warn!(%error, "Stripe meter reporting pass failed");
            }
        }
    }))
}
