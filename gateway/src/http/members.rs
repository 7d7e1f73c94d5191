//! Members, roles and invitations of a tenant.
//!
//! Rules: viewers and up list members; admins invite, change roles and remove members; only
//! owners grant or take away the owner role; the last owner can neither leave nor be demoted;
//! anyone may leave a tenant themselves.

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
use super::principal::{Principal, TenantAccess};
use super::validate::normalize_email;
use super::validate::rfc3339;
use crate::mailer::Email;
use crate::state::AppState;
use crate::store::invitations::{self, InvitationRow};
use crate::store::tenants::{self, MemberRow, Role, parse_role};
use crate::store::{Scope, Tx, api_keys, now_ms, users};

/// The member and invitation routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(accept))
        .routes(routes!(list))
        .routes(routes!(change_role, remove))
        .routes(routes!(list_invitations, invite))
        .routes(routes!(revoke_invitation))
}

const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// A member of a tenant.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// User id.
    pub user_id: String,
    /// E-mail address.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When the user joined (RFC 3339).
    pub joined_at: String,
}

impl TryFrom<MemberRow> for MemberView {
    type Error = ApiError;

    fn try_from(row: MemberRow) -> Result<Self, ApiError> {
        Ok(Self {
            role: parse_role(&row.role)?,
            user_id: row.user_id,
            email: row.email,
            name: row.name,
            joined_at: rfc3339(row.created_at),
        })
    }
}

/// Role change.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
}

/// Invitation request.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteRequest {
    /// Address to invite.
    pub email: String,
    /// Role granted on acceptance (default `member`).
    pub role: Option<Role>,
}

/// A pending invitation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    /// Invitation id.
    pub id: String,
    /// Invited address.
    pub email: String,
    /// Role granted on acceptance.
    pub role: Role,
    /// Who invited (user id).
    pub invited_by: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Expiry (RFC 3339).
    pub expires_at: String,
}

impl TryFrom<InvitationRow> for InvitationView {
    type Error = ApiError;

    fn try_from(row: InvitationRow) -> Result<Self, ApiError> {
        Ok(Self {
            role: parse_role(&row.role)?,
            id: row.id,
            email: row.email,
            invited_by: row.invited_by,
            created_at: rfc3339(row.created_at),
            expires_at: rfc3339(row.expires_at),
        })
    }
}

/// Acceptance of an invitation.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcceptRequest {
    /// The token from the invitation e-mail.
    pub token: String,
}

/// `GET /api/v1/tenants/{tenant}/members` (viewer).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/members", tag = "members", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<MemberView>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<MemberView>>, ApiError> {
    access.require(Role::Viewer)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = tenants::members(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    let all = rows
        .into_iter()
        .map(MemberView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(Page::of_all(all, &page)?))
}

async fn ensure_not_last_owner(
    tx: &mut Tx,
    tenant_id: &str,
    current: Role,
) -> Result<(), ApiError> {
    if current == Role::Owner && tenants::count_owners(tx, tenant_id).await? <= 1 {
        return Err(ApiError::conflict(
            "last_owner",
            "a tenant needs at least one owner; make someone else owner first",
        ));
    }
    Ok(())
}

