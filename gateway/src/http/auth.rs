//! `/api/v1/auth/…`: signup, login, refresh, logout, me, e-mail verification, password reset.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_crds::tenant::AgentSpec;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::context::ClientInfo;
use super::errors::ApiError;
use super::principal::Principal;
use super::tenants::{MembershipView, TenantView};
use super::validate::{display_text, normalize_email, rfc3339, slug_candidate, slugify};
use crate::mailer::Email;
use crate::passwords::{decoy_hash, hash_password, password_weakness, verify_password};
use crate::ratelimit::{Decision, LimitClass};
use crate::state::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::sessions::{self, IssuedRefresh, RefreshOutcome};
use crate::store::tenants::{self, Role, TenantRow};
use crate::store::users::{self, EmailPurpose, UserRow};
use crate::store::{Flag, Scope, Tx, new_id, now_ms};
use crate::tenant_sync::SLUG_ATTEMPTS;

/// The account routes (signup, login, sessions, e-mail verification, password reset).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me, super::data_lifecycle::delete_me))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
}

const EMAIL_VERIFICATION_TTL_MS: i64 = 48 * 3600 * 1000;
const PASSWORD_RESET_TTL_MS: i64 = 3600 * 1000;

/// Signup request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignupRequest {
    /// E-mail address (login name).
    pub email: String,
    /// At least 10 characters, not a common password.
    pub password: String,
    /// The user's name.
    pub name: String,
    /// Company (tenant) name; its slug becomes the tenant's id in URLs and Kubernetes.
    pub company: String,
}

/// Login request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    /// E-mail address.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Refresh request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh (single use).
    pub refresh_token: String,
}

/// A single-use token from an e-mail.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// The token from the e-mailed link.
    pub token: String,
}

/// Password-reset request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's e-mail address.
    pub email: String,
}

/// Password-reset confirmation.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the e-mailed link.
    pub token: String,
    /// The new password.
    pub password: String,
}

/// A user as shown to themselves.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// User id.
    pub id: String,
    /// E-mail address.
    pub email: String,
    /// Name.
    pub name: String,
    /// Whether the e-mail address is verified.
    pub email_verified: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<&UserRow> for UserView {
    fn from(user: &UserRow) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            email_verified: user.email_verified_at.is_some(),
            created_at: rfc3339(user.created_at),
        }
    }
}

/// Access and refresh tokens.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single-use token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// When the session ends (RFC 3339).
    pub refresh_token_expires_at: String,
}

/// Signup response.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignupResponse {
    /// The new user.
    pub user: UserView,
    /// The new tenant.
    pub tenant: TenantView,
    /// Tokens for the new session.
    pub tokens: TokenPair,
}

/// Login response.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// The user.
    pub user: UserView,
    /// Tokens for the new session.
    pub tokens: TokenPair,
}

/// Answer to an e-mail verification.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailVerified {
    /// Always `true`.
    pub email_verified: bool,
}

/// Answer to a password-reset confirmation (every session of the user is ended).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChanged {
    /// Always `true`.
    pub password_changed: bool,
}

/// `me` response.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    /// The user (absent for API keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserView>,
    /// The tenants the caller can reach.
    pub tenants: Vec<MembershipView>,
    /// The API key's id, when called with an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
}

fn issue_tokens(
    state: &AppState,
    user_id: &str,
    refresh: &IssuedRefresh,
) -> Result<TokenPair, ApiError> {
    let access = state
        .tokens
        .issue(user_id, &refresh.session_id, now_ms() / 1000)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_seconds(),
        refresh_token: refresh.token.clone(),
        refresh_token_expires_at: rfc3339(refresh.expires_at),
    })
}

async fn hash_in_background(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))
}

async fn verify_in_background(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::internal(&e))
}

fn check_password(password: &str, email: &str) -> Result<(), ApiError> {
    match password_weakness(password, email) {
        Some(reason) => Err(ApiError::invalid("password", "weak_password", reason)),
        None => Ok(()),
    }
}

async fn send_mail(state: &AppState, to: &str, subject: &str, body: String) {
    let email = Email {
        to: to.to_owned(),
        subject: subject.to_owned(),
        body,
    };
    if let Err(error) = state.mailer.send(email).await {
        tracing::error!(%error, "cannot send e-mail");
    }
}

