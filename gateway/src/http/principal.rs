//! Who is calling: a user (access token) or an API key, and what they may do in a tenant.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::errors::ApiError;
use crate::ratelimit::{Decision, LimitClass};
use crate::state::AppState;
use crate::store::api_keys::{self, ApiKeyRow, KEY_PREFIX};
use crate::store::tenants::{self, Role, TenantRow};
use crate::store::{Scope, now_ms, sessions};

/// API key scopes, weakest first. A key's scopes map onto the role it acts with.
pub const API_KEY_SCOPES: [&str; 3] = ["read", "write", "admin"];

/// The authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A user with an access token.
    User {
        /// User id.
        user_id: String,
        /// Session id of the token.
        session_id: String,
    },
    /// A customer API key (always bound to one tenant).
    ApiKey(ApiKeyRow),
}

impl Principal {
    /// `("user", id)` or `("api_key", id)`, as recorded in the audit log.
    pub fn actor(&self) -> (&'static str, &str) {
        match self {
            Principal::User { user_id, .. } => ("user", user_id),
            Principal::ApiKey(key) => ("api_key", &key.id),
        }
    }

    /// The user id, or 403 for API keys (for actions only people may take).
    pub fn require_user(&self) -> Result<&str, ApiError> {
        match self {
            Principal::User { user_id, .. } => Ok(user_id),
            Principal::ApiKey(_) => Err(ApiError::forbidden(
                "this action needs a user's access token, not an API key",
            )),
        }
    }
}

/// The role an API key acts with: its strongest scope.
pub fn role_of_scopes(scopes: &str) -> Role {
    let has = |s: &str| scopes.split_whitespace().any(|scope| scope == s);
    if has("admin") {
        Role::Admin
    } else if has("write") {
        Role::Member
    } else {
        Role::Viewer
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("unauthenticated", "missing Authorization: Bearer header")
    })?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid_token", "malformed Authorization header"))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "expected a Bearer token",
        ));
    }
    Ok(token.trim())
}

/// The tenant of the request's API key, read in the key's authentication transaction so that
/// [`TenantAccess`] needs no transaction of its own (an API-key request used to open three).
#[derive(Debug, Clone)]
struct KeyTenant(Option<TenantRow>);

async fn authenticate_api_key(
    state: &AppState,
    key: &str,
) -> Result<(Principal, KeyTenant), ApiError> {
    let invalid = || ApiError::unauthorized("invalid_api_key", "API key is invalid or revoked");
    let tenant_id = api_keys::tenant_of_key(key).ok_or_else(invalid)?;
    let scope = Scope::tenant(&tenant_id);
    let mut tx = state.store.read(&scope).await?;
    let row = api_keys::authenticate(&mut tx, &tenant_id, key)
        .await?
        .ok_or_else(invalid)?;
    let tenant = tenants::by_id(&mut tx, &tenant_id).await?;
    tx.commit().await?;
    let now = now_ms();
    // Record the use at most once a minute; the meter writes it with its next batch, so no
    // request waits for a write.
    if row.last_used_at.is_none_or(|used| used < now - 60_000) {
        state.api_meter.touch(&tenant_id, &row.id, now);
    }
    if let Decision::Limited { retry_after_secs } =
        state.limiter.check(LimitClass::ApiKey, &row.id).await
    {
        return Err(ApiError::too_many_requests(retry_after_secs));
    }
    // API-key requests count against the plan's monthly API request limit (counted in
    // memory, written in batches: see `usage::meter::ApiMeter`).
    state
        .api_meter
        .admit(&state.store, &state.plan_limits, &tenant_id)
        .await?;
    Ok((Principal::ApiKey(row), KeyTenant(tenant)))
}

