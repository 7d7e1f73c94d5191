//! `POST /api/v1/tenants/{tenant}/agents/{name}/test-calls`: the console's "call it now".
//!
//! A test call is a real call of the tenant without a carrier: the browser (or any client)
//! opens the media WebSocket entry `GET /media` itself and speaks the Twilio media-stream
//! dialect (`connected`, `start` with the returned call token in `customParameters.callToken`,
//! `media` frames of base64 μ-law 8 kHz, `mark` echoes, `stop`). From there it is the path of
//! every call: the media proxy verifies the token, takes a media slot of the tenant and dials
//! the tenant's runtime (the embedded one in standalone mode, the tenant's runtime Service in
//! Kubernetes mode), whose events write the call record, its transcript and its usage.
//!
//! Decisions:
//! * Billed and limited like any call: it uses the tenant's speech and language vendors, so it
//!   counts against the plan's monthly calls when created (403 `limit_exceeded` once the
//!   month's calls or minutes are used up, like a refused inbound call), its minutes are
//!   billed when it ends, and it takes one of the tenant's concurrent media slots.
//! * Marked as a test: the record's carrier is `browser` ([`TEST_CALL_CARRIER`]), its caller
//!   is empty and its callee is `agent:<name>`, so lists and exports tell it apart.
//! * The agent is named in the signed call token; the media proxy passes it to the runtime,
//!   which picks it before any number or campaign rule (`switchboard_crds::agents`).
//! * Members and above may start one (they use the tenant; viewers only look).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agents::agent_or_404;
use super::audit::record;
use super::context::ClientInfo;
use super::errors::ApiError;
use super::principal::TenantAccess;
use super::webhooks::media_url;
use crate::calls::CallError;
use crate::calls::writer::{InboundCall, InboundRecord, Refusal};
use crate::media::call_token::TEST_CALL_CARRIER;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::tenants::Role;

/// The test-call route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// A test call, ready for its media stream.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestCall {
    /// The call's id (its record under `/calls/{id}`, with the transcript).
    pub call_id: String,
    /// The agent that answers.
    pub agent: String,
    /// The media WebSocket to open (`wss://…/media`, from the gateway's public URL).
    pub media_url: String,
    /// The call token to send in the `start` frame's `customParameters.callToken`: one stream,
    /// valid for `expiresInSeconds`. A secret for that long; never logged.
    pub call_token: String,
    /// Seconds the call token stays valid for opening the stream.
    pub expires_in_seconds: i64,
    /// The media format the stream must use.
    pub media_format: MediaFormat,
}

/// The stream's audio format (the `start` frame's `mediaFormat`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    /// `audio/x-mulaw`.
    pub encoding: &'static str,
    /// 8000.
    pub sample_rate: u32,
    /// 1.
    pub channels: u8,
}

/// The callee recorded for a test call of `agent`.
pub fn test_call_callee(agent: &str) -> String {
    format!("agent:{agent}")
}

/// `POST /api/v1/tenants/{tenant}/agents/{name}/test-calls` (member): 201 with the call's
/// media URL and token.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/agents/{name}/test-calls", tag = "agents",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("name" = String, Path, description = "Agent name (`default`: the default agent)")),
    responses((status = 201, body = TestCall, description = "Recorded and counted; open `mediaUrl` and send the token in `start`"),
              (status = 404, body = super::errors::ErrorBody, description = "No such agent"),
              (status = 403, body = super::errors::ErrorBody, description = "Role too low, tenant suspended, or the plan's monthly limit reached"),
              (status = 503, body = super::errors::ErrorBody, description = "The gateway is shutting down")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, name)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    access.require(Role::Member)?;
    agent_or_404(&access.tenant, &name)?;
    access.require_stack(&state)?;
    if state.drain.is_draining() {
        return Err(CallError::Draining.into());
    }
    let outcome = state
        .call_writer
        .record_inbound(InboundCall {
            tenant_id: access.tenant.id.clone(),
            carrier: TEST_CALL_CARRIER.to_owned(),
            carrier_call_id: crate::store::new_id(),
            from: None,
            to: test_call_callee(&name),
        })
        .await?;
    let call_id = match outcome {
        InboundRecord::Recorded { call_id, new, .. } => {
            if new {
                state
                    .metrics
                    .tenant_calls
                    .with_label_values(&[access.tenant.slug.as_str()])
                    .inc();
            }
            call_id
        }
        InboundRecord::Refused(Refusal::UnknownTenant) => {
            return Err(ApiError::not_found("tenant"));
        }
        InboundRecord::Refused(Refusal::Suspended) => {
            return Err(ApiError::forbidden(
                "the tenant is suspended and takes no calls",
            ));
        }
        InboundRecord::Refused(Refusal::OverLimit) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "limit_exceeded",
                "the plan's calls or minutes for this month are used up; test calls count like calls",
            ));
        }
    };
    let call_token = state.call_tokens.issue_test_call(
        &access.tenant.id,
        &access.tenant.slug,
        &call_id,
        &name,
        now_ms() / 1000,
    );
    let mut tx = state.store.write(&access.scope()).await?;
    record(
        &mut tx,
        &access,
        &client,
        "call.test_started",
        ("call", &call_id),
        json!({"agent": name}),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(TestCall {
            call_id,
            agent: name,
            media_url: media_url(state.config.public_base()),
            call_token,
            expires_in_seconds: state.call_tokens.ttl_seconds(),
            media_format: MediaFormat {
                encoding: "audio/x-mulaw",
                sample_rate: 8000,
                channels: 1,
            },
        }),
    ))
}
