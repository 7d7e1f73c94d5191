//! Carrier webhooks (Twilio, Telnyx, the sandbox), PBX CDR ingestion and Stripe.
//!
//! The carrier flow shared by every carrier: look the dialled number up in the in-memory
//! table, verify the signature with the key of the account that owns the number, refuse
//! suspended or over-limit tenants, otherwise count the call, record it and hand out a
//! short-lived call token for the media stream.

pub mod cdr;
pub mod stripe;
pub mod telnyx;
pub mod transfer;
pub mod twilio;

use serde_json::json;

use crate::crypto::{Sealed, credential_aad};
use crate::http::errors::ApiError;
use crate::outbox;
use crate::state::AppState;
use crate::store::calls::{self, CallRow};
use crate::store::numbers::NumberRow;
use crate::store::tenants::{self, TenantRow};
use crate::store::usage::Metric;
use crate::store::{Scope, StoreError, credentials, new_id, now_ms};
use crate::usage::{self, Admission};

/// What to tell the carrier about a new inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundDecision {
    /// Connect the media stream with this call token.
    Connect {
        /// Gateway call id.
        call_id: String,
        /// Tenant slug.
        slug: String,
        /// Signed call token.
        token: String,
    },
    /// Refuse politely with this sentence.
    Refuse(&'static str),
}

/// Spoken to callers of a suspended tenant.
pub const SUSPENDED_MESSAGE: &str =
    "We are sorry, this number is not taking calls at the moment. Goodbye.";
/// Spoken to callers of a tenant over its monthly limit.
pub const OVER_LIMIT_MESSAGE: &str = "We are sorry, this line has reached its calling limit for this month. Please try again later. Goodbye.";
/// Spoken to callers of a number the gateway does not route.
pub const UNKNOWN_NUMBER_MESSAGE: &str =
    "We are sorry, the number you have dialled is not in service. Goodbye.";

/// The routing row of a dialled number, reloading the table on a miss (a number added
/// moments ago must not wait for the next periodic refresh), at most once a second.
pub async fn route(state: &AppState, dialled: &str) -> Result<Option<NumberRow>, StoreError> {
    if let Some(row) = state.voice.numbers.lookup(dialled) {
        return Ok(Some(row));
    }
    if state.voice.numbers.reload_after_miss(&state.store).await? {
        return Ok(state.voice.numbers.lookup(dialled));
    }
    Ok(None)
}

/// The default credential secret (and metadata) a tenant stored for a carrier vendor.
pub async fn tenant_carrier_secret(
    state: &AppState,
    tenant_id: &str,
    vendor: &str,
) -> Result<Option<(String, serde_json::Value)>, ApiError> {
    let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
    let rows = credentials::list(&mut tx, tenant_id).await?;
    tx.commit().await?;
    let Some(row) = rows
        .into_iter()
        .filter(|r| r.provider == vendor)
        .max_by_key(|r| r.is_default.0)
    else {
        return Ok(None);
    };
    let sealed = Sealed {
        key_id: row.key_id.clone(),
        ciphertext: row.ciphertext.clone(),
    };
    let secret = state
        .keyring
        .open(&sealed, &credential_aad(&row.tenant_id, &row.id))
        .map_err(|e| ApiError::internal(&e))?;
    let secret = String::from_utf8(secret).map_err(|e| ApiError::internal(&e))?;
    let metadata = serde_json::from_str(&row.metadata).unwrap_or(serde_json::Value::Null);
    Ok(Some((secret, metadata)))
}

/// Account SID and auth token of the Twilio account that owns `number`: the platform's from
/// configuration, or the tenant's stored `twilio` credential (SID in its metadata).
pub async fn twilio_account(
    state: &AppState,
    number: &NumberRow,
) -> Result<Option<(String, String)>, ApiError> {
    if number.account != "tenant" {
        let voice = &state.config.voice;
        return Ok(voice
            .twilio_account_sid
            .clone()
            .zip(state.voice.twilio_auth_token.clone()));
    }
    let Some((secret, metadata)) =
        tenant_carrier_secret(state, &number.tenant_id, "twilio").await?
    else {
        return Ok(None);
    };
    Ok(metadata
        .get("account_sid")
        .or_else(|| metadata.get("accountSid"))
        .and_then(|v| v.as_str())
        .map(|sid| (sid.to_owned(), secret)))
}