async fn send_verification(state: &AppState, user: &UserRow, token: &str) {
    let link = format!("{}/verify-email?token={token}", state.config.public_base());
    let body = format!(
        "Hello {},\n\nconfirm your e-mail address for Switchboard:\n{link}\n\nOr POST {{\"token\": \"{token}\"}} to /api/v1/auth/verify-email.\nThe link expires in 48 hours.\n",
        user.name
    );
    send_mail(state, &user.email, "Confirm your e-mail address", body).await;
}

/// Inserts the tenant under the first slug derived from `company` that is free in the database
/// and, in Kubernetes mode, as a Tenant in the cluster: a signup never takes the name of a
/// Tenant applied with kubectl or GitOps; it gets the next one (`acme-2`) instead of a 409,
/// because the company name is not an identity and the slug is shown in the answer.
async fn insert_tenant_with_free_slug(
    state: &AppState,
    tx: &mut Tx,
    tenant: &mut TenantRow,
    company: &str,
) -> Result<(), ApiError> {
    let base = slugify(company);
    for attempt in 1..=SLUG_ATTEMPTS {
        tenant.slug = slug_candidate(&base, attempt);
        match state.kube.tenant_exists(&tenant.slug).await {
            Ok(false) => {}
            Ok(true) => continue,
            Err(error) => {
                tracing::error!(%error, "cannot read Tenants to choose a free slug");
                return Err(ApiError::unavailable(
                    "the platform cannot create tenants right now; try again",
                ));
            }
        }
        if tenants::try_insert(tx, tenant).await? {
            return Ok(());
        }
    }
    Err(ApiError::conflict(
        "slug_exhausted",
        "too many tenants with this company name; choose another",
    )
    .with_field("company"))
}

/// `POST /api/v1/auth/signup`: user, tenant, owner membership, default agent, session — all in
/// one transaction. In Kubernetes mode the tenant's `Tenant` CR (namespace, runtime pod) is
/// created when the owner verifies the e-mail address, not here.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = SignupResponse), (status = 409, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    client: ClientInfo,
    super::errors::ApiJson(request): super::errors::ApiJson<SignupRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let email = normalize_email("email", &request.email)?;
    check_password(&request.password, &email)?;
    let name = display_text("name", &request.name, 100)?;
    let company = display_text("company", &request.company, 100)?;
    let password_hash = hash_in_background(request.password).await?;
    let now = now_ms();
    let user = UserRow {
        id: new_id(),
        email,
        name,
        password_hash,
        email_verified_at: None,
        created_at: now,
    };
    let agent = serde_json::to_string(&AgentSpec::default()).map_err(|e| ApiError::internal(&e))?;
    let mut tenant = TenantRow {
        id: new_id(),
        slug: String::new(),
        name: company.clone(),
        plan: switchboard_crds::Plan::default().as_str().to_owned(),
        suspended: Flag(false),
        agent,
        agents: "{}".to_owned(),
        created_at: now,
        updated_at: now,
        origin: tenants::ORIGIN_SIGNUP.to_owned(),
        cr_uid: None,
        // Standalone has nothing to defer; in Kubernetes mode activation waits for verification.
        activated_at: (!state.kube.enabled()).then_some(now),
        detached_at: None,
        limits: "{}".to_owned(),
        // The platform's carrier until the tenant stores its own account (Kubernetes mode;
        // standalone numbers are the sandbox's).
        carrier: if state.kube.enabled() {
            json!({"kind": state.config.voice.platform_carrier().as_str()}).to_string()
        } else {
            "{}".to_owned()
        },
    };
    let mut tx = state
        .store
        .write(&Scope::tenant(&tenant.id).with_user(&user.id))
        .await?;
    if !users::insert(&mut tx, &user).await? {
        return Err(ApiError::conflict(
            "email_taken",
            "an account with this e-mail address exists",
        )
        .with_field("email"));
    }
    insert_tenant_with_free_slug(&state, &mut tx, &mut tenant, &company).await?;
    tenants::add_member(&mut tx, &tenant.id, &user.id, Role::Owner, now).await?;
    let refresh = sessions::create(
        &mut tx,
        &user.id,
        now,
        state.config.session_ttl_seconds * 1000,
    )
    .await?;
    let verification = users::create_email_token(
        &mut tx,
        &user.id,
        EmailPurpose::VerifyEmail,
        now,
        EMAIL_VERIFICATION_TTL_MS,
    )
    .await?;
    audit::record(
        &mut tx,
        &AuditEvent {
            tenant_id: &tenant.id,
            actor_type: "user",
            actor_id: Some(&user.id),
            action: "tenant.created",
            target_type: Some("tenant"),
            target_id: Some(&tenant.id),
            ip: Some(&client.ip),
            request_id: client.request_id.as_deref(),
            details: json!({"slug": tenant.slug}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    send_verification(&state, &user, &verification).await;
    tracing::info!(user_id = %user.id, tenant = %tenant.slug, "signup");
    let tokens = issue_tokens(&state, &user.id, &refresh)?;
    let tenant_view = TenantView::build(&state, &tenant, Role::Owner, None)?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            user: UserView::from(&user),
            tenant: tenant_view,
            tokens,
        }),
    ))
}

