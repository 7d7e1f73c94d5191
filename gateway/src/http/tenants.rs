//! `/api/v1/tenants…`: the caller's tenants, and one tenant with its agent configuration.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use switchboard_crds::tenant::{AgentSpec, LlmProvider, SttProvider, TtsProvider};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson, tenant_write_error};
use super::page::{Page, PageQuery};
use super::principal::{Principal, TenantAccess};
use super::validate::{display_text, is_e164, rfc3339};
use crate::kube::TenantReadiness;
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::tenants::{self, Role, TenantRow};
use crate::store::{Scope, now_ms, provider_keys, runtime_credentials};

/// The tenant routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(
            self::get,
            patch,
            super::data_lifecycle::delete_tenant
        ))
        .routes(routes!(rotate_runtime_credential))
}

/// The answer to a runtime-credential rotation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedCredential {
    /// The new credential's epoch (the previous epoch's credential is refused from now on).
    pub epoch: i64,
    /// Whether the new credential is already in the tenant namespace's `runtime-credential`
    /// Secret (`false`: the gateway keeps retrying in the background; always `false` without
    /// Kubernetes, where no runtime of the tenant's own exists).
    pub delivered: bool,
}

/// `POST /api/v1/tenants/{tenant}/runtime-credential/rotate` (owner): issues the tenant's
/// runtime a new credential and refuses the old one at once. The runtime re-reads its mounted
/// `runtime-credential` Secret on every delivery, so it uses the new one as soon as the kubelet
/// has refreshed the mount, without a restart (batches refused meanwhile are retried).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/runtime-credential/rotate", tag = "tenants", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = RotatedCredential), (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn rotate_runtime_credential(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
) -> Result<Json<RotatedCredential>, ApiError> {
    access.require(Role::Owner)?;
    let now = now_ms();
    let mut tx = state.store.write(&access.scope()).await?;
    let epoch = runtime_credentials::rotate(&mut tx, &access.tenant.id).await?;
    // The Secret is behind from here until a write of it succeeds.
    provider_keys::bump(&mut tx, &access.tenant.id).await?;
    let (actor_type, actor_id) = access.principal.actor();
    audit::record(
        &mut tx,
        &AuditEvent {
            tenant_id: &access.tenant.id,
            actor_type,
            actor_id: Some(actor_id),
            action: "tenant.runtime_credential_rotated",
            target_type: Some("tenant"),
            target_id: Some(&access.tenant.id),
            ip: Some(&client.ip),
            request_id: client.request_id.as_deref(),
            details: json!({"epoch": epoch}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    let delivered = match crate::provider_keys::converge(&state, &access.tenant.id).await {
        Ok(written) => written,
        Err(error) => {
            tracing::warn!(%error, slug = %access.tenant.slug, "new runtime credential not written yet; retrying in the background");
            false
        }
    };
    Ok(Json(RotatedCredential { epoch, delivered }))
}

/// A tenant membership as listed in `me`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipView {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant slug.
    pub slug: String,
    /// Tenant name.
    pub name: String,
    /// The user's role.
    pub role: Role,
}

/// A tenant as shown to its members.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantView {
    /// Tenant id.
    pub id: String,
    /// URL and Kubernetes name (DNS-1123 label).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan.
    pub plan: String,
    /// Whether the tenant is suspended.
    pub suspended: bool,
    /// Kubernetes namespace of the tenant's stack.
    pub namespace: String,
    /// The default agent (the `Tenant` CR's `spec.agent`).
    #[schema(value_type = Object)]
    pub agent: Value,
    /// The caller's role.
    pub role: Role,
    /// Readiness reported by the operator (`null` without Kubernetes).
    pub readiness: Option<TenantReadiness>,
    /// Whether the gateway writes this tenant to Kubernetes.
    pub kubernetes: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl TenantView {
    /// The view of `tenant` for a caller with `role`.
    pub fn build(
        state: &AppState,
        tenant: &TenantRow,
        role: Role,
        readiness: Option<TenantReadiness>,
    ) -> Result<Self, ApiError> {
        let agent = serde_json::from_str(&tenant.agent).map_err(|e| ApiError::internal(&e))?;
        Ok(Self {
            id: tenant.id.clone(),
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            plan: tenant.plan.clone(),
            suspended: tenant.suspended.0,
            namespace: state.config.tenant_naming().namespace(&tenant.slug),
            agent,
            role,
            readiness,
            kubernetes: state.kube.enabled(),
            created_at: rfc3339(tenant.created_at),
            updated_at: rfc3339(tenant.updated_at),
        })
    }
}

/// Tenant update: every field optional; `agent` is a JSON merge patch (RFC 7396) of the
/// agent configuration (`null` resets a field to its default).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantPatch {
    /// New display name.
    pub name: Option<String>,
    /// Merge patch of the agent configuration.
    #[schema(value_type = Object)]
    pub agent: Option<Value>,
}

/// `GET /api/v1/tenants`: the tenants the caller can reach.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(PageQuery), responses((status = 200, body = Page<MembershipView>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<MembershipView>>, ApiError> {
    let rows = match &principal {
        Principal::User { user_id, .. } => {
            let mut tx = state.store.read(&Scope::user(user_id)).await?;
            let rows = tenants::tenants_of_user(&mut tx, user_id).await?;
            tx.commit().await?;
            rows
        }
        Principal::ApiKey(key) => {
            let mut tx = state.store.read(&Scope::tenant(&key.tenant_id)).await?;
            let row = tenants::by_id(&mut tx, &key.tenant_id).await?;
            tx.commit().await?;
            row.map(|t| (t, super::principal::role_of_scopes(&key.scopes)))
                .into_iter()
                .collect()
        }
    };
    let all = rows
        .into_iter()
        .map(|(t, role)| MembershipView {
            tenant_id: t.id,
            slug: t.slug,
            name: t.name,
            role,
        })
        .collect();
    Ok(Json(Page::of_all(all, &page)?))
}