/// The tenant of a routed number.
pub async fn tenant_of(state: &AppState, tenant_id: &str) -> Result<Option<TenantRow>, StoreError> {
    let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
    let tenant = tenants::by_id(&mut tx, tenant_id).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// Decides a new inbound call on a verified webhook: refusal, or a recorded, counted call
/// with a call token. Retries of the same carrier call get the same call id.
pub async fn admit_inbound(
    state: &AppState,
    number: &NumberRow,
    carrier: &str,
    carrier_call_id: &str,
    from: Option<&str>,
    to: &str,
) -> Result<InboundDecision, ApiError> {
    let Some(tenant) = tenant_of(state, &number.tenant_id).await? else {
        return Ok(InboundDecision::Refuse(UNKNOWN_NUMBER_MESSAGE));
    };
    if tenant.suspended.0 {
        return Ok(InboundDecision::Refuse(SUSPENDED_MESSAGE));
    }
    let event_id = format!("call:{carrier}:{carrier_call_id}");
    if usage::admit_call(state, &tenant.id, &tenant.plan, &event_id).await? == Admission::OverLimit
    {
        tracing::info!(tenant = %tenant.slug, "call refused: monthly limit reached");
        return Ok(InboundDecision::Refuse(OVER_LIMIT_MESSAGE));
    }
    let now = now_ms();
    let fresh = CallRow {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        carrier: carrier.to_owned(),
        carrier_call_id: Some(carrier_call_id.to_owned()),
        direction: "inbound".to_owned(),
        from_number: from.map(str::to_owned),
        to_number: Some(to.to_owned()),
        status: "ringing".to_owned(),
        started_at: now,
        source: "carrier".to_owned(),
        updated_at: now,
        ..CallRow::default()
    };
    let mut tx = state.store.write(&Scope::tenant(&tenant.id)).await?;
    let stored = calls::insert_or_get(&mut tx, &fresh).await?;
    tx.commit().await?;
    if stored.id == fresh.id {
        state
            .voice
            .metrics
            .tenant_calls
            .with_label_values(&[tenant.slug.as_str()])
            .inc();
    }
    let token =
        state
            .voice
            .call_tokens
            .issue(&tenant.id, &tenant.slug, &stored.id, carrier, now / 1000);
    Ok(InboundDecision::Connect {
        call_id: stored.id,
        slug: tenant.slug,
        token,
    })
}

/// A campaign call being answered, ready to connect to the tenant's runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundAnswer {
    /// Gateway call id (written with the attempt).
    pub call_id: String,
    /// Tenant slug.
    pub slug: String,
    /// Signed call token.
    pub token: String,
    /// Campaign name (selects the runtime's campaign script).
    pub campaign: String,
    /// Contact id.
    pub contact: String,
}

/// Looks up the campaign attempt behind an answered outbound call on a verified webhook and
/// issues its call token; `None` for an attempt this number's tenant does not have. The
/// call was counted against the plan when the dialer placed it.
pub async fn admit_outbound(
    state: &AppState,
    number: &NumberRow,
    carrier: &str,
    carrier_call_id: &str,
    attempt_id: &str,
) -> Result<Option<OutboundAnswer>, ApiError> {
    let Some(tenant) = tenant_of(state, &number.tenant_id).await? else {
        return Ok(None);
    };
    let mut tx = state.store.write(&Scope::tenant(&tenant.id)).await?;
    let attempt = crate::store::dialer::attempt(&mut tx, &tenant.id, attempt_id).await?;
    if let Some(attempt) = &attempt {
        // The answer may beat the dialer's own record of the carrier's call id.
        calls::set_carrier_id(
            &mut tx,
            &tenant.id,
            &attempt.call_id,
            carrier_call_id,
            now_ms(),
        )
        .await?;
    }
    tx.commit().await?;
    let Some(attempt) = attempt else {
        tracing::warn!(tenant = %tenant.slug, "answer webhook names an unknown campaign attempt");
        return Ok(None);
    };
    let token = state.voice.call_tokens.issue(
        &tenant.id,
        &tenant.slug,
        &attempt.call_id,
        carrier,
        now_ms() / 1000,
    );
    Ok(Some(OutboundAnswer {
        call_id: attempt.call_id,
        slug: tenant.slug,
        token,
        campaign: attempt.campaign,
        contact: attempt.contact_id,
    }))
}