/// `POST /api/v1/auth/login`: a new session. Throttled per e-mail address; unknown addresses
/// cost the same argon2 work as known ones.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = super::errors::ErrorBody), (status = 429, body = super::errors::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    super::errors::ApiJson(request): super::errors::ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let email = normalize_email("email", &request.email)?;
    if let Decision::Limited { retry_after_secs } =
        state.limiter.check(LimitClass::Login, &email).await
    {
        return Err(ApiError::too_many_requests(retry_after_secs));
    }
    let mut conn = state.store.pool().acquire().await?;
    let user = users::by_email(&mut conn, &email).await?;
    drop(conn);
    let hash = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let matches = verify_in_background(request.password, hash).await?;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "e-mail address or password is wrong",
            ));
        }
    };
    let now = now_ms();
    let mut tx = state.store.write(&Scope::user(&user.id)).await?;
    let refresh = sessions::create(
        &mut tx,
        &user.id,
        now,
        state.config.session_ttl_seconds * 1000,
    )
    .await?;
    audit_in_each_tenant(&state, &mut tx, &user.id, &client, "user.login", now).await?;
    tx.commit().await?;
    let tokens = issue_tokens(&state, &user.id, &refresh)?;
    Ok(Json(LoginResponse {
        user: UserView::from(&user),
        tokens,
    }))
}

/// Records `action` by the user in the audit log of every tenant the user belongs to (logins
/// and password resets concern each of them). On Postgres each entry is written under its
/// tenant's scope (row-level security); the scope is left at the user afterwards.
async fn audit_in_each_tenant(
    state: &AppState,
    tx: &mut Tx,
    user_id: &str,
    client: &ClientInfo,
    action: &str,
    now: i64,
) -> Result<(), ApiError> {
    let postgres = state.store.backend() == crate::store::Backend::Postgres;
    if postgres {
        crate::store::set_scope(tx, &Scope::user(user_id)).await?;
    }
    for (tenant, _) in crate::store::tenants::tenants_of_user(tx, user_id).await? {
        if postgres {
            crate::store::set_scope(tx, &Scope::tenant(&tenant.id).with_user(user_id)).await?;
        }
        audit::record(
            tx,
            &AuditEvent {
                tenant_id: &tenant.id,
                actor_type: "user",
                actor_id: Some(user_id),
                action,
                target_type: Some("user"),
                target_id: Some(user_id),
                ip: Some(&client.ip),
                request_id: client.request_id.as_deref(),
                details: json!({}),
            },
            now,
        )
        .await?;
    }
    if postgres {
        crate::store::set_scope(tx, &Scope::user(user_id)).await?;
    }
    Ok(())
}

