//! `switchboard calls` (records and transcripts) and `switchboard usage`.

use clap::Subcommand;

use super::TenantArg;
use crate::client::types::{Call, Turn, UsageReply};
use crate::commands::{CommandError, Context};
use crate::output::{Printer, or_dash, table};

/// Call record commands.
#[derive(Subcommand, Debug)]
pub enum CallsCommand {
    /// The newest calls.
    List {
        /// How many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// One call with its transcript.
    Get {
        /// Call id.
        id: String,
        #[command(flatten)]
        tenant: TenantArg,
    },
}

fn rows(items: &[Call]) -> String {
    table(
        &[
            "STARTED",
            "DIRECTION",
            "FROM",
            "TO",
            "OUTCOME",
            "DURATION",
            "ID",
        ],
        &items
            .iter()
            .map(|c| {
                vec![
                    or_dash(c.started_at.as_deref()),
                    c.direction.clone(),
                    or_dash(c.from.as_deref()),
                    or_dash(c.to.as_deref()),
                    c.outcome.clone().unwrap_or_else(|| c.status.clone()),
                    c.duration_seconds
                        .map_or_else(|| "-".to_owned(), |s| format!("{s}s")),
                    c.id.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

fn call_text(call: &Call, turns: &[Turn]) -> String {
    let mut text = rows(std::slice::from_ref(call));
    if let Some(campaign) = &call.campaign {
        text.push_str(&format!("\ncampaign: {campaign}"));
    }
    if turns.is_empty() {
        text.push_str("\n(no transcript)");
    } else {
        text.push_str("\ntranscript:");
        for turn in turns {
            text.push_str(&format!(
                "\n  {:>7.1}s {}: {}",
                turn.offset_ms as f64 / 1000.0,
                turn.role,
                turn.text
            ));
        }
    }
    text
}

/// Runs a call command.
pub async fn run(
    command: CallsCommand,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    match command {
        CallsCommand::List { limit, tenant } => {
            let tenant = tenant.resolve(context)?;
            let answer = context.client().calls(&tenant, limit).await?;
            out.answer(&answer, |page| {
                if page.items.is_empty() {
                    format!("Tenant {tenant} has no calls yet.")
                } else {
                    rows(&page.items)
                }
            });
        }
        CallsCommand::Get { id, tenant } => {
            let tenant = tenant.resolve(context)?;
            let call = context.client().call_record(&tenant, &id).await?;
            let turns = context.client().transcript(&tenant, &id).await?;
            let mut body = call.json.clone();
            body["turns"] = turns.json["items"].clone();
            out.value(&body, || call_text(&call.value, &turns.value.items));
        }
    }
    Ok(())
}

/// `switchboard usage`.
pub async fn usage(
    tenant: TenantArg,
    context: &mut Context,
    out: Printer,
) -> Result<(), CommandError> {
    let tenant = tenant.resolve(context)?;
    let answer = context.client().usage(&tenant).await?;
    out.answer(&answer, |u| usage_text(u, &tenant));
    Ok(())
}

fn usage_text(usage: &UsageReply, tenant: &str) -> String {
    let against = |count: i64, limit: Option<u64>| match limit {
        Some(limit) => format!("{count}/{limit}"),
        None => format!("{count} (unlimited)"),
    };
    let used = &usage.usage;
    format!(
        "Usage of {tenant} in {} (plan {}): calls {}, minutes {}, API requests {}, STT {:.1} min, TTS {} characters",
        usage.period,
        usage.plan,
        against(used.call_count, usage.limits.monthly_calls),
        against(used.call_minutes, usage.limits.monthly_minutes),
        against(used.api_requests, usage.limits.monthly_api_requests),
        used.stt_minutes,
        used.tts_characters,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_shows_its_transcript_in_order() {
        let call: Call = serde_json::from_value(json!({"id": "c1", "direction": "inbound",
            "from": "+1555", "to": "+1666", "status": "completed", "outcome": "answered",
            "startedAt": "2026-01-01T00:00:00Z", "durationSeconds": 7}))
        .unwrap();
        let turns: Vec<Turn> = serde_json::from_value(json!([
            {"role": "agent", "text": "Hello", "offsetMs": 500},
            {"role": "caller", "text": "Hi", "offsetMs": 1500}]))
        .unwrap();
        let text = call_text(&call, &turns);
        assert!(text.contains("answered"), "{text}");
        assert!(
            text.ends_with("transcript:\n      0.5s agent: Hello\n      1.5s caller: Hi"),
            "{text}"
        );
    }
}
