//! Admission of calls on verified carrier webhooks: a new inbound call is refused (unknown
//! number, suspended tenant, monthly limit reached) or recorded, counted once per carrier
//! call and handed a short-lived call token for its media stream; an answered campaign call
//! gets the token of the call the dialer recorded with its attempt.

use super::CallError;
use super::writer::{InboundCall, InboundRecord, Refusal};
use crate::state::AppState;
use crate::store::calls;
use crate::store::numbers::NumberRow;
use crate::store::{Scope, now_ms, tenants};

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

/// Decides a new inbound call on a verified webhook: refusal, or a recorded, counted call
/// with a call token. Retries of the same carrier call get the same call id. The admission
/// and the record are written by the group-commit writer ([`crate::calls::writer`]) with the
/// other calls of the moment; the answer comes once they are committed.
pub async fn admit_inbound(
    state: &AppState,
    number: &NumberRow,
    carrier: &str,
    carrier_call_id: &str,
    from: Option<&str>,
    to: &str,
) -> Result<InboundDecision, CallError> {
    if state.drain.is_draining() {
        return Err(CallError::Draining);
    }
    let record = state
        .call_writer
        .record_inbound(InboundCall {
            tenant_id: number.tenant_id.clone(),
            carrier: carrier.to_owned(),
            carrier_call_id: carrier_call_id.to_owned(),
            from: from.map(str::to_owned),
            to: to.to_owned(),
        })
        .await?;
    let (call_id, slug) = match record {
        InboundRecord::Refused(Refusal::UnknownTenant) => {
            return Ok(InboundDecision::Refuse(UNKNOWN_NUMBER_MESSAGE));
        }
        InboundRecord::Refused(Refusal::Suspended) => {
            return Ok(InboundDecision::Refuse(SUSPENDED_MESSAGE));
        }
        InboundRecord::Refused(Refusal::OverLimit) => {
            tracing::info!(tenant_id = %number.tenant_id, "call refused: monthly limit reached");
            return Ok(InboundDecision::Refuse(OVER_LIMIT_MESSAGE));
        }
        InboundRecord::Recorded { call_id, slug, new } => {
            if new {
                state
                    .metrics
                    .tenant_calls
                    .with_label_values(&[slug.as_str()])
                    .inc();
            }
            (call_id, slug)
        }
    };
    let token =
        state
            .call_tokens
            .issue(&number.tenant_id, &slug, &call_id, carrier, now_ms() / 1000);
    Ok(InboundDecision::Connect {
        call_id,
        slug,
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
) -> Result<Option<OutboundAnswer>, CallError> {
    let Some(tenant) = tenants::load(&state.store, &number.tenant_id).await? else {
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
    let token = state.call_tokens.issue(
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
