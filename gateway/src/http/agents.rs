//! `/api/v1/tenants/{tenant}/agents[/{name}]`: a tenant's named agents (issue 14 item 5).
//!
//! The default agent is listed and addressed as `default` (it is `Tenant.spec.agent`, also
//! reachable as the tenant's `agent`); the others are `Tenant.spec.agents`. Viewers read;
//! admins create, change (JSON merge patch, like the tenant's `agent`) and delete. The
//! plan's `agents` limit counts the default agent: creating one more answers 403
//! `limit_exceeded`. In Kubernetes mode the Tenant CR is applied before the commit, so a
//! field the manifest holds (`spec.agents`, `spec.agent`) answers 409 naming its manager and
//! changes nothing. Deleting an agent a number or campaign names is allowed: their calls get
//! the default agent (`switchboard_crds::agents`). Edits run under the tenant row's lock and
//! patch the agent as locked, so concurrent edits never lose one another's change
//! (`write_agents`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use switchboard_crds::agents::{DEFAULT_AGENT, NamedAgent, NamedAgents, check_agent_name};
use switchboard_crds::tenant::AgentSpec;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::record;
use super::context::ClientInfo;
use super::errors::tenant_write_error;
use super::errors::{ApiError, ApiJson};
use super::page::{Page, PageQuery};
use super::principal::TenantAccess;
use super::tenants::{merged_agent_at, require_recording_storage};
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::tenants::{self, Role, TenantRow};

/// The agent routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(self::get, update, self::delete))
}

fn stored_agents(tenant: &TenantRow) -> Result<NamedAgents, ApiError> {
    switchboard_crds::agents::parse_named_agents(&tenant.agents).map_err(|e| ApiError::internal(&e))
}

fn default_agent(tenant: &TenantRow) -> Result<AgentSpec, ApiError> {
    serde_json::from_str(&tenant.agent).map_err(|e| ApiError::internal(&e))
}

fn view(name: &str, spec: AgentSpec) -> Json<NamedAgent> {
    Json(NamedAgent {
        name: name.to_owned(),
        spec,
    })
}

/// `GET /api/v1/tenants/{tenant}/agents` (viewer).
/// The agent list's shape in the OpenAPI document. Each item is a [`NamedAgent`] (its name
/// beside the agent configuration, which the Tenant CRD's schema describes), so items are
/// documented as objects rather than by a second copy of that schema.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentList {
    /// The agents of this page.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// The next page's cursor; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/agents", tag = "agents",
    params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = AgentList, description = "`{items, nextCursor}`: the default agent first, then the named agents by name")), security(("bearer" = [])))]
