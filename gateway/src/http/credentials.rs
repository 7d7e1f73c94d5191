//! Bring-your-own provider credentials of a tenant. Secrets are sealed with AES-256-GCM under
//! the master key (bound to tenant and row), shown only masked, never logged, and in
//! Kubernetes mode projected into the tenant's `provider-keys` Secret for its runtime.
//!
//! The projection converges: each change marks the Secret pending in its own transaction
//! (migration 0002), the handler tries to write it at once, and when that fails — typically
//! right after signup, before the operator has created the tenant's namespace — the task of
//! [`spawn_projection_retries`] retries with backoff until it succeeds.
//!
//! Members read the masked list; admins create, change and delete.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::audit::record;
use super::auth::rfc3339;
use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson};
use super::principal::TenantAccess;
use super::validate::display_text;
use crate::crypto::{Sealed, credential_aad};
use crate::kube::{KubeError, desired_provider_secret};
use crate::state::AppState;
use crate::store::credentials::{self, CredentialRow};
use crate::store::tenants::{self, Role, TenantRow};
use crate::store::{Flag, Scope, StoreError, new_id, now_ms, provider_keys, system};

/// Longest accepted secret (service-account JSON files fit).
const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Most metadata entries per credential.
const MAX_METADATA_ENTRIES: usize = 20;

/// Vendors whose keys a tenant can bring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// Groq (OpenAI-compatible LLM API).
    Groq,
    /// OpenAI.
    Openai,
    /// Any OpenAI-compatible server (set `metadata.base_url`).
    OpenaiCompatible,
    /// Deepgram (speech-to-text, Aura text-to-speech).
    Deepgram,
    /// ElevenLabs (text-to-speech).
    Elevenlabs,
    /// Twilio (auth token; `metadata.account_sid`).
    Twilio,
    /// Telnyx (API key; `metadata.connection_id`, `metadata.public_key`).
    Telnyx,
}

impl Provider {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Groq => "groq",
            Provider::Openai => "openai",
            Provider::OpenaiCompatible => "openai-compatible",
            Provider::Deepgram => "deepgram",
            Provider::Elevenlabs => "elevenlabs",
            Provider::Twilio => "twilio",
            Provider::Telnyx => "telnyx",
        }
    }
}

/// Request to store a credential.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// Vendor.
    pub provider: Provider,
    /// Label, unique per vendor in the tenant (e.g. `production`).
    pub label: String,
    /// The secret (API key or auth token). Write-only.
    pub secret: String,
    /// Make this the vendor's default (default: true for the vendor's first credential).
    pub is_default: Option<bool>,
    /// Non-secret settings, e.g. `base_url`, `account_sid`.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Changes to a credential; absent fields stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredential {
    /// New label.
    pub label: Option<String>,
    /// New secret (rotation).
    pub secret: Option<String>,
    /// Make (or stop making) this the vendor's default.
    pub is_default: Option<bool>,
    /// Replaces the metadata.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A credential as shown (masked).
#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    /// Credential id.
    pub id: String,
    /// Vendor.
    pub provider: String,
    /// Label.
    pub label: String,
    /// Whether it is the vendor's default.
    pub is_default: bool,
    /// The secret masked to its last four characters (or fully masked when short).
    pub masked_secret: String,
    /// Id of the master key protecting it.
    pub key_id: String,
    /// Non-secret settings.
    pub metadata: BTreeMap<String, String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<&CredentialRow> for CredentialView {
    fn from(row: &CredentialRow) -> Self {
        Self {
            id: row.id.clone(),
            provider: row.provider.clone(),
            label: row.label.clone(),
            is_default: row.is_default.0,
            masked_secret: format!("••••{}", row.hint),
            key_id: row.key_id.clone(),
            metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

fn checked_secret(raw: &str) -> Result<String, ApiError> {
    let secret = raw.trim();
    if secret.is_empty() {
        return Err(ApiError::invalid(
            "secret",
            "required",
            "secret must not be empty",
        ));
    }
    if secret.len() > MAX_SECRET_BYTES {
        return Err(ApiError::invalid(
            "secret",
            "too_long",
            "secret must be at most 16 KiB",
        ));
    }
    Ok(secret.to_owned())
}

/// The last four characters, only for secrets long enough that they reveal little.
fn hint_of(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 16 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    }
}

fn checked_metadata(metadata: Option<BTreeMap<String, String>>) -> Result<String, ApiError> {
    let metadata = metadata.unwrap_or_default();
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(ApiError::invalid(
            "metadata",
            "too_many",
            "at most 20 metadata entries",
        ));
    }
    for (key, value) in &metadata {
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !key_ok {
            return Err(ApiError::invalid(
                &format!("metadata.{key}"),
                "invalid_key",
                "keys are 1-64 letters, digits or _",
            ));
        }
        if value.len() > 2048 {
            return Err(ApiError::invalid(
                &format!("metadata.{key}"),
                "too_long",
                "values are at most 2048 bytes",
            ));
        }
    }
    serde_json::to_string(&metadata).map_err(|e| ApiError::internal(&e))
}

fn seal(state: &AppState, row: &mut CredentialRow, secret: &str) -> Result<(), ApiError> {
    let sealed = state
        .keyring
        .seal(secret.as_bytes(), &credential_aad(&row.tenant_id, &row.id))
        .map_err(|e| ApiError::internal(&e))?;
    row.key_id = sealed.key_id;
    row.ciphertext = sealed.ciphertext;
    row.hint = hint_of(secret);
    Ok(())
}

/// Every credential of a tenant with its decrypted secret (for the runtime's Secret and for
/// later parts of the gateway that call providers). Rows that fail to decrypt are skipped
/// and logged (without contents).
pub async fn load_decrypted(
    state: &AppState,
    tenant_id: &str,
) -> Result<Vec<(CredentialRow, Vec<u8>)>, ApiError> {
    let mut tx = state.store.read(&Scope::tenant(tenant_id)).await?;
    let rows = credentials::list(&mut tx, tenant_id).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let sealed = Sealed { key_id: row.key_id.clone(), ciphertext: row.ciphertext.clone() };
            match state.keyring.open(&sealed, &credential_aad(&row.tenant_id, &row.id)) {
                Ok(secret) => Some((row, secret)),
                Err(error) => {
                    tracing::error!(%error, credential_id = %row.id, "cannot decrypt a provider credential");
                    None
                }
            }
        })
        .collect())
}

