//! `switchboard credentials` (alias `provider-keys`): bring-your-own provider keys, shown
//! masked; the secret is read from standard input or the environment, never a flag.

use std::collections::BTreeMap;

use clap::Subcommand;

use super::TenantArg;
use crate::client::types::{Credential, CredentialPatch, NewCredential};
use crate::commands::{CommandError, Context};
use crate::output::{Printer, table};

/// Provider credential commands.
#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// List the credentials (secrets masked).
    List(TenantArg),
    /// Add a credential. The secret comes from SWITCHBOARD_PROVIDER_SECRET or, with
    /// --secret-stdin, the first line of standard input.
    Add {
        /// Vendor: groq, openai, openai-compatible, deepgram, elevenlabs, twilio, telnyx.
        #[arg(long)]
        provider: String,
        /// Label, unique per vendor (e.g. `production`).
        #[arg(long)]
        label: String,
        /// Read the secret from standard input.
        #[arg(long)]
        secret_stdin: bool,
        /// The secret (prefer --secret-stdin: environment values of other processes can be
        /// read by root only, flags by anyone).
        #[arg(long, env = "SWITCHBOARD_PROVIDER_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Make it the vendor's default.
        #[arg(long)]
        default: bool,
        /// Non-secret setting `key=value` (repeat), e.g. `base_url=https://…`.
        #[arg(long = "meta", value_parser = key_value)]
        metadata: Vec<(String, String)>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Make a credential its vendor's default.
    SetDefault {
        /// Credential id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Try a credential against its vendor.
    Test {
        /// Credential id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Delete a credential.
    Delete {
        /// Credential id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

fn rows(items: &[Credential]) -> String {
    table(
        &["ID", "PROVIDER", "LABEL", "DEFAULT", "SECRET"],
        &items
            .iter()
            .map(|c| {
                vec![
                    c.id.clone(),
                    c.provider.clone(),
                    c.label.clone(),
                    if c.is_default { "yes" } else { "" }.to_owned(),
                    c.masked_secret.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

fn read_secret(stdin: bool, flag: Option<String>) -> Result<String, CommandError> {
    let secret = if stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|source| CommandError::File {
                path: "standard input".into(),
                source,
            })?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        flag.unwrap_or_default()
    };
    if secret.is_empty() {
        return Err(CommandError::Invalid {
            flag: "secret",
            message: "required: SWITCHBOARD_PROVIDER_SECRET or --secret-stdin".to_owned(),
        });
    }
    Ok(secret)
}

/// Runs a credential command.
pub async fn run(
    command: CredentialsCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        CredentialsCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().credentials(&tenant).await?;
            out.answer(&answer, |page| rows(&page.items));
        }
        CredentialsCommand::Add {
            provider,
            label,
            secret_stdin,
            secret,
            default,
            metadata,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let body = NewCredential {
                provider,
                label,
                secret: read_secret(secret_stdin, secret)?,
                is_default: default.then_some(true),
                metadata: (!metadata.is_empty())
                    .then(|| metadata.into_iter().collect::<BTreeMap<_, _>>()),
            };
            let answer = context.client().create_credential(&tenant, &body).await?;
            out.answer(&answer, |c| {
                format!(
                    "Added credential {}.\n{}",
                    c.id,
                    rows(std::slice::from_ref(c))
                )
            });
        }
        CredentialsCommand::SetDefault { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            let patch = CredentialPatch {
                is_default: Some(true),
                ..CredentialPatch::default()
            };
            let answer = context
                .client()
                .update_credential(&tenant, &id, &patch)
                .await?;
            out.answer(&answer, |c| {
                format!("{} is now the default {} credential.", c.label, c.provider)
            });
        }
        CredentialsCommand::Test { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            let answer = context.client().test_credential(&tenant, &id).await?;
            out.answer(&answer, |r| {
                let status = r
                    .vendor_status
                    .map(|s| format!(" (vendor HTTP {s})"))
                    .unwrap_or_default();
                format!("{}{status}: {}", r.result, r.message)
            });
        }
        CredentialsCommand::Delete { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            context.client().delete_credential(&tenant, &id).await?;
            out.value(&serde_json::json!({"deleted": id}), || {
                format!("Credential {id} deleted.")
            });
        }
    }
    Ok(())
}