pub async fn list(
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<NamedAgent>>, ApiError> {
    access.require(Role::Viewer)?;
    let mut items = vec![NamedAgent {
        name: DEFAULT_AGENT.to_owned(),
        spec: default_agent(&access.tenant)?,
    }];
    items.extend(
        stored_agents(&access.tenant)?
            .into_iter()
            .map(|(name, spec)| NamedAgent { name, spec }),
    );
    // Bounded by the plan: read whole, paged by position.
    Ok(Json(Page::of_all(items, &page)?))
}

/// `GET /api/v1/tenants/{tenant}/agents/{name}` (viewer).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/agents/{name}", tag = "agents",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("name" = String, Path, description = "Agent name (`default`: the default agent)")),
    responses((status = 200, body = Object), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    access: TenantAccess,
    Path((_, name)): Path<(String, String)>,
) -> Result<Json<NamedAgent>, ApiError> {
    access.require(Role::Viewer)?;
    let spec = agent_or_404(&access.tenant, &name)?;
    Ok(view(&name, spec))
}

/// The tenant's agent `name` (`default`: the default agent), or 404 naming `agent`.
pub fn agent_or_404(tenant: &TenantRow, name: &str) -> Result<AgentSpec, ApiError> {
    if name == DEFAULT_AGENT {
        return default_agent(tenant);
    }
    stored_agents(tenant)?
        .remove(name)
        .ok_or_else(|| ApiError::not_found("agent"))
}

/// What one write does to the tenant's agents.
enum Change {
    /// Create the named agent (fails if it exists or the plan's limit is reached).
    Create(String, Box<AgentSpec>),
    /// JSON-merge-patch an existing agent (`default` included), as read under the lock.
    Patch(String, Value),
    /// Delete a named agent.
    Delete(String),
}

/// Applies `change` to the tenant's row as read under a row lock inside the write
/// transaction, writes the row and the Tenant CR, then commits; returns the agent written
/// (`None` for a delete).
///
/// Two concurrent edits of agents therefore run one after the other, the second on the
/// first's result, so neither loses the other's change (a merge patch is applied to the agent
/// as locked, not as read when the request arrived). The Tenant CR is applied while the lock
/// is held, from the locked row, so the CR follows the same order on every replica; the
/// gateway's field manager owns `spec.agent`/`spec.agents` (a manifest holding them answers
/// 409 before anything changes), so no other writer's value can be overwritten there.
async fn write_agents(
    state: &AppState,
    access: &TenantAccess,
    client: &ClientInfo,
    change: Change,
) -> Result<Option<AgentSpec>, ApiError> {
    let now = now_ms();
    let mut tx = state.store.write(&access.scope()).await?;
    let mut tenant = tenants::by_id_for_update(&mut tx, &access.tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut agents = stored_agents(&tenant)?;
    let mut written = None;
    let (field, action, name) = match change {
        Change::Create(name, spec) => {
            if agents.contains_key(&name) {
                return Err(ApiError::conflict(
                    "agent_exists",
                    format!("the tenant already has an agent named {name}"),
                )
                .with_field("name"));
            }
            let limits = access.limits(state, &mut tx).await?;
            let count = agents.len() + 1;
            if let Some(limit) = limits.agents
                && u64::try_from(count).unwrap_or(u64::MAX) >= u64::from(limit)
            {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "limit_exceeded",
                    format!(
                        "the {} plan allows {limit} agent(s), the default agent included, and the tenant has {count}; delete one or upgrade",
                        tenant.plan
                    ),
                ));
            }
            agents.insert(name.clone(), (*spec).clone());
            written = Some(*spec);
            ("agents", "agent.created", name)
        }
        Change::Patch(name, patch) if name == DEFAULT_AGENT => {
            let spec = patched(state, default_agent(&tenant)?, &patch)?;
            tenant.agent = serde_json::to_string(&spec).map_err(|e| ApiError::internal(&e))?;
            written = Some(spec);
            ("agent", "agent.updated", name)
        }
        Change::Patch(name, patch) => {
            let slot = agents
                .get_mut(&name)
                .ok_or_else(|| ApiError::not_found("agent"))?;
            let spec = patched(state, slot.clone(), &patch)?;
            *slot = spec.clone();
            written = Some(spec);
            ("agents", "agent.updated", name)
        }
        Change::Delete(name) => {
            if agents.remove(&name).is_none() {
                return Err(ApiError::not_found("agent"));
            }
            ("agents", "agent.deleted", name)
        }
    };
    tenant.agents = serde_json::to_string(&agents).map_err(|e| ApiError::internal(&e))?;
    tenants::update(&mut tx, &tenant, now).await?;
    record(
        &mut tx,
        access,
        client,
        action,
        ("agent", &name),
        json!({"name": name}),
    )
    .await?;
    // The CR first: a field the manifest holds, or a refusal, leaves nothing changed.
    if let Err(error) = state.kube.apply_tenant(&tenant, &[field]).await {
        return Err(tenant_write_error(error, &tenant.slug));
    }
    tx.commit().await?;
    Ok(written)
}

/// `current` with the JSON merge `patch` applied, checked like every agent.
fn patched(state: &AppState, current: AgentSpec, patch: &Value) -> Result<AgentSpec, ApiError> {
    let current = serde_json::to_value(current).map_err(|e| ApiError::internal(&e))?;
    merged_agent_at(current, patch, state.config.outbound_allow_private, "")
}

