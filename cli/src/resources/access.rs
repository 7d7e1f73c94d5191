//! `switchboard api-keys`, `members` and `invitations`: who and what can use a tenant.

use clap::Subcommand;
use serde_json::json;

use super::TenantArg;
use crate::client::types::{ApiKey, Invitation, Member, NewApiKey, NewInvitation, RoleChange};
use crate::commands::{CommandError, Context};
use crate::output::{Printer, or_dash, table};

/// API key commands.
#[derive(Subcommand, Debug)]
pub enum ApiKeysCommand {
    /// Create a key; the key is printed this once.
    Create {
        /// A label, e.g. `CRM integration`.
        #[arg(long)]
        name: String,
        /// Scope: read, write or admin (repeat) [default: read].
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// List the keys (never the keys themselves).
    List(TenantArg),
    /// Revoke a key.
    Revoke {
        /// Key id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

/// Member commands.
#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// List the members.
    List(TenantArg),
    /// Change a member's role.
    Role {
        /// User id or e-mail address.
        member: String,
        /// owner, admin, member or viewer.
        role: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Remove a member.
    Remove {
        /// User id or e-mail address.
        member: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

/// Invitation commands.
#[derive(Subcommand, Debug)]
pub enum InvitationsCommand {
    /// Invite someone by e-mail.
    Create {
        /// Their e-mail address.
        #[arg(long)]
        email: String,
        /// Their role [default: member].
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// List pending invitations.
    List(TenantArg),
    /// Revoke an invitation.
    Revoke {
        /// Invitation id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

fn key_rows(items: &[ApiKey]) -> String {
    table(
        &["ID", "NAME", "PREFIX", "SCOPES", "LAST USED", "REVOKED"],
        &items
            .iter()
            .map(|k| {
                vec![
                    k.id.clone(),
                    k.name.clone(),
                    k.prefix.clone(),
                    k.scopes.join(","),
                    or_dash(k.last_used_at.as_deref()),
                    or_dash(k.revoked_at.as_deref()),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

fn member_rows(items: &[Member]) -> String {
    table(
        &["USER ID", "EMAIL", "ROLE", "NAME"],
        &items
            .iter()
            .map(|m| {
                vec![
                    m.user_id.clone(),
                    m.email.clone(),
                    m.role.clone(),
                    m.name.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

fn invitation_rows(items: &[Invitation]) -> String {
    table(
        &["ID", "EMAIL", "ROLE", "EXPIRES"],
        &items
            .iter()
            .map(|i| {
                vec![
                    i.id.clone(),
                    i.email.clone(),
                    i.role.clone(),
                    i.expires_at.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

/// A member's user id: given, or looked up by e-mail address among the members.
async fn user_id(
    context: &mut Context,
    tenant: &str,
    member: &str,
) -> Result<String, CommandError> {
    if !member.contains('@') {
        return Ok(member.to_owned());
    }
    let members = context.client().members(tenant).await?;
    members
        .value
        .items
        .into_iter()
        .find(|m| m.email.eq_ignore_ascii_case(member))
        .map(|m| m.user_id)
        .ok_or_else(|| CommandError::Invalid {
            flag: "member",
            message: format!("{member} is not a member of {tenant}"),
        })
}

/// Runs an API key command.
pub async fn api_keys(
    command: ApiKeysCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        ApiKeysCommand::Create {
            name,
            scopes,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let body = NewApiKey {
                name,
                scopes: (!scopes.is_empty()).then_some(scopes),
            };
            let answer = context.client().create_api_key(&tenant, &body).await?;
            out.answer(&answer, |created| {
                format!(
                    "Created API key {} ({}).\nkey (shown once, store it now): {}",
                    created.api_key.id,
                    created.api_key.scopes.join(","),
                    created.key
                )
            });
        }
        ApiKeysCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().api_keys(&tenant).await?;
            out.answer(&answer, |page| key_rows(&page.items));
        }
        ApiKeysCommand::Revoke { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            context.client().revoke_api_key(&tenant, &id).await?;
            out.value(&json!({"revoked": id}), || format!("API key {id} revoked."));
        }
    }
    Ok(())
}

/// Runs a member command.
pub async fn members(
    command: MembersCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        MembersCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().members(&tenant).await?;
            out.answer(&answer, |page| member_rows(&page.items));
        }
        MembersCommand::Role {
            member,
            role,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let id = user_id(context, &tenant, &member).await?;
            let answer = context
                .client()
                .change_role(&tenant, &id, &RoleChange { role })
                .await?;
            out.answer(&answer, |m| format!("{} is now {}.", m.email, m.role));
        }
        MembersCommand::Remove { member, tenant } => {
            let tenant = tenant.resolve(context)?;
            let id = user_id(context, &tenant, &member).await?;
            context.client().remove_member(&tenant, &id).await?;
            out.value(&json!({"removed": id}), || {
                format!("{member} removed from {tenant}.")
            });
        }
    }
    Ok(())
}

/// Runs an invitation command.
pub async fn invitations(
    command: InvitationsCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        InvitationsCommand::Create {
            email,
            role,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let answer = context
                .client()
                .invite(&tenant, &NewInvitation { email, role })
                .await?;
            out.answer(&answer, |i| {
                format!("Invited {} as {} (invitation {}).", i.email, i.role, i.id)
            });
        }
        InvitationsCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().invitations(&tenant).await?;
            out.answer(&answer, |page| invitation_rows(&page.items));
        }
        InvitationsCommand::Revoke { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            context.client().revoke_invitation(&tenant, &id).await?;
            out.value(&json!({"revoked": id}), || {
                format!("Invitation {id} revoked.")
            });
        }
    }
    Ok(())
}
