//! `POST /internal/v1/events`: the runtime's call events, each applied once (by id) to its
//! call by [`crate::calls::lifecycle`].

use axum::Json;
use axum::extract::State;
use switchboard_crds::events::{EventBatch, EventKind};
use switchboard_crds::internal_api::EventsReply;

use super::Internal;
use crate::calls::lifecycle::apply_runtime_event;
use crate::calls::transfer::transfer;
use crate::http::errors::{ApiError, ApiJson};
use crate::state::AppState;
use crate::store::calls;
use crate::store::{Scope, now_ms, tenants};

/// `POST /internal/v1/events`: applies each event once (by id).
pub async fn receive(
    _: Internal,
    State(state): State<AppState>,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<Json<EventsReply>, ApiError> {
    let mut reply = EventsReply {
        accepted: 0,
        duplicates: 0,
    };
    for event in &batch.events {
        let Some(tenant) = tenants::load_by_key(&state.store, &event.tenant).await? else {
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