/// Request body of `POST …/agents`: `name` and any agent fields (camelCase, as in
/// `Tenant.spec.agent`); absent fields take their defaults.
#[derive(serde::Deserialize, ToSchema)]
pub struct CreateAgent {
    /// The agent's name: a DNS label other than `default`.
    pub name: String,
    /// The agent's fields.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, Value>,
}

fn default_json() -> Result<Value, ApiError> {
    serde_json::to_value(AgentSpec::default()).map_err(|e| ApiError::internal(&e))
}

/// `POST /api/v1/tenants/{tenant}/agents` (admin): 201 with the agent.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/agents", tag = "agents",
    params(("tenant" = String, Path, description = "Tenant slug or id")), request_body = CreateAgent,
    responses((status = 201, body = Object), (status = 403, body = super::errors::ErrorBody),
              (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(request): ApiJson<CreateAgent>,
) -> Result<impl IntoResponse, ApiError> {
    access.require(Role::Admin)?;
    check_agent_name(&request.name)
        .map_err(|message| ApiError::invalid("name", "invalid_agent_name", message))?;
    let spec = merged_agent_at(
        default_json()?,
        &Value::Object(request.fields),
        state.config.outbound_allow_private,
        "",
    )?;
    let name = request.name;
    require_recording_storage(&state, &access, &spec).await?;
    write_agents(
        &state,
        &access,
        &client,
        Change::Create(name.clone(), Box::new(spec.clone())),
    )
    .await?;
    Ok((StatusCode::CREATED, view(&name, spec)))
}

/// `PATCH /api/v1/tenants/{tenant}/agents/{name}` (admin): JSON merge patch of the agent
/// (`null` resets a field to its default).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/agents/{name}", tag = "agents",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("name" = String, Path, description = "Agent name (`default`: the default agent)")),
    request_body = Object,
    responses((status = 200, body = Object), (status = 404, body = super::errors::ErrorBody),
              (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, name)): Path<(String, String)>,
    ApiJson(patch): ApiJson<Value>,
) -> Result<Json<NamedAgent>, ApiError> {
    access.require(Role::Admin)?;
    // Recording needs somewhere to store: checked on the agent as this request sees it (the
    // write below patches the agent as locked, which only a concurrent edit can change).
    let current = if name == DEFAULT_AGENT {
        default_agent(&access.tenant)?
    } else {
        stored_agents(&access.tenant)?
            .remove(&name)
            .ok_or_else(|| ApiError::not_found("agent"))?
    };
    require_recording_storage(&state, &access, &patched(&state, current, &patch)?).await?;
    let spec = write_agents(&state, &access, &client, Change::Patch(name.clone(), patch))
        .await?
        .ok_or_else(|| ApiError::internal(&"an agent update wrote no agent"))?;
    Ok(view(&name, spec))
}

/// `DELETE /api/v1/tenants/{tenant}/agents/{name}` (admin): 204. The default agent cannot be
/// deleted; numbers and campaigns naming the deleted agent get the default agent.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/agents/{name}", tag = "agents",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("name" = String, Path, description = "Agent name")),
    responses((status = 204), (status = 404, body = super::errors::ErrorBody), (status = 409, body = super::errors::ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    if name == DEFAULT_AGENT {
        return Err(ApiError::conflict(
            "default_agent",
            "the default agent cannot be deleted; change it instead",
        )
        .with_field("name"));
    }
    write_agents(&state, &access, &client, Change::Delete(name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// 422 naming `field` unless the tenant has the named agent `name` (numbers and campaigns
/// that name an agent).
pub fn require_named_agent(access: &TenantAccess, field: &str, name: &str) -> Result<(), ApiError> {
    let agents = switchboard_crds::agents::parse_named_agents(&access.tenant.agents)
        .map_err(|e| ApiError::internal(&e))?;
    if agents.contains_key(name) {
        return Ok(());
    }
    Err(ApiError::invalid(
        field,
        "unknown_agent",
        format!("the tenant has no agent named {name}; create it under /agents first"),
    ))
}
