//! `switchboard campaigns`: create (or change, pause, resume), upload contacts, progress,
//! results and stop.
//!
//! The API creates and changes a campaign with `PUT` of its whole spec and has no partial
//! update, so `pause` and `resume` send the spec again (the same flags or `--spec`) with
//! `suspend` set or cleared.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use switchboard_crds::CampaignSpec;
use switchboard_crds::internal_api::Progress;

use super::{TenantArg, read_input, read_object};
use crate::client::types::{CampaignSummary, UploadResult};
use crate::commands::{CommandError, Context};
use crate::output::{Printer, or_dash, table};

/// Largest contacts CSV the CLI sends (the gateway's own limit is checked there).
const CSV_LIMIT: u64 = 16 * 1024 * 1024;

/// Campaign commands.
#[derive(Subcommand, Debug)]
pub enum CampaignsCommand {
    /// List the campaigns (every page).
    List(TenantArg),
    /// Create or change a campaign (contacts are uploaded with `campaigns upload`).
    Create {
        /// Campaign name.
        name: String,
        #[command(flatten)]
        spec: SpecArgs,
        /// Create it paused.
        #[arg(long)]
        suspend: bool,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Pause: send the spec again with `suspend: true` (calls under way finish).
    Pause {
        /// Campaign name.
        name: String,
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Resume: send the spec again with `suspend: false`.
    Resume {
        /// Campaign name.
        name: String,
        #[command(flatten)]
        spec: SpecArgs,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Upload contacts from a CSV file (`-`: standard input) with a `phone` column; rows the
    /// gateway refuses are listed with their reason.
    Upload {
        /// Campaign name.
        name: String,
        /// The CSV file.
        file: PathBuf,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// The campaign's progress.
    Progress {
        /// Campaign name.
        name: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Download the results as CSV (to --out or standard output).
    Results {
        /// Campaign name.
        name: String,
        /// File to write [default: standard output].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Stop dialling for good (calls under way finish).
    Stop {
        /// Campaign name.
        name: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

/// The campaign spec: `--spec FILE` (JSON, as `Campaign.spec`) or the common fields as flags.
#[derive(Args, Debug)]
pub struct SpecArgs {
    /// The whole spec as a JSON file; the flags below override its fields.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// The number calls are placed from (its name, or E.164 in standalone mode).
    #[arg(long)]
    from_number: Option<String>,
    /// The tenant's named agent that talks.
    #[arg(long)]
    agent: Option<String>,
    /// Calls placed per minute at most.
    #[arg(long)]
    calls_per_minute: Option<u32>,
    /// Calls at once at most.
    #[arg(long)]
    max_concurrent: Option<u32>,
}

impl SpecArgs {
    /// The spec these flags describe, with `suspend`. Contacts default to uploaded ones.
    fn build(&self, suspend: bool) -> Result<CampaignSpec, CommandError> {
        let mut spec = match &self.spec {
            Some(path) => read_object(path, "--spec")?,
            None => serde_json::Map::new(),
        };
        if let Some(from) = &self.from_number {
            spec.insert("fromNumber".into(), json!(from));
        }
        if !spec.contains_key("contacts") {
            spec.insert("contacts".into(), json!({"uploaded": true}));
        }
        if let Some(agent) = &self.agent {
            let entry = spec.entry("agent").or_insert_with(|| json!({}));
            if let Some(object) = entry.as_object_mut() {
                object.insert("name".into(), json!(agent));
            }
        }
        for (key, value) in [
            ("callsPerMinute", self.calls_per_minute),
            ("maxConcurrent", self.max_concurrent),
        ] {
            if let Some(value) = value {
                let entry = spec.entry("pacing").or_insert_with(|| json!({}));
                if let Some(object) = entry.as_object_mut() {
                    object.insert(key.into(), json!(value));
                }
            }
        }
        spec.insert("suspend".into(), json!(suspend));
        if !spec.contains_key("fromNumber") {
            return Err(CommandError::Invalid {
                flag: "--from-number",
                message: "required (or `fromNumber` in --spec)".to_owned(),
            });
        }
        serde_json::from_value(Value::Object(spec)).map_err(|e| CommandError::Invalid {
            flag: "--spec",
            message: format!("not a campaign spec: {e}"),
        })
    }
}

fn rows(items: &[CampaignSummary]) -> String {
    table(
        &["NAME", "PHASE", "FROM", "REASON"],
        &items
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.phase.clone(),
                    c.from_number.clone(),
                    or_dash(c.reason.as_deref()),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

fn progress_text(name: &str, p: &Progress) -> String {
    let mut text = format!(
        "{name}: {:?}, {} contacts: {} pending, {} in progress, {} completed, {} failed, {} no answer",
        p.phase, p.total, p.pending, p.in_progress, p.completed, p.failed, p.no_answer
    );
    if let Some(reason) = &p.reason {
        text.push_str(&format!("\nholding: {reason}"));
    }
    text
}

fn upload_text(result: &UploadResult) -> String {
    let mut text = format!(
        "{} contact(s) stored, {} refused; the campaign has {} contact(s).",
        result.accepted,
        result.rejected.len(),
        result.total
    );
    if !result.rejected.is_empty() {
        text.push('\n');
        text.push_str(&table(
            &["ROW", "ERROR"],
            &result
                .rejected
                .iter()
                .map(|r| vec![r.row.to_string(), r.error.clone()])
                .collect::<Vec<_>>(),
        ));
    }
    text
}

/// Runs a campaign command.
pub async fn run(
    command: CampaignsCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        CampaignsCommand::List(t) => {
            let tenant = t.resolve(context)?;
            let answer = context.client().campaigns(&tenant).await?;
            out.answer(&answer, |page| rows(&page.items));
        }
        CampaignsCommand::Create {
            name,
            spec,
            suspend,
            tenant,
        } => apply(context, out, &tenant, &name, &spec, suspend, "created").await?,
        CampaignsCommand::Pause { name, spec, tenant } => {
            apply(context, out, &tenant, &name, &spec, true, "paused").await?;
        }
        CampaignsCommand::Resume { name, spec, tenant } => {
            apply(context, out, &tenant, &name, &spec, false, "resumed").await?;
        }
        CampaignsCommand::Upload { name, file, tenant } => {
            let tenant = tenant.resolve(context)?;
            let csv = read_input(&file, CSV_LIMIT)?;
            let answer = context
                .client()
                .upload_contacts(&tenant, &name, csv)
                .await?;
            out.answer(&answer, upload_text);
        }
        CampaignsCommand::Progress { name, tenant } => {
            let tenant = tenant.resolve(context)?;
            let answer = context.client().campaign(&tenant, &name).await?;
            out.answer(&answer, |p| progress_text(&name, p));
        }
        CampaignsCommand::Results {
            name,
            out: file,
            tenant,
        } => {
            let tenant = tenant.resolve(context)?;
            let csv = context
                .client()
                .campaign_results_csv(&tenant, &name)
                .await?;
            match file {
                Some(path) => {
                    std::fs::write(&path, &csv).map_err(|source| CommandError::File {
                        path: path.clone(),
                        source,
                    })?;
                    out.value(
                        &json!({"written": path.display().to_string(), "bytes": csv.len()}),
                        || format!("Wrote {} ({} bytes).", path.display(), csv.len()),
                    );
                }
                // CSV is the output asked for, with or without --json.
                None => print!("{}", String::from_utf8_lossy(&csv)),
            }
        }
        CampaignsCommand::Stop { name, tenant } => {
            let tenant = tenant.resolve(context)?;
            context.client().stop_campaign(&tenant, &name).await?;
            out.value(&json!({"stopped": name}), || {
                format!("Campaign {name} stopped.")
            });
        }
    }
    Ok(())
}

async fn apply(
    context: &mut Context,
    out: Printer,
    tenant: &TenantArg,
    name: &str,
    spec: &SpecArgs,
    suspend: bool,
    done: &str,
) -> Result<(), CommandError> {
    let tenant = tenant.resolve(context)?;
    let spec = spec.build(suspend)?;
    let answer = context.client().put_campaign(&tenant, name, &spec).await?;
    out.answer(&answer, |progress| {
        format!("Campaign {name} {done} ({:?}).", progress.phase)
    });
    Ok(())
}
