//! A call's life after admission: carrier status changes ([`apply_status`]) and runtime events
//! ([`apply_runtime_event`]) move it through [`CallStatus`]; the first terminal status, from
//! whichever source reports it first, ends it once ([`finish_call`]): minutes billed, the
//! campaign attempt closed for the dialer, `call.completed` queued for the customer.

use serde::Serialize;
use serde_json::json;
use switchboard_crds::events::{EventKind, RuntimeEvent};

use super::CallStatus;
use crate::outbox;
use crate::state::AppState;
use crate::store::calls::{self, CallRow};
use crate::store::tenants::TenantRow;
use crate::store::usage::Metric;
use crate::store::{Scope, StoreError, now_ms};
use crate::usage;

/// A carrier status change of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The new status.
    pub status: CallStatus,
    /// Call duration in seconds, on terminal events.
    pub duration_seconds: Option<i64>,
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
    let ends = update.status.is_terminal() && !was_ended;
    if update.status == CallStatus::InProgress && call.answered_at.is_none() {
        call.answered_at = Some(now);
    }
    if !was_ended {
        call.status = update.status.as_str().to_owned();
    }
    if ends {
        call.ended_at = Some(now);
        call.outcome = Some(update.status.as_str().to_owned());
        if let Some(seconds) = update.duration_seconds {
            // Signed by the carrier, but bounded all the same: a `CallDuration` of 9.2e17 would
            // bill 1.5e16 minutes and make every later sum of durations overflow.
            let seconds = switchboard_crds::call_bounds::clamp_duration(seconds);
            call.duration_seconds = Some(seconds);
            if seconds > 0 && call.answered_at.is_none() {
                call.answered_at = Some(now - seconds * 1000);
            }
        }
    }
    call.updated_at = now;
    calls::update(&mut tx, &call).await?;
    if ends {
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
            &mut *conn,
            &state.plan_limits,
            &tenant.id,
            &tenant.plan,
            &format!("minutes:{}", call.id),
            Metric::CallMinutes,
            minutes,
        )
        .await?
    {
        state
            .metrics
            .tenant_call_minutes
            .with_label_values(&[tenant.slug.as_str()])
            .inc_by(u64::try_from(minutes).unwrap_or(0));
    }
    if call.campaign.is_some() {
        // The dialer settles the contact (retry or final state) on its next pass.
        let outcome = call
            .outcome
            .as_deref()
            .unwrap_or(CallStatus::Completed.as_str());
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

/// Applies one runtime event to its call, in the caller's transaction (the event id was
/// claimed in it, so each event is applied once): the call starts, ends (billed and announced
/// through [`finish_call`]), gains a transcript turn, usage or a survey answer.
pub async fn apply_runtime_event(
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
                        status: CallStatus::InProgress.as_str().to_owned(),
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
                call.status = CallStatus::InProgress.as_str().to_owned();
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
                call.status = CallStatus::Completed.as_str().to_owned();
                call.outcome = Some(wire_name(reason));
                call.duration_seconds = Some(switchboard_crds::call_bounds::clamp_duration(
                    i64::try_from(duration_ms.div_ceil(1000)).unwrap_or(i64::MAX),
                ));
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
            usage::record(
                &mut *conn,
                &state.plan_limits,
                &tenant.id,
                &tenant.plan,
                &format!("{}:stt", event.id),
                Metric::SttMs,
                stt_ms,
            )
            .await?;
            usage::record(
                conn,
                &state.plan_limits,
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