/// `POST /api/v1/auth/refresh`: rotates the refresh token. A reused token revokes its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = super::errors::ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    super::errors::ApiJson(request): super::errors::ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let mut tx = state.store.write(&Scope::none()).await?;
    let outcome = sessions::rotate(&mut tx, &request.refresh_token, now_ms()).await?;
    tx.commit().await?;
    match outcome {
        RefreshOutcome::Rotated { user_id, next } => {
            Ok(Json(issue_tokens(&state, &user_id, &next)?))
        }
        RefreshOutcome::Reused {
            user_id,
            session_id,
        } => {
            tracing::warn!(%user_id, %session_id, "refresh token reused: session revoked");
            Err(ApiError::unauthorized(
                "refresh_token_reused",
                "refresh token was already used; the session is revoked",
            ))
        }
        RefreshOutcome::Invalid => Err(ApiError::unauthorized(
            "invalid_refresh_token",
            "refresh token is invalid or expired",
        )),
    }
}

/// `POST /api/v1/auth/logout`: ends the session of the access token (its refresh tokens and
/// access tokens stop working at once).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    let Principal::User { session_id, .. } = &principal else {
        return Err(ApiError::forbidden(
            "API keys have no session; revoke the key instead",
        ));
    };
    let mut tx = state.store.write(&Scope::none()).await?;
    sessions::revoke(&mut tx, session_id, "logout", now_ms()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/me`: the caller and the tenants they can reach.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = MeResponse), (status = 401, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<MeResponse>, ApiError> {
    match &principal {
        Principal::User { user_id, .. } => {
            let mut tx = state.store.read(&Scope::user(user_id)).await?;
            let user = users::by_id(&mut tx, user_id)
                .await?
                .ok_or_else(|| ApiError::not_found("user"))?;
            let memberships = tenants::tenants_of_user(&mut tx, user_id).await?;
            tx.commit().await?;
            Ok(Json(MeResponse {
                user: Some(UserView::from(&user)),
                tenants: memberships
                    .into_iter()
                    .map(|(t, role)| MembershipView {
                        tenant_id: t.id,
                        slug: t.slug,
                        name: t.name,
                        role,
                    })
                    .collect(),
                api_key_id: None,
            }))
        }
        Principal::ApiKey(key) => {
            let mut tx = state.store.read(&Scope::tenant(&key.tenant_id)).await?;
            let tenant = tenants::by_id(&mut tx, &key.tenant_id)
                .await?
                .ok_or_else(|| ApiError::not_found("tenant"))?;
            tx.commit().await?;
            let role = super::principal::role_of_scopes(&key.scopes);
            Ok(Json(MeResponse {
                user: None,
                tenants: vec![MembershipView {
                    tenant_id: tenant.id,
                    slug: tenant.slug,
                    name: tenant.name,
                    role,
                }],
                api_key_id: Some(key.id.clone()),
            }))
        }
    }
}

/// `POST /api/v1/auth/verify-email`: confirms the address with the e-mailed token.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = EmailVerified), (status = 400, body = super::errors::ErrorBody)))]
pub async fn verify_email(
    State(state): State<AppState>,
    super::errors::ApiJson(request): super::errors::ApiJson<TokenRequest>,
) -> Result<Json<EmailVerified>, ApiError> {
    let now = now_ms();
    let mut tx = state.store.write(&Scope::none()).await?;
    let user_id =
        users::consume_email_token(&mut tx, &request.token, EmailPurpose::VerifyEmail, now)
            .await?
            .ok_or_else(|| {
                ApiError::bad_request("invalid_token", "token is invalid, used or expired")
                    .with_field("token")
            })?;
    users::mark_verified(&mut tx, &user_id, now).await?;
    let user = users::by_id(&mut tx, &user_id).await?;
    tx.commit().await?;
    // A verified owner's signup tenants get their Tenant CR now, and the address joins the
    // tenants whose manifests list it.
    crate::tenant_sync::activate_for_user(&state, &user_id).await;
    if let Some(user) = user {
        crate::tenant_sync::claim_manifest_memberships(&state, &user_id, &user.email).await;
    }
    Ok(Json(EmailVerified {
        email_verified: true,
    }))
}

/// `POST /api/v1/auth/verify-email/resend`: mails a new verification link to the caller.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "auth", responses((status = 202)), security(("bearer" = [])))]
pub async fn resend_verification(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    let user_id = principal.require_user()?;
    let mut tx = state.store.write(&Scope::user(user_id)).await?;
    let user = users::by_id(&mut tx, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if user.email_verified_at.is_some() {
        tx.commit().await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let token = users::create_email_token(
        &mut tx,
        user_id,
        EmailPurpose::VerifyEmail,
        now_ms(),
        EMAIL_VERIFICATION_TTL_MS,
    )
    .await?;
    tx.commit().await?;
    send_verification(&state, &user, &token).await;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/v1/auth/password-reset`: mails a reset link if the account exists. Always 202,
/// so the answer does not reveal which addresses have accounts.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = ResetRequest, responses((status = 202)))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    super::errors::ApiJson(request): super::errors::ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    let email = normalize_email("email", &request.email)?;
    if let Decision::Limited { retry_after_secs } =
        state.limiter.check(LimitClass::Login, &email).await
    {
        return Err(ApiError::too_many_requests(retry_after_secs));
    }
    let mut tx = state.store.write(&Scope::none()).await?;
    let Some(user) = users::by_email(&mut tx, &email).await? else {
        tx.commit().await?;
        return Ok(StatusCode::ACCEPTED);
    };
    let token = users::create_email_token(
        &mut tx,
        &user.id,
        EmailPurpose::PasswordReset,
        now_ms(),
        PASSWORD_RESET_TTL_MS,
    )
    .await?;
    tx.commit().await?;
    let link = format!(
        "{}/reset-password?token={token}",
        state.config.public_base()
    );
    let body = format!(
        "Hello {},\n\nsomeone asked to reset your Switchboard password. If it was you, open:\n{link}\n\nOr POST {{\"token\": \"{token}\", \"password\": \"…\"}} to /api/v1/auth/password-reset/confirm.\nThe link expires in one hour. If it was not you, ignore this message.\n",
        user.name
    );
    send_mail(&state, &user.email, "Reset your password", body).await;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/v1/auth/password-reset/confirm`: sets a new password and ends every session.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 200, body = PasswordChanged), (status = 400, body = super::errors::ErrorBody), (status = 422, body = super::errors::ErrorBody)))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    super::errors::ApiJson(request): super::errors::ApiJson<ResetConfirm>,
) -> Result<Json<PasswordChanged>, ApiError> {
    let now = now_ms();
    let mut tx = state.store.write(&Scope::none()).await?;
    let invalid = || {
        ApiError::bad_request("invalid_token", "token is invalid, used or expired")
            .with_field("token")
    };
    let user_id =
        users::consume_email_token(&mut tx, &request.token, EmailPurpose::PasswordReset, now)
            .await?
            .ok_or_else(invalid)?;
    let user = users::by_id(&mut tx, &user_id).await?.ok_or_else(invalid)?;
    check_password(&request.password, &user.email)?;
    let hash = hash_in_background(request.password).await?;
    users::set_password(&mut tx, &user_id, &hash, now).await?;
    // Whoever knew the old password may hold sessions: end them all.
    sessions::revoke_all(&mut tx, &user_id, "password_reset", now).await?;
    // And the API keys it minted, in each of its tenants: someone who held the account (say,
    // signed up with this unverified address) must not keep access through a key (issue 15).
    // Each tenant's keys are reached under that tenant's scope (row-level security).
    let postgres = state.store.backend() == crate::store::Backend::Postgres;
    if postgres {
        crate::store::set_scope(&mut tx, &Scope::user(&user_id)).await?;
    }
    for (tenant, _) in crate::store::tenants::tenants_of_user(&mut tx, &user_id).await? {
        if postgres {
            let scope = Scope::tenant(&tenant.id).with_user(&user_id);
            crate::store::set_scope(&mut tx, &scope).await?;
        }
        crate::store::api_keys::revoke_created_by(&mut tx, &tenant.id, &user_id, now).await?;
    }
    audit_in_each_tenant(
        &state,
        &mut tx,
        &user_id,
        &client,
        "user.password_reset",
        now,
    )
    .await?;
    // Receiving the mail proves the address.
    users::mark_verified(&mut tx, &user_id, now).await?;
    tx.commit().await?;
    Ok(Json(PasswordChanged {
        password_changed: true,
    }))
}
