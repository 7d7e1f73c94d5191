//! `POST /internal/v1/events`: the runtime's call events, each applied once (by id) to its
//! call by [`crate::calls::lifecycle`].
//!
//! Who may post ([`RuntimeCaller`]): a tenant's runtime with its runtime credential
//! ([`crate::runtime_credential`]), for events of that tenant only; in standalone mode also the
//! embedded runtime, which serves every tenant of the host, with the shared internal token. In
//! Kubernetes mode the shared token is the operator's alone and posts no events.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use switchboard_crds::events::{EventBatch, EventKind};
use switchboard_crds::internal_api::EventsReply;

use crate::calls::lifecycle::apply_runtime_event;
use crate::calls::transfer::transfer;
use crate::http::errors::{ApiError, ApiJson};
use crate::state::AppState;
use crate::store::calls;
use crate::store::{Scope, constant_time_eq, now_ms, runtime_credentials, tenants};

/// Who posts a batch of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeCaller {
    /// A tenant's runtime, by its runtime credential: events of this tenant id only.
    Tenant(String),
    /// Standalone mode's embedded runtime, by the shared internal token: any tenant's events.
    Embedded,
}

impl FromRequestParts<AppState> for RuntimeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .trim();
        let invalid = || ApiError::unauthorized("invalid_token", "runtime credential is invalid");
        if let Some(presented) = state.runtime_credentials.verify(given) {
            let scope = Scope::tenant(&presented.tenant_id);
            let mut tx = state.store.read(&scope).await?;
            let epoch = runtime_credentials::epoch(&mut tx, &presented.tenant_id).await?;
            tx.commit().await?;
            // A rotated (older) credential, or one of a deleted tenant, is refused.
            return match epoch {
                Some(epoch) if epoch == presented.epoch => Ok(Self::Tenant(presented.tenant_id)),
                _ => Err(invalid()),
            };
        }
        if !state.config.kubernetes
            && let Some(expected) = &state.internal_token
            && constant_time_eq(given, expected)
        {
            return Ok(Self::Embedded);
        }
        Err(invalid())
    }
}

/// `POST /internal/v1/events`: applies each event once (by id). A batch naming a tenant the
/// caller may not write for is refused whole (403), before any of it is applied.
pub async fn receive(
    caller: RuntimeCaller,
    State(state): State<AppState>,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<Json<EventsReply>, ApiError> {
    let mut reply = EventsReply {
        accepted: 0,
        duplicates: 0,
    };
    let mut resolved = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        let Some(tenant) = tenants::load_by_key(&state.store, &event.tenant).await? else {
            return Err(ApiError::invalid(
                "tenant",
                "unknown_tenant",
                format!("unknown tenant {:?}", event.tenant),
            ));
        };
        if let RuntimeCaller::Tenant(allowed) = &caller
            && *allowed != tenant.id
        {
            tracing::warn!(tenant = %event.tenant, "a runtime posted events of another tenant; batch refused");
            return Err(ApiError::forbidden(
                "this runtime credential may only post events of its own tenant",
            ));
        }
        resolved.push((event, tenant));
    }
    for (event, tenant) in resolved {
        let mut tx = state.store.write(&Scope::tenant(&tenant.id)).await?;
        if !calls::claim_runtime_event(&mut tx, &tenant.id, &event.id, now_ms()).await? {
            tx.commit().await?;
            reply.duplicates += 1;
            continue;
        }
        apply_runtime_event(&state, &mut tx, &tenant, event).await?;
        tx.commit().await?;
        reply.accepted += 1;
        // Carrier calls happen after the commit, never inside a database transaction. A
        // failed transfer is logged: the runtime then keeps the caller on the line.
        if let EventKind::TransferRequested { to } = &event.kind
            && let Err(error) = transfer(&state, &tenant, &event.call_id, to).await
        {
            tracing::warn!(%error, call_id = %event.call_id, "call transfer failed");
        }
    }
    Ok(Json(reply))
}