/// `GET /api/v1/tenants/{tenant}` (viewer).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = TenantView), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<TenantView>, ApiError> {
    access.require(Role::Viewer)?;
    let readiness = match state.kube.tenant_readiness(&access.tenant.slug).await {
        Ok(readiness) => readiness,
        Err(error) => {
            tracing::warn!(%error, slug = %access.tenant.slug, "cannot read the Tenant CR status");
            None
        }
    };
    Ok(Json(TenantView::build(
        &state,
        &access.tenant,
        access.role,
        readiness,
    )?))
}

/// `PATCH /api/v1/tenants/{tenant}` (admin): name and agent configuration. In Kubernetes
/// mode the `Tenant` CR is applied before the commit.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path, description = "Tenant slug or id")),
    request_body = TenantPatch, responses((status = 200, body = TenantView), (status = 403, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(patch): ApiJson<TenantPatch>,
) -> Result<Json<TenantView>, ApiError> {
    access.require(Role::Admin)?;
    let name = patch
        .name
        .as_deref()
        .map(|name| display_text("name", name, 100))
        .transpose()?;
    if let Some(agent_patch) = &patch.agent {
        // Recording needs somewhere to store: checked on the agent as this request sees it,
        // before the write transaction (the check reads the tenant's credentials).
        let current: Value =
            serde_json::from_str(&access.tenant.agent).map_err(|e| ApiError::internal(&e))?;
        let agent = merged_agent(current, agent_patch, state.config.outbound_allow_private)?;
        require_recording_storage(&state, &access, &agent)
            .await
            .map_err(|e| e.with_field("agent.recording"))?;
    }
    let now = now_ms();
    let mut tx = state.store.write(&access.scope()).await?;
    // The row as locked, not as read when the request arrived: the update writes the agents
    // too, so a stale copy would undo a concurrent agent edit (see `http::agents`).
    let mut tenant = tenants::by_id_for_update(&mut tx, &access.tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut changed = Vec::new();
    let mut spec_fields = Vec::new();
    if let Some(name) = name {
        tenant.name = name;
        changed.push("name");
        spec_fields.push("displayName");
    }
    if let Some(agent_patch) = &patch.agent {
        let current: Value =
            serde_json::from_str(&tenant.agent).map_err(|e| ApiError::internal(&e))?;
        let agent = merged_agent(current, agent_patch, state.config.outbound_allow_private)?;
        tenant.agent = serde_json::to_string(&agent).map_err(|e| ApiError::internal(&e))?;
        changed.push("agent");
        spec_fields.push("agent");
    }
    tenants::update(&mut tx, &tenant, now).await?;
    let (actor_type, actor_id) = access.principal.actor();
    audit::record(
        &mut tx,
        &AuditEvent {
            tenant_id: &tenant.id,
            actor_type,
            actor_id: Some(actor_id),
            action: "tenant.updated",
            target_type: Some("tenant"),
            target_id: Some(&tenant.id),
            ip: Some(&client.ip),
            request_id: client.request_id.as_deref(),
            details: json!({"fields": changed}),
        },
        now,
    )
    .await?;
    // The CR first: a field the manifest holds, or a refusal, leaves nothing changed.
    if let Err(error) = state.kube.apply_tenant(&tenant, &spec_fields).await {
        return Err(tenant_write_error(error, &tenant.slug));
    }
    tx.commit().await?;
    tenant.updated_at = now;
    Ok(Json(TenantView::build(&state, &tenant, access.role, None)?))
}

/// Applies a JSON merge patch to the stored agent and validates the result (`allow_private`:
/// `SWITCHBOARD_OUTBOUND_ALLOW_PRIVATE`, for the `baseUrl` policy).
pub fn merged_agent(
    current: Value,
    patch: &Value,
    allow_private: bool,
) -> Result<AgentSpec, ApiError> {
    merged_agent_at(current, patch, allow_private, "agent")
}

/// 422 naming `recording` when the agent records but the tenant has nowhere to keep
/// recordings: Kubernetes mode without an `s3` credential (`crate::recordings`).
pub async fn require_recording_storage(
    state: &AppState,
    access: &TenantAccess,
    spec: &AgentSpec,
) -> Result<(), ApiError> {
    if switchboard_crds::recording::is_enabled(spec.recording.as_ref()) {
        crate::recordings::require_storage(state, &access.tenant.id).await?;
    }
    Ok(())
}

/// [`merged_agent`] for an agent at `prefix` of the request body (`""`: the body is the
/// agent), so errors name the field as the caller sent it.
pub fn merged_agent_at(
    mut current: Value,
    patch: &Value,
    allow_private: bool,
    prefix: &str,
) -> Result<AgentSpec, ApiError> {
    let root = if prefix.is_empty() { "body" } else { prefix };
    if !patch.is_object() {
        return Err(ApiError::invalid(
            root,
            "invalid_field",
            format!("{root} must be a JSON object"),
        ));
    }
    merge_patch(&mut current, patch);
    let agent: AgentSpec = serde_json::from_value(current)
        .map_err(|e| ApiError::invalid(root, "invalid_field", e.to_string()))?;
    let normalized = serde_json::to_value(&agent).map_err(|e| ApiError::internal(&e))?;
    if let Some(path) = unknown_key(patch, &normalized, prefix) {
        return Err(ApiError::invalid(
            &path,
            "unknown_field",
            format!("unknown field `{path}`"),
        ));
    }
    validate_agent(&agent, allow_private, prefix)?;
    Ok(agent)
}

/// `field` under `prefix` (`prefix.field`, or `field` at the root).
fn at(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The first key set in `patch` that the typed agent does not know (serde ignores them).
fn unknown_key(patch: &Value, normalized: &Value, path: &str) -> Option<String> {
    let (Value::Object(patch), Value::Object(normalized)) = (patch, normalized) else {
        return None;
    };
    patch
        .iter()
        .filter(|(_, v)| !v.is_null())
        .find_map(|(key, value)| {
            let child = at(path, key);
            match normalized.get(key) {
                None => Some(child),
                Some(known) => unknown_key(value, known, &child),
            }
        })
}

fn validate_agent(agent: &AgentSpec, allow_private: bool, prefix: &str) -> Result<(), ApiError> {
    let invalid = |field: &str, message: &str| {
        Err(ApiError::invalid(
            &at(prefix, field),
            "invalid_field",
            message,
        ))
    };
    if agent.system_prompt.chars().count() > 20_000 {
        return invalid("systemPrompt", "at most 20000 characters");
    }
    if agent.greeting.chars().count() > 1_000 {
        return invalid("greeting", "at most 1000 characters");
    }
    if !is_language_tag(&agent.language) {
        return invalid("language", "a BCP-47 language tag such as en-US");
    }
    if !(10..=14_400).contains(&agent.max_call_seconds) {
        return invalid("maxCallSeconds", "between 10 and 14400");
    }
    if !(100..=5_000).contains(&agent.end_of_turn_silence_ms) {
        return invalid("endOfTurnSilenceMs", "between 100 and 5000");
    }
    if let Err(message) = agent.turn_taking.validate() {
        return invalid("turnTaking", &message);
    }
    if let Some(recording) = &agent.recording
        && let Err((field, message)) = recording.validate()
    {
        return invalid(&format!("recording.{field}"), &message);
    }
    if let Some(number) = &agent.transfer_number
        && !is_e164(number)
    {
        return invalid("transferNumber", "an E.164 number such as +14155550100");
    }
    let needs_base_url = [
        (
            "llm.baseUrl",
            agent.llm.provider == LlmProvider::OpenaiCompatible,
            &agent.llm.base_url,
        ),
        (
            "stt.baseUrl",
            agent.stt.provider == SttProvider::OpenaiCompatible,
            &agent.stt.base_url,
        ),
        (
            "tts.baseUrl",
            agent.tts.provider == TtsProvider::OpenaiCompatible,
            &agent.tts.base_url,
        ),
    ];
    let credentials = [
        ("llm.credential", &agent.llm.credential),
        ("stt.credential", &agent.stt.credential),
        ("tts.credential", &agent.tts.credential),
    ];
    for (field, label) in credentials {
        if label
            .as_ref()
            .is_some_and(|l| l.trim().is_empty() || l.chars().count() > 64)
        {
            return invalid(field, "a credential label of 1-64 characters");
        }
    }
    for (field, required, url) in needs_base_url {
        match url {
            None if required => {
                return invalid(field, "required when the provider is openai-compatible");
            }
            Some(url) => {
                // The runtime calls it from inside the cluster: no internal targets (SSRF).
                // The runtime checks the resolved address again when it connects.
                if let Err(error) = switchboard_crds::outbound::check_url(url, allow_private) {
                    return invalid(field, &error.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_agent() -> Value {
        serde_json::to_value(AgentSpec::default()).unwrap()
    }

    #[test]
    fn merge_patch_updates_and_resets_fields() {
        let agent = merged_agent(
            default_agent(),
            &json!({"greeting": "Hi!", "llm": {"provider": "groq", "model": "llama"}}),
            false,
        )
        .unwrap();
        assert_eq!(agent.greeting, "Hi!");
        assert_eq!(agent.llm.provider, LlmProvider::Groq);
        let reset = merged_agent(
            serde_json::to_value(&agent).unwrap(),
            &json!({"greeting": null}),
            false,
        )
        .unwrap();
        assert_eq!(reset.greeting, AgentSpec::default().greeting);
        assert_eq!(reset.llm.provider, LlmProvider::Groq);
    }

    #[test]
    fn unknown_and_invalid_agent_fields_are_named() {
        let error =
            merged_agent(default_agent(), &json!({"llm": {"modle": "x"}}), false).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("agent.llm.modle"));
        let error =
            merged_agent(default_agent(), &json!({"language": "English"}), false).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("agent.language"));
        let error = merged_agent(
            default_agent(),
            &json!({"llm": {"provider": "openai-compatible"}}),
            false,
        )
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("agent.llm.baseUrl"));
        let error =
            merged_agent(default_agent(), &json!({"transferNumber": "0800"}), false).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("agent.transferNumber"));
        assert!(merged_agent(default_agent(), &json!("x"), false).is_err());
        // Issue 15 item 2: an agent baseUrl may not name an internal address.
        for url in [
            "http://169.254.169.254/v1",
            "http://127.0.0.1:11434/v1",
            "http://ollama.default.svc/v1",
        ] {
            let patch = json!({"llm": {"provider": "openai-compatible", "baseUrl": url}});
            let error = merged_agent(default_agent(), &patch, false).unwrap_err();
            assert_eq!(error.field.as_deref(), Some("agent.llm.baseUrl"), "{url}");
            assert!(merged_agent(default_agent(), &patch, true).is_ok(), "{url}");
        }
        let public = json!({"llm": {"provider": "openai-compatible", "baseUrl": "https://llm.example.com/v1"}});
        assert!(merged_agent(default_agent(), &public, false).is_ok());
    }
}