async fn authenticate_user(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let claims = state.tokens.verify(token).map_err(|_| {
        ApiError::unauthorized("invalid_token", "access token is invalid or expired")
    })?;
    let mut conn = state.store.pool().acquire().await?;
    if !sessions::is_active(&mut conn, &claims.sid, &claims.sub, now_ms()).await? {
        return Err(ApiError::unauthorized(
            "session_revoked",
            "the session of this token has ended",
        ));
    }
    Ok(Principal::User {
        user_id: claims.sub,
        session_id: claims.sid,
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let token = bearer(parts)?;
        let principal = if token.starts_with(KEY_PREFIX) {
            let (principal, tenant) = authenticate_api_key(state, token).await?;
            parts.extensions.insert(tenant);
            principal
        } else {
            authenticate_user(state, token).await?
        };
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// The caller's access to the tenant named by the `{tenant}` path segment (slug or id).
///
/// Users must be members; API keys only reach their own tenant. Everything else is a 404, so
/// a tenant's existence does not leak to outsiders.
#[derive(Debug, Clone)]
pub struct TenantAccess {
    /// The tenant.
    pub tenant: TenantRow,
    /// The caller's role in it.
    pub role: Role,
    /// The caller.
    pub principal: Principal,
}

impl TenantAccess {
    /// The tenant's effective limits, read in the caller's transaction.
    pub async fn limits(
        &self,
        state: &AppState,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<switchboard_crds::PlanLimits, crate::store::StoreError> {
        crate::usage::limits_for(conn, &state.plan_limits, &self.tenant.id, &self.tenant.plan).await
    }

    /// In Kubernetes mode, refuses work that needs the tenant's voice stack (numbers,
    /// campaigns) while it has none: 403 `email_not_verified` before an owner verifies the
    /// address (the Tenant is created then), 409 `tenant_detached` once its Tenant was deleted.
    pub fn require_stack(&self, state: &AppState) -> Result<(), ApiError> {
        if !state.kube.enabled() {
            return Ok(());
        }
        if self.tenant.detached_at.is_some() {
            return Err(ApiError::conflict(
                "tenant_detached",
                "this tenant's Tenant was deleted from the cluster; it is kept read-only",
            ));
        }
        if self.tenant.activated_at.is_none() {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "email_not_verified",
                "verify the owner's e-mail address first: the tenant's voice stack is created then",
            ));
        }
        Ok(())
    }

    /// 403 unless the caller's role is at least `minimum`.
    pub fn require(&self, minimum: Role) -> Result<(), ApiError> {
        if self.role >= minimum {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this action needs the {} role",
                minimum.as_str()
            )))
        }
    }

    /// The scope for this tenant's transactions.
    pub fn scope(&self) -> Scope {
        let scope = Scope::tenant(&self.tenant.id);
        match &self.principal {
            Principal::User { user_id, .. } => scope.with_user(user_id),
            Principal::ApiKey(_) => scope,
        }
    }
}

impl FromRequestParts<AppState> for TenantAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Already resolved for this request (by the idempotency middleware).
        if let Some(access) = parts.extensions.get::<TenantAccess>() {
            return Ok(access.clone());
        }
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("tenant"))?;
        let key = params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::not_found("tenant"))?;
        let principal = Principal::from_request_parts(parts, state).await?;
        let (tenant, role) = match &principal {
            Principal::User { user_id, .. } => {
                let mut tx = state.store.read(&Scope::user(user_id)).await?;
                let found = tenants::tenant_for_member(&mut tx, &key, user_id).await?;
                tx.commit().await?;
                found.ok_or_else(|| ApiError::not_found("tenant"))?
            }
            Principal::ApiKey(api_key) => {
                let found = match parts.extensions.get::<KeyTenant>() {
                    // The key's own tenant, read when the key was checked: the path must
                    // name it (by slug or id, as `tenants::by_slug_or_id` reads a key).
                    Some(KeyTenant(tenant)) => {
                        tenant.clone().filter(|t| tenants::key_names(&key, t))
                    }
                    None => {
                        let mut tx = state.store.read(&Scope::tenant(&api_key.tenant_id)).await?;
                        let found = tenants::by_slug_or_id(&mut tx, &key).await?;
                        tx.commit().await?;
                        found
                    }
                };
                let tenant = found
                    .filter(|t| t.id == api_key.tenant_id)
                    .ok_or_else(|| ApiError::not_found("tenant"))?;
                (tenant, role_of_scopes(&api_key.scopes))
            }
        };
        Ok(TenantAccess {
            tenant,
            role,
            principal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_scopes_map_to_roles() {
        assert_eq!(role_of_scopes("read"), Role::Viewer);
        assert_eq!(role_of_scopes("read write"), Role::Member);
        assert_eq!(role_of_scopes("admin"), Role::Admin);
        assert_eq!(role_of_scopes(""), Role::Viewer);
    }
}