/// A carrier status change of a call.
#[derive(Debug, Clone, Default)]
pub struct StatusUpdate {
    /// Normalised status (`ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`, `canceled`).
    pub status: String,
    /// Call duration in seconds, on terminal events.
    pub duration_seconds: Option<i64>,
}

/// Whether a status ends the call.
pub fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "completed" | "busy" | "no-answer" | "failed" | "canceled"
    )
}

/// Applies a status change to a tenant's call (found by carrier id): answer/end times,
/// outcome, duration; on the first terminal status, bills minutes once and queues
/// `call.completed`. Unknown calls are ignored (e.g. calls refused before recording).
pub async fn apply_status(
    state: &AppState,
    tenant: &TenantRow,
    carrier: &str,
    carrier_call_id: &str,
    update: &StatusUpdate,
) -> Result<Option<CallRow>, StoreError> {
    let now = now_ms();
    let mut tx = state.store.write(&Scope::tenant(&tenant.id)).await?;
    let Some(mut call) =
        calls::by_carrier_id(&mut tx, &tenant.id, carrier, carrier_call_id).await?
    else {
        tx.commit().await?;
        return Ok(None);
    };
    let was_ended = call.ended_at.is_some();
    if update.status == "in-progress" && call.answered_at.is_none() {
        call.answered_at = Some(now);
    }
    if !was_ended {
        call.status = update.status.clone();
    }
    if is_terminal(&update.status) && !was_ended {
        call.ended_at = Some(now);
        call.outcome = Some(update.status.clone());
        if let Some(seconds) = update.duration_seconds {
            call.duration_seconds = Some(seconds);
            if seconds > 0 && call.answered_at.is_none() {
                call.answered_at = Some(now - seconds * 1000);
            }
        }
    }
    call.updated_at = now;
    calls::update(&mut tx, &call).await?;
    if is_terminal(&update.status) && !was_ended {
        finish_call(state, &mut tx, tenant, &call).await?;
    }
    tx.commit().await?;
    Ok(Some(call))
}

/// Bills a finished call's minutes (once per call id, whichever source reports first) and
/// queues `call.completed`.
pub async fn finish_call(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantRow,
    call: &CallRow,
) -> Result<(), StoreError> {
    let seconds = call.duration_seconds.unwrap_or(0);
    let minutes = (seconds + 59) / 60;
    if minutes > 0
        && usage::record(
            state,
            &mut *conn,
            &tenant.id,
            &tenant.plan,
            &format!("minutes:{}", call.id),
            Metric::CallMinutes,
            minutes,
        )
        .await?
    {
        state
            .voice
            .metrics
            .tenant_call_minutes
            .with_label_values(&[tenant.slug.as_str()])
            .inc_by(u64::try_from(minutes).unwrap_or(0));
    }
    if call.campaign.is_some() {
        // The dialer settles the contact (retry or final state) on its next pass.
        let outcome = call.outcome.as_deref().unwrap_or("completed");
        crate::store::dialer::end_attempt_for_call(
            &mut *conn,
            &tenant.id,
            &call.id,
            outcome,
            now_ms(),
        )
        .await?;
    }
    outbox::enqueue_event(
        conn,
        &tenant.id,
        "call.completed",
        json!({
            "callId": call.id, "tenant": tenant.slug, "direction": call.direction,
            "from": call.from_number, "to": call.to_number, "outcome": call.outcome,
            "durationSeconds": call.duration_seconds, "startedAt": call.started_at,
            "answeredAt": call.answered_at, "endedAt": call.ended_at,
            "transcript": format!("/api/v1/tenants/{}/calls/{}/transcript", tenant.slug, call.id),
        }),
    )
    .await?;
    Ok(())
}

/// `wss://host` (or `ws://` for plain-HTTP dev setups) from the public URL.
pub fn media_url(public_base: &str) -> String {
    let ws = if let Some(rest) = public_base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = public_base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        public_base.to_owned()
    };
    format!("{ws}/media")
}
