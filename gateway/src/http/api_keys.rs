//! Customer API keys of a tenant: created by admins (users only, so a key cannot mint keys),
//! shown once, stored hashed, scoped (`read` < `write` < `admin`), revocable.

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
use super::principal::{API_KEY_SCOPES, TenantAccess, role_of_scopes};
use super::validate::display_text;
use super::validate::rfc3339;
use crate::state::AppState;
use crate::store::api_keys::{self, ApiKeyRow};
use crate::store::now_ms;
use crate::store::tenants::Role;

/// The API-key routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// Request to create a key.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    /// A label, e.g. `CRM integration`.
    pub name: String,
    /// Scopes: any of `read`, `write`, `admin` (default `["read"]`).
    pub scopes: Option<Vec<String>>,
}

/// An API key (never its secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    /// Key id.
    pub id: String,
    /// Label.
    pub name: String,
    /// First characters of the key.
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creator (user id).
    pub created_by: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last use (RFC 3339, minute precision).
    pub last_used_at: Option<String>,
    /// Revocation time (RFC 3339).
    pub revoked_at: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            created_by: row.created_by,
            created_at: rfc3339(row.created_at),
            last_used_at: row.last_used_at.map(rfc3339),
            revoked_at: row.revoked_at.map(rfc3339),
        }
    }
}

/// A new key with its secret, shown only in this response.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// The key's metadata.
    pub api_key: ApiKeyView,
    /// The full key, for `Authorization: Bearer`. It cannot be shown again.
    pub key: String,
}

/// `GET /api/v1/tenants/{tenant}/api-keys` (admin).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/api-keys", tag = "api-keys", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<ApiKeyView>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ApiKeyView>>, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = api_keys::list(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    let all = rows.into_iter().map(ApiKeyView::from).collect();
    Ok(Json(Page::of_all(all, &page)?))
}

fn checked_scopes(requested: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let scopes = requested.unwrap_or_else(|| vec!["read".to_owned()]);
    if scopes.is_empty() {
        return Err(ApiError::invalid(
            "scopes",
            "invalid_scope",
            "at least one scope is needed",
        ));
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| !API_KEY_SCOPES.contains(&s.as_str()))
    {
        return Err(ApiError::invalid(
            "scopes",
            "invalid_scope",
            format!("unknown scope {bad:?}: expected read, write or admin"),
        ));
    }
    let mut scopes = scopes;
    scopes.sort_by_key(|s| API_KEY_SCOPES.iter().position(|k| k == s));
    scopes.dedup();
    Ok(scopes)
}

/// `POST /api/v1/tenants/{tenant}/api-keys` (admin, user token only).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/api-keys", tag = "api-keys", params(("tenant" = String, Path, description = "Tenant slug or id")),
    request_body = CreateApiKey, responses((status = 201, body = CreatedApiKey), (status = 403, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(request): ApiJson<CreateApiKey>,
) -> Result<impl IntoResponse, ApiError> {
    access.require(Role::Admin)?;
    let creator = access.principal.require_user()?.to_owned();
    let name = display_text("name", &request.name, 100)?;
    let scopes = checked_scopes(request.scopes)?;
    if role_of_scopes(&scopes.join(" ")) > access.role {
        return Err(
            ApiError::forbidden("a key cannot have more power than its creator")
                .with_field("scopes"),
        );
    }
    let mut tx = state.store.write(&access.scope()).await?;
    let (row, key) = api_keys::create(
        &mut tx,
        &access.tenant.id,
        &name,
        &scopes,
        &creator,
        now_ms(),
    )
    .await?;
    record(
        &mut tx,
        &access,
        &client,
        "api_key.created",
        ("api_key", &row.id),
        json!({"name": name, "scopes": scopes}),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: row.into(),
            key,
        }),
    ))
}

/// `DELETE /api/v1/tenants/{tenant}/api-keys/{id}` (admin): revokes at once.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/api-keys/{id}", tag = "api-keys",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.write(&access.scope()).await?;
    if !api_keys::revoke(&mut tx, &access.tenant.id, &id, now_ms()).await? {
        return Err(ApiError::not_found("API key"));
    }
    record(
        &mut tx,
        &access,
        &client,
        "api_key.revoked",
        ("api_key", &id),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