/// `PATCH /api/v1/tenants/{tenant}/members/{user_id}` (admin; owner for the owner role).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/members/{user_id}", tag = "members",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("user_id" = String, Path, description = "Member's user id")),
    request_body = RoleChange, responses((status = 200, body = MemberView), (status = 403, body = super::errors::ErrorBody), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn change_role(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, user_id)): Path<(String, String)>,
    ApiJson(change): ApiJson<RoleChange>,
) -> Result<Json<MemberView>, ApiError> {
    access.require(Role::Admin)?;
    access.principal.require_user()?;
    let mut tx = state.store.write(&access.scope()).await?;
    let member = tenants::member(&mut tx, &access.tenant.id, &user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let current = parse_role(&member.role)?;
    if (current == Role::Owner || change.role == Role::Owner) && access.role < Role::Owner {
        return Err(ApiError::forbidden(
            "only owners grant or revoke the owner role",
        ));
    }
    if change.role != Role::Owner {
        ensure_not_last_owner(&mut tx, &access.tenant.id, current).await?;
    }
    tenants::set_role(&mut tx, &access.tenant.id, &user_id, change.role).await?;
    record(
        &mut tx,
        &access,
        &client,
        "member.role_changed",
        ("user", &user_id),
        json!({"from": current.as_str(), "to": change.role.as_str()}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(MemberView {
        role: change.role,
        ..MemberView::try_from(member)?
    }))
}

/// `DELETE /api/v1/tenants/{tenant}/members/{user_id}` (admin, or the member themselves).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/members/{user_id}", tag = "members",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("user_id" = String, Path, description = "Member's user id")),
    responses((status = 204), (status = 403, body = super::errors::ErrorBody), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let caller = access.principal.require_user()?;
    if caller != user_id {
        access.require(Role::Admin)?;
    }
    let mut tx = state.store.write(&access.scope()).await?;
    let member = tenants::member(&mut tx, &access.tenant.id, &user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let current = parse_role(&member.role)?;
    if current == Role::Owner && caller != user_id && access.role < Role::Owner {
        return Err(ApiError::forbidden("only owners remove owners"));
    }
    ensure_not_last_owner(&mut tx, &access.tenant.id, current).await?;
    tenants::remove_member(&mut tx, &access.tenant.id, &user_id).await?;
    // A removed member's keys stop working with the membership (issue 15): an API key acts
    // with its creator's authority in the tenant, which is gone now.
    let revoked =
        api_keys::revoke_created_by(&mut tx, &access.tenant.id, &user_id, now_ms()).await?;
    record(
        &mut tx,
        &access,
        &client,
        "member.removed",
        ("user", &user_id),
        json!({"role": current.as_str(), "apiKeysRevoked": revoked}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/tenants/{tenant}/invitations` (admin): pending invitations.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/invitations", tag = "members", params(("tenant" = String, Path, description = "Tenant slug or id"), PageQuery),
    responses((status = 200, body = Page<InvitationView>)), security(("bearer" = [])))]
pub async fn list_invitations(
    State(state): State<AppState>,
    access: TenantAccess,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<InvitationView>>, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.read(&access.scope()).await?;
    let rows = invitations::pending(&mut tx, &access.tenant.id).await?;
    tx.commit().await?;
    let all = rows
        .into_iter()
        .map(InvitationView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(Page::of_all(all, &page)?))
}

/// `POST /api/v1/tenants/{tenant}/invitations` (admin; owner to invite owners): e-mails an
/// invitation link valid for 7 days.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/invitations", tag = "members", params(("tenant" = String, Path, description = "Tenant slug or id")),
    request_body = InviteRequest, responses((status = 201, body = InvitationView), (status = 409, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn invite(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    ApiJson(request): ApiJson<InviteRequest>,
) -> Result<impl IntoResponse, ApiError> {
    access.require(Role::Admin)?;
    let inviter = access.principal.require_user()?.to_owned();
    let email = normalize_email("email", &request.email)?;
    let role = request.role.unwrap_or(Role::Member);
    if role == Role::Owner && access.role < Role::Owner {
        return Err(ApiError::forbidden("only owners invite owners").with_field("role"));
    }
    let now = now_ms();
    let mut tx = state.store.write(&access.scope()).await?;
    let already_member = tenants::members(&mut tx, &access.tenant.id)
        .await?
        .iter()
        .any(|m| m.email == email);
    if already_member {
        return Err(ApiError::conflict(
            "already_member",
            "this address already belongs to a member",
        )
        .with_field("email"));
    }
    let (row, token) = invitations::create(
        &mut tx,
        &access.tenant.id,
        &email,
        role,
        &inviter,
        now,
        INVITATION_TTL_MS,
    )
    .await?;
    record(
        &mut tx,
        &access,
        &client,
        "invitation.created",
        ("invitation", &row.id),
        json!({"email": email, "role": role.as_str()}),
    )
    .await?;
    tx.commit().await?;
    let link = format!(
        "{}/invitations/accept?token={token}",
        state.config.public_base()
    );
    let body = format!(
        "You are invited to join {} on Switchboard as {}.\n\nSign up or log in with this address, then open:\n{link}\n\nOr POST {{\"token\": \"{token}\"}} to /api/v1/invitations/accept.\nThe invitation expires in 7 days.\n",
        access.tenant.name,
        role.as_str()
    );
    let message = Email {
        to: email,
        subject: format!("Join {} on Switchboard", access.tenant.name),
        body,
    };
    if let Err(error) = state.mailer.send(message).await {
        tracing::error!(%error, "cannot send the invitation e-mail");
    }
    Ok((StatusCode::CREATED, Json(InvitationView::try_from(row)?)))
}

/// `DELETE /api/v1/tenants/{tenant}/invitations/{id}` (admin).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/invitations/{id}", tag = "members",
    params(("tenant" = String, Path, description = "Tenant slug or id"), ("id" = String, Path, description = "Invitation id")),
    responses((status = 204), (status = 404, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    access: TenantAccess,
    client: ClientInfo,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    access.require(Role::Admin)?;
    let mut tx = state.store.write(&access.scope()).await?;
    if !invitations::revoke(&mut tx, &access.tenant.id, &id, now_ms()).await? {
        return Err(ApiError::not_found("invitation"));
    }
    record(
        &mut tx,
        &access,
        &client,
        "invitation.revoked",
        ("invitation", &id),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/invitations/accept`: the logged-in user whose address was invited joins.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "members", request_body = AcceptRequest,
    responses((status = 200, body = MemberView), (status = 400, body = super::errors::ErrorBody), (status = 403, body = super::errors::ErrorBody)), security(("bearer" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    principal: Principal,
    client: ClientInfo,
    ApiJson(request): ApiJson<AcceptRequest>,
) -> Result<Json<MemberView>, ApiError> {
    let user_id = principal.require_user()?;
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "invitation is invalid, used, revoked or expired",
        )
        .with_field("token")
    };
    let (tenant_id, _) = invitations::parse_token(&request.token).ok_or_else(invalid)?;
    if uuid::Uuid::try_parse(tenant_id).is_err() {
        return Err(invalid());
    }
    let now = now_ms();
    let scope = Scope::tenant(tenant_id).with_user(user_id);
    let mut tx = state.store.write(&scope).await?;
    let invitation = invitations::find_by_token(&mut tx, tenant_id, &request.token, now)
        .await?
        .ok_or_else(invalid)?;
    let user = users::by_id(&mut tx, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if user.email != invitation.email {
        return Err(ApiError::forbidden(
            "this invitation is for another e-mail address",
        ));
    }
    // Otherwise anyone could sign up with the invited address and take the seat.
    if user.email_verified_at.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "email_not_verified",
            "verify your e-mail address before accepting invitations",
        ));
    }
    let role = parse_role(&invitation.role)?;
    if !tenants::add_member(&mut tx, tenant_id, user_id, role, now).await? {
        return Err(ApiError::conflict(
            "already_member",
            "you already belong to this tenant",
        ));
    }
    invitations::mark_accepted(&mut tx, tenant_id, &invitation.id, now).await?;
    let event = crate::store::audit::AuditEvent {
        tenant_id,
        actor_type: "user",
        actor_id: Some(user_id),
        action: "invitation.accepted",
        target_type: Some("invitation"),
        target_id: Some(&invitation.id),
        ip: Some(&client.ip),
        request_id: client.request_id.as_deref(),
        details: json!({"role": role.as_str()}),
    };
    crate::store::audit::record(&mut tx, &event, now).await?;
    tx.commit().await?;
    Ok(Json(MemberView {
        user_id: user.id,
        email: user.email,
        name: user.name,
        role,
        joined_at: rfc3339(now),
    }))
}
