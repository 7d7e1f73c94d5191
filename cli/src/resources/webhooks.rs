//! `switchboard webhooks`: customer webhook endpoints and their deliveries.

use clap::Subcommand;
use serde_json::json;

use super::TenantArg;
use crate::client::types::{Delivery, EndpointPatch, NewEndpoint, RotateSecret, WebhookEndpoint};
use crate::commands::{CommandError, Context};
use crate::output::{Printer, or_dash, table};

/// Webhook commands.
#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// List the endpoints.
    List(TenantArg),
    /// Register an endpoint; prints its signing secret once.
    Create {
        /// Endpoint URL (`--url` is the gateway's).
        #[arg(long)]
        endpoint_url: String,
        /// Event type to subscribe to (repeat; all when absent).
        #[arg(long = "event")]
        events: Vec<String>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Change an endpoint's URL, events or enabled state.
    Update {
        /// Endpoint id.
        id: String,
        /// New endpoint URL.
        #[arg(long)]
        endpoint_url: Option<String>,
        /// New event types (repeat).
        #[arg(long = "event")]
        events: Vec<String>,
        /// Enable (true) or disable (false) deliveries.
        #[arg(long)]
        enabled: Option<bool>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// A new signing secret (printed once); the old one signs too for the grace period.
    RotateSecret {
        /// Endpoint id.
        id: String,
        /// Hours the old secret keeps signing (default 24, at most 168; 0 ends it at once).
        #[arg(long)]
        grace_hours: Option<u32>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Send a `webhook.test` message to an endpoint.
    Test {
        /// Endpoint id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Recent deliveries (one page).
    Deliveries(TenantArg),
    /// Deliver a message again, with its message id.
    Resend {
        /// Message id (from `webhooks deliveries`).
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Remove an endpoint.
    Delete {
        /// Endpoint id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

fn endpoint_rows(items: &[WebhookEndpoint]) -> String {
    table(
        &["ID", "URL", "EVENTS", "STATE"],
        &items
            .iter()
            .map(|e| {
                vec![
                    e.id.clone(),
                    e.url.clone(),
                    e.events.join(","),
                    if e.enabled { "enabled" } else { "disabled" }.to_owned(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

fn endpoint_text(endpoint: &WebhookEndpoint) -> String {
    let mut text = endpoint_rows(std::slice::from_ref(endpoint));
    if let Some(secret) = &endpoint.secret {
        text.push_str(&format!("\nsigning secret (shown once): {secret}"));
    }
    if let Some(until) = &endpoint.previous_secret_expires_at {
        text.push_str(&format!("\nthe previous secret signs too until {until}"));
    }
    text
}

fn delivery_rows(items: &[Delivery]) -> String {
    table(
        &["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST ERROR"],
        &items
            .iter()
            .map(|d| {
                vec![
                    d.id.clone(),
                    d.event_type.clone(),
                    d.status.clone(),
                    d.attempts.to_string(),
                    or_dash(d.last_error.as_deref()),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

/// Runs a webhook command.
pub async fn run(
    command: WebhooksCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        WebhooksCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().webhooks(&tenant).await?;
            out.answer(&answer, |page| endpoint_rows(&page.items));
        }
        WebhooksCommand::Create {
            endpoint_url,
            events,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let body = NewEndpoint {
                url: endpoint_url,
                events: (!events.is_empty()).then_some(events),
            };
            let answer = context.client().create_webhook(&tenant, &body).await?;
            out.answer(&answer, endpoint_text);
        }
        WebhooksCommand::Update {
            id,
            endpoint_url,
            events,
            enabled,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let body = EndpointPatch {
                url: endpoint_url,
                events: (!events.is_empty()).then_some(events),
                enabled,
            };
            let answer = context.client().update_webhook(&tenant, &id, &body).await?;
            out.answer(&answer, endpoint_text);
        }
        WebhooksCommand::RotateSecret {
            id,
            grace_hours,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let body = RotateSecret {
                grace_period_hours: grace_hours,
            };
            let answer = context
                .client()
                .rotate_webhook_secret(&tenant, &id, &body)
                .await?;
            out.answer(&answer, endpoint_text);
        }
        WebhooksCommand::Test { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            let answer = context.client().test_webhook(&tenant, &id).await?;
            out.answer(&answer, |m| format!("Queued test message {}.", m.id));
        }
        WebhooksCommand::Deliveries(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().deliveries(&tenant).await?;
            out.answer(&answer, |page| delivery_rows(&page.items));
        }
        WebhooksCommand::Resend { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            let answer = context.client().resend(&tenant, &id).await?;
            out.answer(&answer, |m| {
                format!("Message {} will be delivered again.", m.id)
            });
        }
        WebhooksCommand::Delete { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            context.client().delete_webhook(&tenant, &id).await?;
            out.value(&json!({"deleted": id}), || {
                format!("Endpoint {id} removed.")
            });
        }
    }
    Ok(())
}
