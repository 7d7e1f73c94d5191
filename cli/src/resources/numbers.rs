//! `switchboard numbers`: buy (idempotently), list and release phone numbers.

use clap::Subcommand;

use super::TenantArg;
use crate::client::types::{BuyNumber, Number};
use crate::commands::{CommandError, Context};
use crate::output::{Printer, or_dash, table};

/// Number commands.
#[derive(Subcommand, Debug)]
pub enum NumbersCommand {
    /// Buy a number (a sandbox number on the sandbox carrier).
    Buy {
        /// Area code to search in (the sandbox's is 555).
        #[arg(long)]
        area_code: Option<String>,
        /// An exact number to buy (E.164).
        #[arg(long)]
        number: Option<String>,
        /// The named agent that answers it [default: the default agent].
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// List the tenant's numbers.
    List(TenantArg),
    /// Release a number back to the carrier.
    Release {
        /// The number (E.164).
        e164: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

fn rows(items: &[Number]) -> String {
    table(
        &["NUMBER", "STATUS", "CARRIER", "AGENT", "NAME"],
        &items
            .iter()
            .map(|n| {
                vec![
                    n.e164.clone().unwrap_or_else(|| "(pending)".to_owned()),
                    n.status.clone(),
                    n.carrier.clone(),
                    n.agent.clone().unwrap_or_else(|| "default".to_owned()),
                    or_dash(n.name.as_deref()),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

/// Runs a number command.
pub async fn run(
    command: NumbersCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        NumbersCommand::Buy {
            area_code,
            number,
            agent,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let body = BuyNumber {
                area_code,
                number,
                agent,
                country: None,
            };
            let answer = context.client().buy_number(&tenant, &body).await?;
            out.answer(&answer, |n| {
                format!(
                    "Bought {} for tenant {tenant} ({}).",
                    n.e164.as_deref().unwrap_or("a number"),
                    n.status
                )
            });
        }
        NumbersCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().numbers(&tenant).await?;
            out.answer(&answer, |page| {
                if page.items.is_empty() {
                    format!("Tenant {tenant} has no numbers yet: `switchboard numbers buy`.")
                } else {
                    rows(&page.items)
                }
            });
        }
        NumbersCommand::Release { e164, tenant } => {
            let tenant = tenant.resolve(context)?;
            context.client().release_number(&tenant, &e164).await?;
            out.value(&serde_json::json!({"released": e164}), || {
                format!("Released {e164}.")
            });
        }
    }
    Ok(())
}
