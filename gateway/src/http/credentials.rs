//! Bring-your-own provider credentials of a tenant. Secrets are sealed with AES-256-GCM under
//! the master key (bound to tenant and row), shown only masked, never logged, and in
//! Kubernetes mode projected into the tenant's `provider-keys` Secret for its runtime.
//!
//! The projection converges: each change marks the Secret pending in its own transaction
//! (migration 0002), the handler tries to write it at once, and when that fails — typically
//! right after signup, before the operator has created the tenant's namespace — the task of
//! retry worker of [`crate::provider_keys`] retries with backoff until it succeeds.
//!
//! Members read the masked list; admins create, change and delete.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::record;
use super::context::ClientInfo;
use super::errors::{ApiError, ApiJson};
use super::page::{Page, PageQuery};
use super::principal::TenantAccess;
use super::validate::display_text;
use super::validate::rfc3339;
use crate::crypto::credential_aad;
use crate::provider_keys::converge;
use crate::state::AppState;
use crate::store::credentials::{self, CredentialRow};
use crate::store::tenants::{Role, TenantRow};
use crate::store::{Flag, new_id, now_ms, provider_keys};

/// The provider-credential routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(self::get, update, self::delete))
        .routes(routes!(test))
}

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
    /// Any OpenAI-compatible server: `metadata.base_url` is required and the key is only ever
    /// sent there.
    OpenaiCompatible,
    /// Deepgram (speech-to-text, Aura text-to-speech).
    Deepgram,
    /// ElevenLabs (text-to-speech).
    Elevenlabs,
    /// Twilio (auth token; `metadata.account_sid`).
    Twilio,
    /// Telnyx (API key; `metadata.connection_id`, `metadata.public_key`).
    Telnyx,
    /// S3-compatible storage for call recordings (secret access key; `metadata.bucket`,
    /// `metadata.access_key_id`, optional `metadata.endpoint`, `metadata.region`,
    /// `metadata.prefix`). Used by the gateway only, never sent to the runtime.
    S3,
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
            Provider::S3 => crate::recordings::S3_PROVIDER,
        }
    }
}

/// Request to store a credential.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
#[serde(rename_all = "camelCase")]
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

/// What a provider credential must satisfy to reach the runtime
/// (`switchboard_crds::credentials`): its label must make a Secret key, and an
/// `openai-compatible` key is bound to `metadata.base_url`, which must pass the outbound URL
/// policy (`switchboard_crds::outbound`: no internal targets unless allowed).
fn check_runtime_delivery(
    provider: &str,
    label: &str,
    metadata: &str,
    allow_private: bool,
) -> Result<(), ApiError> {
    if provider == crate::recordings::S3_PROVIDER {
        // Recording storage: complete, and its endpoint within the outbound URL policy.
        let metadata: BTreeMap<String, String> =
            serde_json::from_str(metadata).map_err(|e| ApiError::internal(&e))?;
        crate::recordings::S3Settings::from_metadata(&metadata, allow_private)
            .map_err(|(field, message)| ApiError::invalid(&field, "invalid_field", message))?;
        return Ok(());
    }
    let Some(vendor) = switchboard_crds::credentials::Vendor::parse(provider) else {
        return Ok(());
    };
    if switchboard_crds::credentials::secret_key(vendor, label).is_none() {
        return Err(ApiError::invalid(
            "label",
            "too_long",
            "label is too long to deliver to the runtime; use fewer non-ASCII characters",
        ));
    }
    if vendor == switchboard_crds::credentials::Vendor::OpenaiCompatible {
        let metadata: BTreeMap<String, String> =
            serde_json::from_str(metadata).map_err(|e| ApiError::internal(&e))?;
        let Some(url) = metadata.get("base_url") else {
            return Err(ApiError::invalid(
                "metadata.base_url",
                "required",
                "an openai-compatible key is bound to its server: set metadata.base_url",
            ));
        };
        switchboard_crds::outbound::check_url(url, allow_private).map_err(|error| {
            ApiError::invalid("metadata.base_url", "invalid_url", error.to_string())
        })?;
    }
    Ok(())
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

/// Rewrites the tenant's `provider-keys` Secret after a credential change. Best effort: the
/// change is committed (and its generation bumped) already, so a failure here leaves the
/// tenant pending and the retry task converges it.
async fn project_to_cluster(state: &AppState, tenant: &TenantRow) {
    if let Err(error) = converge(state, &tenant.id).await {
        tracing::warn!(%error, tenant = %tenant.slug, "cannot project provider keys into the tenant namespace yet; retrying in the background");
    }
    // A stored (or removed) Twilio/Telnyx account switches the carrier the operator uses.
    if let Err(error) = crate::tenant_carrier::sync_spec(state, &tenant.id).await {
        tracing::warn!(%error, tenant = %tenant.slug, "cannot point the Tenant's spec.carrier at the tenant's carrier account");
    }
}

/// `GET /api/v1/tenants/{tenant}/credentials` (member): masked.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/credentials", tag = "credentials", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<CredentialView>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<CredentialView>>, ApiError> {
    access.require(Role::Member)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = credentials::list(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    let all = rows.iter().map(CredentialView::from).collect();
    Ok(Json(Page::of_all(all, &page)?))
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
    let provider = request.provider.as_str();
    check_runtime_delivery(
        provider,
        &label,
        &metadata,
        state.config.outbound_allow_private,
    )?;
    let now = now_ms();
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
        json!({"provider": provider, "label": label, "isDefault": is_default}),
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
        changed.push("isDefault");
    }
    check_runtime_delivery(
        &row.provider,
        &row.label,
        &row.metadata,
        state.config.outbound_allow_private,
    )?;
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

/// `POST /api/v1/tenants/{tenant}/credentials/{id}/test` (admin): checks the key against its
/// vendor ([`crate::credential_check`]) and answers `{result: ok | rejected | unreachable,
/// vendorStatus, message}`; the key never appears in the answer. Audited.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/credentials/{id}/test", tag = "credentials",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Credential id")),
    responses((status = 200, body = crate::credential_check::CheckResult), (status = 404, body = super::errors::ErrorBody),
              (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn test(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<crate::credential_check::CheckResult>, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let row = credentials::get(&mut tx, &access.tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    tx.commit().await?;
    let sealed = crate::crypto::Sealed {
        key_id: row.key_id.clone(),
        ciphertext: row.ciphertext.clone(),
    };
    let secret = state
        .keyring
        .open(&sealed, &credential_aad(&row.tenant_id, &row.id))
        .map_err(|e| ApiError::internal(&e))?;
    let secret = String::from_utf8_lossy(&secret).trim().to_owned();
    let metadata: BTreeMap<String, String> =
        serde_json::from_str(&row.metadata).unwrap_or_default();
    let result = crate::credential_check::check(
        &state.webhook_client,
        &state.config.voice,
        &row.provider,
        &secret,
        &metadata,
    )
    .await
    .map_err(|error| {
        let field = match &error {
            crate::credential_check::CheckError::MissingMetadata(name) => {
                format!("metadata.{name}")
            }
        };
        ApiError::invalid(&field, "required", error.to_string())
    })?;
    let mut tx = state.store.write(&access.scope()).await?;
    record(
        &mut tx,
        &access,
        &client,
        "credential.tested",
        ("credential", &row.id),
        json!({"result": result.result, "vendorStatus": result.vendor_status}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(result))
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
