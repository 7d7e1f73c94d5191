//! The cluster-internal API (`/internal/v1`), authenticated by the shared
//! `SWITCHBOARD_INTERNAL_TOKEN` compared in constant time: runtime events, number routing
//! and campaign registration (see `campaigns`).

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use switchboard_crds::events::{EventBatch, EventKind, RuntimeEvent};

use crate::http::errors::{ApiError, ApiJson};
use crate::state::AppState;
use crate::store::calls::{self, CallRow};
use crate::store::numbers::{self, NumberRow};
use crate::store::tenants::{self, TenantRow};
use crate::store::usage::Metric;
use crate::store::{Scope, StoreError, constant_time_eq, now_ms, system};
use crate::webhooks::finish_call;

/// Proof that the caller presented the internal token.
#[derive(Debug, Clone, Copy)]
pub struct Internal;

impl FromRequestParts<AppState> for Internal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.voice.internal_token else {
            return Err(ApiError::unavailable(
                "the internal API is disabled (SWITCHBOARD_INTERNAL_TOKEN is unset)",
            ));
        };
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(given.trim(), expected) {
            Ok(Internal)
        } else {
            Err(ApiError::unauthorized(
                "invalid_token",
                "internal token is invalid",
            ))
        }
    }
}

/// A tenant by slug or id, across tenants (the internal caller names it).
pub async fn tenant_by_key(state: &AppState, key: &str) -> Result<Option<TenantRow>, StoreError> {
    let mut tx = system::read(&state.store).await?;
    let tenant = tenants::by_slug_or_id(&mut tx, key).await?;
    tx.commit().await?;
    Ok(tenant)
}

/// Result of an event batch.
#[derive(Debug, Serialize)]
pub struct EventsReply {
    /// Events applied now.
    pub accepted: usize,
    /// Events seen before (ignored).
    pub duplicates: usize,
}

/// `POST /internal/v1/events`: applies each event once (by id).
pub async fn events(
    _: Internal,
    State(state): State<AppState>,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<Json<EventsReply>, ApiError> {
    let mut reply = EventsReply {
        accepted: 0,
        duplicates: 0,
    };
    for event in &batch.events {
        let Some(tenant) = tenant_by_key(&state, &event.tenant).await? else {
            return Err(ApiError::invalid(
                "tenant",
                "unknown_tenant",
                format!("unknown tenant {:?}", event.tenant),
            ));
        };
        let mut tx = state.store.write(&Scope::tenant(&tenant.id)).await?;
        if !calls::claim_runtime_event(&mut tx, &tenant.id, &event.id, now_ms()).await? {
            tx.commit().await?;
            reply.duplicates += 1;
            continue;
        }
        apply_event(&state, &mut tx, &tenant, event).await?;
        tx.commit().await?;
        reply.accepted += 1;
        // Carrier calls happen after the commit, never inside a database transaction. A
        // failed transfer is logged: the runtime then keeps the caller on the line.
        if let EventKind::TransferRequested { to } = &event.kind
            && let Err(error) =
                crate::webhooks::transfer::transfer(&state, &tenant, &event.call_id, to).await
        {
            tracing::warn!(%error, call_id = %event.call_id, "call transfer failed");
        }
    }
    Ok(Json(reply))
}

fn event_time(event: &RuntimeEvent) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&event.occurred_at)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|_| now_ms())
}

fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn apply_event(
    state: &AppState,
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantRow,
    event: &RuntimeEvent,
) -> Result<(), StoreError> {
    let at = event_time(event);
    let existing = calls::get(&mut *conn, &tenant.id, &event.call_id).await?;
    match &event.kind {
        EventKind::CallStarted {
            carrier,
            carrier_call_id,
            from,
            to,
            campaign,
            contact,
            ..
        } => {
            let mut call = match existing {
                Some(call) => call,
                None => {
                    let fresh = CallRow {
                        id: event.call_id.clone(),
                        tenant_id: tenant.id.clone(),
                        carrier: carrier.clone(),
                        carrier_call_id: carrier_call_id.clone(),
                        direction: if campaign.is_some() {
                            "outbound"
                        } else {
                            "inbound"
                        }
                        .to_owned(),
                        status: "in-progress".to_owned(),
                        started_at: at,
                        source: "runtime".to_owned(),
                        updated_at: at,
                        ..CallRow::default()
                    };
                    calls::insert_or_get(&mut *conn, &fresh).await?
                }
            };
            call.answered_at = call.answered_at.or(Some(at));
            if call.ended_at.is_none() {
                call.status = "in-progress".to_owned();
            }
            call.from_number = call.from_number.or_else(|| from.clone());
            call.to_number = call.to_number.or_else(|| to.clone());
            call.campaign = call.campaign.or_else(|| campaign.clone());
            call.contact = call.contact.or_else(|| contact.clone());
            call.updated_at = now_ms();
            calls::update(&mut *conn, &call).await?;
        }
        EventKind::CallEnded {
            reason,
            duration_ms,
            turns,
        } => {
            let Some(mut call) = existing else {
                tracing::warn!(call_id = %event.call_id, "callEnded for an unknown call");
                return Ok(());
            };
            call.turns = Some(i64::from(*turns));
            if call.ended_at.is_none() {
                call.ended_at = Some(at);
                call.status = "completed".to_owned();
                call.outcome = Some(wire_name(reason));
                call.duration_seconds =
                    Some(i64::try_from(duration_ms.div_ceil(1000)).unwrap_or(i64::MAX));
                call.updated_at = now_ms();
                calls::update(&mut *conn, &call).await?;
                finish_call(state, conn, tenant, &call).await?;
            } else {
                call.updated_at = now_ms();
                calls::update(&mut *conn, &call).await?;
            }
        }
        EventKind::TranscriptTurn {
            index,
            role,
            text,
            offset_ms,
            ..
        } => {
            let offset = i64::try_from(*offset_ms).unwrap_or(i64::MAX);
            calls::insert_turn(
                conn,
                &tenant.id,
                &event.call_id,
                i64::from(*index),
                &wire_name(role),
                text,
                offset,
            )
            .await?;
        }
        EventKind::Usage {
            stt_seconds,
            tts_characters,
            ..
        } => {
            // Float seconds from the runtime; whole milliseconds are plenty for billing.
            let stt_ms = (stt_seconds.max(0.0) * 1000.0).round() as i64;
            let tts = i64::try_from(*tts_characters).unwrap_or(i64::MAX);
            crate::usage::record(
                state,
                &mut *conn,
                &tenant.id,
                &tenant.plan,
                &format!("{}:stt", event.id),
                Metric::SttMs,
                stt_ms,
            )
            .await?;
            crate::usage::record(
                state,
                conn,
                &tenant.id,
                &tenant.plan,
                &format!("{}:tts", event.id),
                Metric::TtsCharacters,
                tts,
            )
            .await?;
        }
        EventKind::SurveyAnswer { field, raw, value } => {
            let campaign_call = existing
                .as_ref()
                .and_then(|call| Some((call.campaign.as_deref()?, call.contact.as_deref()?)));
            let Some((campaign, contact)) = campaign_call else {
                tracing::warn!(call_id = %event.call_id, "surveyAnswer for a call outside a campaign");
                return Ok(());
            };
            crate::store::dialer::upsert_answer(
                conn,
                &tenant.id,
                campaign,
                contact,
                field,
                raw,
                &value.to_string(),
                &event.call_id,
                at,
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Body of `PUT /internal/v1/numbers/{e164}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberBody {
    /// Tenant slug or id.
    pub tenant: String,
    /// `twilio`, `telnyx` or `sandbox`.
    pub carrier: String,
    /// `platform` (default) or `tenant`.
    #[serde(default)]
    pub account: Option<String>,
    /// Agent name.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `PUT /internal/v1/numbers/{e164}`: routes a number to a tenant (the operator calls this
/// when a PhoneNumber becomes ready). The in-memory table is reloaded at once.
pub async fn put_number(
    _: Internal,
    State(state): State<AppState>,
    Path(e164): Path<String>,
    ApiJson(body): ApiJson<NumberBody>,
) -> Result<StatusCode, ApiError> {
    let e164 = crate::numbers::normalise(&e164);
    if e164.len() < 3 {
        return Err(ApiError::invalid(
            "e164",
            "invalid_number",
            "expected an E.164 number",
        ));
    }
    if !matches!(body.carrier.as_str(), "twilio" | "telnyx" | "sandbox") {
        return Err(ApiError::invalid(
            "carrier",
            "invalid_carrier",
            "expected twilio, telnyx or sandbox",
        ));
    }
    let account = body.account.unwrap_or_else(|| "platform".to_owned());
    if !matches!(account.as_str(), "platform" | "tenant") {
        return Err(ApiError::invalid(
            "account",
            "invalid_account",
            "expected platform or tenant",
        ));
    }
    let tenant = tenant_by_key(&state, &body.tenant)
        .await?
        .ok_or_else(|| ApiError::invalid("tenant", "unknown_tenant", "unknown tenant"))?;
    let mut tx = system::write(&state.store).await?;
    numbers::upsert(
        &mut tx,
        &NumberRow {
            e164,
            tenant_id: tenant.id,
            carrier: body.carrier,
            account,
            agent: body.agent,
            updated_at: now_ms(),
        },
    )
    .await?;
    tx.commit().await?;
    state.voice.numbers.reload(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /internal/v1/numbers/{e164}`.
pub async fn delete_number(
    _: Internal,
    State(state): State<AppState>,
    Path(e164): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = system::write(&state.store).await?;
    numbers::delete(&mut tx, &crate::numbers::normalise(&e164)).await?;
    tx.commit().await?;
    state.voice.numbers.reload(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}