/// Why the `provider-keys` Secret could not be brought up to date (logged; never holds a
/// secret: Kubernetes answers with a status message, the store with a driver error).
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Reading the tenant or its credentials failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API server refused the Secret (e.g. the namespace does not exist yet) or was
    /// unreachable.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The credentials could not be loaded.
    #[error("cannot load the credentials: {0}")]
    Load(String),
    /// The credentials changed during every attempt; the retry task takes over.
    #[error("the credentials kept changing while the Secret was written")]
    Churn,
}

/// How often one call of [`converge`] re-writes the Secret when credentials change under it.
const CONVERGE_ROUNDS: usize = 3;

/// Brings the tenant's `provider-keys` Secret up to its stored credentials in Kubernetes mode.
/// `Ok(true)`: written and recorded as projected; `Ok(false)`: nothing to do (Kubernetes off,
/// tenant gone).
///
/// Why the generation dance: several writers (handlers on several replicas, the retry task)
/// may write the same Secret, and the API server keeps whichever lands last. A writer reads
/// the generation, then the credentials, writes, and records the generation only if it is still
/// current. If it is not, its data may have landed after a newer writer's, so it marks the
/// Secret possibly stale and writes again with fresh data; after [`CONVERGE_ROUNDS`] it leaves
/// the tenant pending for [`spawn_projection_retries`].
pub async fn converge(state: &AppState, tenant_id: &str) -> Result<bool, ProjectionError> {
    if !state.kube.enabled() {
        return Ok(false);
    }
    let scope = Scope::tenant(tenant_id);
    for _ in 0..CONVERGE_ROUNDS {
        let mut tx = state.store.read(&scope).await?;
        let tenant = tenants::by_id(&mut tx, tenant_id).await?;
        let generation = provider_keys::state(&mut tx, tenant_id).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let (Some(tenant), Some((generation, _))) = (tenant, generation) else {
            return Ok(false);
        };
        let credentials = load_decrypted(state, tenant_id)
            .await
            .map_err(|e| ProjectionError::Load(e.message))?;
        state
            .kube
            .apply_provider_secret(&desired_provider_secret(&tenant, &credentials))
            .await?;
        let mut tx = state.store.write(&scope).await?;
        let current = provider_keys::mark_projected(&mut tx, tenant_id, generation).await?;
        if !current {
            provider_keys::mark_possibly_stale(&mut tx, tenant_id, generation).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        if current {
            return Ok(true);
        }
    }
    Err(ProjectionError::Churn)
}

/// Rewrites the tenant's `provider-keys` Secret after a credential change. Best effort: the
/// change is committed (and its generation bumped) already, so a failure here leaves the
/// tenant pending and the retry task converges it.
async fn project_to_cluster(state: &AppState, tenant: &TenantRow) {
    if let Err(error) = converge(state, &tenant.id).await {
        tracing::warn!(%error, tenant = %tenant.slug, "cannot project provider keys into the tenant namespace yet; retrying in the background");
    }
}

/// Timing of [`spawn_projection_retries`].
#[derive(Debug, Clone, Copy)]
pub struct RetryTiming {
    /// How often the database is asked for pending tenants.
    pub poll: Duration,
    /// Wait after a tenant's first failure; doubles per failure.
    pub first_backoff: Duration,
    /// Longest wait between two attempts for one tenant.
    pub max_backoff: Duration,
}

impl Default for RetryTiming {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Most pending tenants looked at per poll; more are paged through on the following polls.
const PENDING_BATCH: i64 = 500;

/// In Kubernetes mode, retries the `provider-keys` Secret of every pending tenant (for
/// example one whose namespace the operator had not created yet when its first credential
/// was saved) with per-tenant exponential backoff, until it is written. `None` without
/// Kubernetes. Several replicas may each retry the same tenant; [`converge`] keeps that safe.
pub fn spawn_projection_retries(
    state: &AppState,
    timing: RetryTiming,
) -> Option<tokio::task::JoinHandle<()>> {
    if !state.kube.enabled() {
        return None;
    }
    let state = state.clone();
    Some(tokio::spawn(async move {
        // Per tenant: failed attempts so far and when the next one is due.
        let mut backoff: HashMap<String, (u32, tokio::time::Instant)> = HashMap::new();
        // Pending tenants are paged by id, so a long list of tenants that keep failing cannot
        // starve the ones after them; `seen` collects one full pass to forget the others.
        let mut after = String::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut ticker = tokio::time::interval(timing.poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let page = match pending_page(&state, &after).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "cannot list tenants whose provider keys are pending");
                    continue;
                }
            };
            let full_pass = i64::try_from(page.len()).unwrap_or(i64::MAX) < PENDING_BATCH;
            after = if full_pass {
                String::new()
            } else {
                page.last().cloned().unwrap_or_default()
            };
            let now = tokio::time::Instant::now();
            for tenant_id in page {
                seen.insert(tenant_id.clone());
                if backoff.get(&tenant_id).is_some_and(|(_, due)| *due > now) {
                    continue;
                }
                match converge(&state, &tenant_id).await {
                    Ok(_) => {
                        if let Some((failures, _)) = backoff.remove(&tenant_id) {
                            tracing::info!(
                                tenant_id,
                                failures,
                                "provider keys projected into the tenant namespace"
                            );
                        }
                    }
                    Err(error) => {
                        let failures = backoff.get(&tenant_id).map_or(0, |(n, _)| *n) + 1;
                        let wait = timing
                            .first_backoff
                            .saturating_mul(2u32.saturating_pow(failures - 1))
                            .min(timing.max_backoff);
                        tracing::warn!(%error, tenant_id, failures, retry_in_secs = wait.as_secs_f64(), "provider keys still not projected");
                        backoff.insert(tenant_id, (failures, tokio::time::Instant::now() + wait));
                    }
                }
            }
            if full_pass {
                // Tenants no longer pending (written by a handler or another replica) are
                // forgotten once a whole pass did not list them.
                backoff.retain(|tenant, _| seen.contains(tenant));
                seen.clear();
            }
        }
    }))
}

