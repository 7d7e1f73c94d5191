//! `switchboard agents`: the tenant's named agents and its default agent.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value};
use switchboard_crds::agents::NamedAgent;

use super::{TenantArg, read_object};
use crate::commands::{CommandError, Context};
use crate::output::{Printer, table};

/// Agent commands.
#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// List the agents (the default agent first).
    List(TenantArg),
    /// Show one agent's configuration.
    Get {
        /// Agent name (`default` for the default agent).
        name: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Create a named agent; unset fields take their defaults.
    Create {
        /// Agent name (a DNS label other than `default`).
        name: String,
        #[command(flatten)]
        fields: AgentFields,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Change an agent's fields.
    Update {
        /// Agent name.
        name: String,
        #[command(flatten)]
        fields: AgentFields,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Delete a named agent (refused while a number or campaign uses it).
    Delete {
        /// Agent name.
        name: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

/// The agent fields a command line sets; `--file` gives any others (camelCase JSON, as in
/// `Tenant.spec.agent`).
#[derive(Args, Debug)]
pub struct AgentFields {
    /// What the agent says first.
    #[arg(long)]
    greeting: Option<String>,
    /// The system prompt.
    #[arg(long)]
    system_prompt: Option<String>,
    /// Language (BCP 47), e.g. `en-US`.
    #[arg(long)]
    language: Option<String>,
    /// A JSON object of agent fields; the flags above override it.
    #[arg(long)]
    file: Option<PathBuf>,
}

impl AgentFields {
    fn into_map(self) -> Result<Map<String, Value>, CommandError> {
        let mut map = match &self.file {
            Some(path) => read_object(path, "--file")?,
            None => Map::new(),
        };
        for (key, value) in [
            ("greeting", self.greeting),
            ("systemPrompt", self.system_prompt),
            ("language", self.language),
        ] {
            if let Some(value) = value {
                map.insert(key.to_owned(), Value::String(value));
            }
        }
        Ok(map)
    }
}

fn rows(agents: &[NamedAgent]) -> String {
    table(
        &["NAME", "LANGUAGE", "GREETING"],
        &agents
            .iter()
            .map(|a| {
                vec![
                    a.name.clone(),
                    a.spec.language.clone(),
                    a.spec.greeting.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

fn detail(agent: &NamedAgent) -> String {
    format!(
        "name:          {}\nlanguage:      {}\ngreeting:      {}\nsystem prompt: {}\nmax call:      {} s",
        agent.name,
        agent.spec.language,
        agent.spec.greeting,
        agent.spec.system_prompt,
        agent.spec.max_call_seconds
    )
}

/// Runs an agent command.
pub async fn run(
    command: AgentsCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        AgentsCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().agents(&tenant).await?;
            out.answer(&answer, |page| rows(&page.items));
        }
        AgentsCommand::Get { name, tenant } => {
            let tenant = tenant.resolve(context)?;
            let answer = context.client().agent(&tenant, &name).await?;
            out.answer(&answer, detail);
        }
        AgentsCommand::Create {
            name,
            fields,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let fields = fields.into_map()?;
            let answer = context
                .client()
                .create_agent(&tenant, &name, fields)
                .await?;
            out.answer(&answer, |a| {
                format!("Created agent {}.\n{}", a.name, detail(a))
            });
        }
        AgentsCommand::Update {
            name,
            fields,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let fields = fields.into_map()?;
            if fields.is_empty() {
                return Err(CommandError::Invalid {
                    flag: "update",
                    message:
                        "nothing to change: give --greeting, --system-prompt, --language or --file"
                            .to_owned(),
                });
            }
            let answer = context
                .client()
                .update_agent(&tenant, &name, fields)
                .await?;
            out.answer(&answer, |a| {
                format!("Updated agent {}.\n{}", a.name, detail(a))
            });
        }
        AgentsCommand::Delete { name, tenant } => {
            let tenant = tenant.resolve(context)?;
            context.client().delete_agent(&tenant, &name).await?;
            out.value(&serde_json::json!({"deleted": name}), || {
                format!("Agent {name} deleted.")
            });
        }
    }
    Ok(())
}
