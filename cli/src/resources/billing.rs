//! `switchboard billing`: Stripe Checkout and Billing Portal links, and the subscription.

use clap::Subcommand;

use super::TenantArg;
use crate::client::types::{CheckoutRequest, PortalRequest};
use crate::commands::{CommandError, Context};
use crate::output::Printer;

/// Billing commands.
#[derive(Subcommand, Debug)]
pub enum BillingCommand {
    /// A Stripe Checkout link to subscribe to a plan.
    Checkout {
        /// Plan: starter, professional or enterprise.
        #[arg(long)]
        plan: String,
        /// Where Stripe returns after payment.
        #[arg(long)]
        success_url: Option<String>,
        /// Where Stripe returns when cancelled.
        #[arg(long)]
        cancel_url: Option<String>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// A Stripe Billing Portal link (invoices, payment method, cancellation).
    Portal {
        /// Where the portal returns to.
        #[arg(long)]
        return_url: Option<String>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// The plan and the subscription's status.
    Status(TenantArg),
}

/// Runs a billing command.
pub async fn run(
    command: BillingCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        BillingCommand::Checkout {
            plan,
            success_url,
            cancel_url,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let body = CheckoutRequest {
                plan,
                success_url,
                cancel_url,
            };
            let answer = context.client().checkout(&tenant, &body).await?;
            out.answer(&answer, |s| format!("Open to subscribe: {}", s.url));
        }
        BillingCommand::Portal { return_url, tenant } => {
            let tenant = tenant.resolve(context)?;
            let answer = context
                .client()
                .portal(&tenant, &PortalRequest { return_url })
                .await?;
            out.answer(&answer, |s| format!("Open to manage billing: {}", s.url));
        }
        BillingCommand::Status(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().billing_status(&tenant).await?;
            out.answer(&answer, |s| {
                let subscription = s
                    .subscription
                    .as_ref()
                    .and_then(|sub| sub.subscription_status.as_deref())
                    .unwrap_or("no subscription");
                format!("Plan {} ({subscription}).", s.plan)
            });
        }
    }
    Ok(())
}
