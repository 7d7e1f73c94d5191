//! `PUT`/`DELETE /internal/v1/numbers/{e164}`: the operator routes a number to a tenant when a
//! PhoneNumber becomes ready, and stops routing it when it goes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use switchboard_crds::internal_api::NumberRoute;

use super::Internal;
use crate::http::errors::{ApiError, ApiJson};
use crate::numbers::normalise;
use crate::state::AppState;
use crate::store::numbers::{self, NumberRow};
use crate::store::{now_ms, system, tenants};

/// `PUT /internal/v1/numbers/{e164}`: routes a number to a tenant (the operator calls this
/// when a PhoneNumber becomes ready). The in-memory table is reloaded at once.
pub async fn put(
    _: Internal,
    State(state): State<AppState>,
    Path(e164): Path<String>,
    ApiJson(body): ApiJson<NumberRoute>,
) -> Result<StatusCode, ApiError> {
    let e164 = normalise(&e164);
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
    let tenant = tenants::load_by_key(&state.store, &body.tenant)
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
    state.numbers.reload(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /internal/v1/numbers/{e164}`.
pub async fn delete(
    _: Internal,
    State(state): State<AppState>,
    Path(e164): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = system::write(&state.store).await?;
    numbers::delete(&mut tx, &normalise(&e164)).await?;
    tx.commit().await?;
    state.numbers.reload(&state.store).await?;
    Ok(StatusCode::NO_CONTENT)
}