/// The next page of pending tenants after `after` (a tenant id; empty = from the start).
async fn pending_page(state: &AppState, after: &str) -> Result<Vec<String>, StoreError> {
    let mut tx = system::read(&state.store).await?;
    let page = provider_keys::pending(&mut tx, after, PENDING_BATCH).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(page)
}

/// `GET /api/v1/tenants/{tenant}/credentials` (member): masked.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/credentials", tag = "credentials", params(("tenant" = String, Path, description = "Tenant slug or id")),
    responses((status = 200, body = Vec<CredentialView>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
) -> Result<Json<Vec<CredentialView>>, ApiError> {
    access.require(Role::Member)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = credentials::list(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    Ok(Json(rows.iter().map(CredentialView::from).collect()))
}

/// `GET /api/v1/tenants/{tenant}/credentials/{id}` (member): masked.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/credentials/{id}", tag = "credentials",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Credential id")),
    responses((status = 200, body = CredentialView), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    access: TenantAccess,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<CredentialView>, ApiError> {
    access.require(Role::Member)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let row = credentials::get(&mut tx, &access.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    tx.commit().await?;
    Ok(Json(CredentialView::from(&row)))
}

/// `POST /api/v1/tenants/{tenant}/credentials` (admin).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/credentials", tag = "credentials", params(("tenant" = String, Path, description = "Tenant slug or id")),
    request_body = CreateCredential, responses((status = 201, body = CredentialView), (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(request): ApiJson<CreateCredential>,
) -> Result<impl IntoResponse, ApiError> {
    access.require(Role::Admin)?;
    let label = display_text("label", &request.label, 64)?;
    let secret = checked_secret(&request.secret)?;
    let metadata = checked_metadata(request.metadata)?;
    let now = now_ms();
    let provider = request.provider.as_str();
    let mut tx = state.store.write(&access.scope()).await?;
    let is_default = match request.is_default {
        Some(flag) => flag,
        None => !credentials::has_default(&mut tx, &access.tenant.id, provider).await?,
    };
    if is_default {
        credentials::clear_default(&mut tx, &access.tenant.id, provider, now).await?;
    }
    let (_, actor) = access.principal.actor();
    let mut row = CredentialRow {
        id: new_id(),
        tenant_id: access.tenant.id.clone(),
        provider: provider.to_owned(),
        label: label.clone(),
        is_default: Flag(is_default),
        key_id: String::new(),
        ciphertext: String::new(),
        hint: String::new(),
        metadata,
        created_by: actor.to_owned(),
        created_at: now,
        updated_at: now,
    };
    seal(&state, &mut row, &secret)?;
    if !credentials::insert(&mut tx, &row).await? {
        return Err(ApiError::conflict(
            "label_taken",
            "this vendor already has a credential with this label",
        )
        .with_field("label"));
    }
    record(
        &mut tx,
        &access,
        &client,
        "credential.created",
        ("credential", &row.id),
        json!({"provider": provider, "label": label, "is_default": is_default}),
    )
    .await?;
    // The Secret is behind from here until a write of it succeeds (see `converge`).
    provider_keys::bump(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    project_to_cluster(&state, &access.tenant).await;
    Ok((StatusCode::CREATED, Json(CredentialView::from(&row))))
}

/// `PATCH /api/v1/tenants/{tenant}/credentials/{id}` (admin): label, secret, default, metadata.
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/credentials/{id}", tag = "credentials",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Credential id")),
    request_body = UpdateCredential, responses((status = 200, body = CredentialView), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<UpdateCredential>,
) -> Result<Json<CredentialView>, ApiError> {
    access.require(Role::Admin)?;
    let now = now_ms();
    let mut tx = state.store.write(&access.scope()).await?;
    let mut row = credentials::get(&mut tx, &access.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    let mut changed = Vec::new();
    if let Some(label) = &request.label {
        row.label = display_text("label", label, 64)?;
        changed.push("label");
    }
    if let Some(secret) = &request.secret {
        seal(&state, &mut row, &checked_secret(secret)?)?;
        changed.push("secret");
    }
    if request.metadata.is_some() {
        row.metadata = checked_metadata(request.metadata)?;
        changed.push("metadata");
    }
    if let Some(flag) = request.is_default {
        if flag && !row.is_default.0 {
            credentials::clear_default(&mut tx, &access.tenant.id, &row.provider, now).await?;
        }
        row.is_default = Flag(flag);
        changed.push("is_default");
    }
    match credentials::update(&mut tx, &row, now).await {
        Err(error) if error.is_unique_violation() => {
            return Err(ApiError::conflict(
                "label_taken",
                "this vendor already has a credential with this label",
            )
            .with_field("label"));
        }
        other => other?,
    }
    record(
        &mut tx,
        &access,
        &client,
        "credential.updated",
        ("credential", &row.id),
        json!({"fields": changed}),
    )
    .await?;
    provider_keys::bump(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    row.updated_at = now;
    project_to_cluster(&state, &access.tenant).await;
    Ok(Json(CredentialView::from(&row)))
}

/// `DELETE /api/v1/tenants/{tenant}/credentials/{id}` (admin).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/credentials/{id}", tag = "credentials",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Credential id")),
    responses((status = 204), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.write(&access.scope()).await?;
    if !credentials::delete(&mut tx, &access.tenant.id, &id).await? {
        return Err(ApiError::not_found("credential"));
    }
    record(
        &mut tx,
        &access,
        &client,
        "credential.deleted",
        ("credential", &id),
        json!({}),
    )
    .await?;
    provider_keys::bump(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    project_to_cluster(&state, &access.tenant).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_reveal_only_the_tail_of_long_secrets() {
        assert_eq!(hint_of("sk-0123456789abcdefWXYZ"), "WXYZ");
        assert_eq!(hint_of("short-secret"), "");
    }

    #[test]
    fn metadata_keys_are_checked() {
        let ok = BTreeMap::from([("base_url".to_owned(), "http://x".to_owned())]);
        assert!(checked_metadata(Some(ok)).is_ok());
        let bad = BTreeMap::from([("base url".to_owned(), "x".to_owned())]);
        assert_eq!(
            checked_metadata(Some(bad)).unwrap_err().field.as_deref(),
            Some("metadata.base url")
        );
    }
}
