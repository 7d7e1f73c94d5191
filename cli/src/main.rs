//! `switchboard`: the command-line client for people and scripts.
//!
//! Exit status: 0 success, 1 failure, 2 bad usage, 3 the gateway refused a simulated call.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;
use switchboard_cli::call::{self, CallError, CallOptions, CallReport, TranscriptLine};
use switchboard_cli::client::types::{Me, Membership};
use switchboard_cli::commands::{CommandError, Context};
use switchboard_cli::output::Printer;
use switchboard_cli::progress::Progress;
use switchboard_cli::resources::{
    self, TenantArg, access::ApiKeysCommand, access::InvitationsCommand, access::MembersCommand,
    agents::AgentsCommand, billing::BillingCommand, calls::CallsCommand,
    campaigns::CampaignsCommand, credentials::CredentialsCommand, numbers::NumbersCommand,
    webhooks::WebhooksCommand,
};
use switchboard_cli::session::SessionStore;
use switchboard_cli::webhook::{WebhookError, WebhookTarget};
use switchboard_cli::{api::ApiError, audio};

/// Gateway used when neither --url, SWITCHBOARD_URL nor a stored session names one.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Exit status of a refused call.
const EXIT_REFUSED: u8 = 3;

/// Switchboard from the command line: accounts, tenants, numbers and simulated calls.
#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about,
    after_help = "Exit status: 0 success, 1 failure, 2 bad usage, 3 call refused by the gateway."
)]
struct Cli {
    /// Gateway base URL [default: the logged-in gateway, else http://127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_URL", global = true)]
    url: Option<String>,

    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Session file [default: $XDG_CONFIG_HOME/switchboard/session.json].
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true)]
    config: Option<PathBuf>,

    /// Authenticate tenant commands with this API key instead of the login session (prefer
    /// the environment variable: flags show up in `ps`).
    #[arg(
        long,
        env = "SWITCHBOARD_API_KEY",
        hide_env_values = true,
        global = true
    )]
    api_key: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an account and its tenant, and log in.
    Signup(SignupArgs),
    /// Log in and remember the session.
    Login(LoginArgs),
    /// End the session on the gateway and forget it.
    Logout,
    /// Show the logged-in user and their tenants.
    Whoami,
    /// Tenants you belong to.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Phone numbers of a tenant: buy, list, release.
    #[command(subcommand)]
    Numbers(NumbersCommand),
    /// Named agents of a tenant.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Bring-your-own provider credentials (LLM, speech, carrier keys).
    #[command(subcommand, alias = "provider-keys")]
    Credentials(CredentialsCommand),
    /// Outbound campaigns: create, upload contacts, progress, results, pause, stop.
    #[command(subcommand)]
    Campaigns(CampaignsCommand),
    /// Call records and transcripts.
    #[command(subcommand)]
    Calls(CallsCommand),
    /// Customer webhook endpoints of a tenant and their deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Customer API keys of a tenant.
    #[command(subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Members of a tenant and their roles.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Invitations to a tenant.
    #[command(subcommand)]
    Invitations(InvitationsCommand),
    /// Billing: Stripe Checkout and Portal links, subscription status.
    #[command(subcommand)]
    Billing(BillingCommand),
    /// This month's usage of a tenant against its plan's limits.
    Usage(TenantArg),
    /// Simulate a carrier calling a number: signed webhook, media stream, WAV in and out.
    Call(Box<CallArgs>),
    /// Print a shell completion script (e.g. `switchboard completions bash >
    /// /etc/bash_completion.d/switchboard`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
struct PasswordArgs {
    /// Password (prefer SWITCHBOARD_PASSWORD or --password-stdin: flags show up in `ps`).
    #[arg(long, env = "SWITCHBOARD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
}

impl PasswordArgs {
    fn resolve(&self) -> anyhow::Result<String> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
        }
        self.password
            .clone()
            .context("a password is required: --password, SWITCHBOARD_PASSWORD or --password-stdin")
    }
}

#[derive(Args, Debug)]
struct SignupArgs {
    /// E-mail address (your login).
    #[arg(long)]
    email: String,
    #[command(flatten)]
    password: PasswordArgs,
    /// Your name.
    #[arg(long)]
    name: String,
    /// Company name; its slug names your tenant.
    #[arg(long)]
    company: String,
}

#[derive(Args, Debug)]
struct LoginArgs {
    /// E-mail address.
    #[arg(long)]
    email: String,
    #[command(flatten)]
    password: PasswordArgs,
    /// Tenant to use by default [default: your first].
    #[arg(long)]
    tenant: Option<String>,
}

#[derive(Subcommand, Debug)]
enum TenantsCommand {
    /// List your tenants.
    List,
    /// Make a tenant the default for tenant-scoped commands.
    Use {
        /// Tenant slug.
        slug: String,
    },
}

/// Carriers `call` can simulate.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SimulatedCarrier {
    /// Twilio voice webhook + Media Streams (also what the sandbox carrier uses).
    Twilio,
}

#[derive(Args, Debug)]
struct CallArgs {
    /// Number to call (E.164), e.g. a sandbox number from `numbers buy`.
    #[arg(long)]
    to: String,
    /// Caller number (E.164).
    #[arg(long, default_value = "+15551234567")]
    from: String,
    /// WAV file the caller says (any rate, first channel used). Without it the caller says
    /// 1.5 s of a generated speech-like signal.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Where to save what the agent said (8 kHz 16-bit mono WAV).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Carrier protocol to speak.
    #[arg(long, value_enum, default_value = "twilio")]
    carrier: SimulatedCarrier,
    /// Auth token the webhook is signed with [default: the sandbox carrier's].
    #[arg(long, env = "SWITCHBOARD_SANDBOX_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// AccountSid to present [default: random AC…].
    #[arg(long)]
    account_sid: Option<String>,
    /// The gateway's public URL, which the signature covers, when it differs from --url.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Open the media stream here instead of the URL in the TwiML.
    #[arg(long)]
    media_url: Option<String>,
    /// Silence appended after the audio so the agent's end-of-turn detection fires.
    #[arg(long, default_value_t = 1.0, value_parser = seconds_arg)]
    say_silence_seconds: f64,
    /// Hang up once the agent has been quiet this long after your audio.
    #[arg(long, default_value_t = 3.0, value_parser = seconds_arg)]
    idle_seconds: f64,
    /// Hang up after this long in any case.
    #[arg(long, default_value_t = 120.0, value_parser = seconds_arg)]
    max_seconds: f64,
    /// Do not send the `completed` status callback after the call.
    #[arg(long)]
    no_status_callback: bool,
    /// Do not read the call's transcript from the gateway afterwards (read only when logged
    /// in to this gateway as a member of the tenant).
    #[arg(long)]
    no_transcript: bool,
}

/// How long to wait for the runtime's transcript events to reach the gateway.
const TRANSCRIPT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Reads the call's transcript from the gateway's call record, waiting briefly because the
/// runtime reports turns asynchronously. Only with a session for this gateway; problems
/// become warnings, never a failed call.
async fn fetch_transcript(context: &mut Context, report: &mut CallReport, progress: &Progress) {
    let (Some(tenant), Some(call_id)) = (report.tenant.clone(), report.gateway_call_id.clone())
    else {
        return;
    };
    if context.session().is_none() {
        return;
    }
    progress.start_spinner("reading the transcript from the gateway");
    let deadline = tokio::time::Instant::now() + TRANSCRIPT_WAIT;
    loop {
        match context.client().transcript(&tenant, &call_id).await {
            Ok(answer) => {
                let turns: Vec<TranscriptLine> = answer
                    .value
                    .items
                    .into_iter()
                    .map(|turn| TranscriptLine {
                        at_ms: u64::try_from(turn.offset_ms).unwrap_or(0),
                        role: Some(turn.role),
                        text: turn.text,
                    })
                    .collect();
                if !turns.is_empty() {
                    report.transcript = turns;
                    return;
                }
            }
            Err(error) => {
                report
                    .warnings
                    .push(format!("cannot read the transcript: {error}"));
                return;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Longest duration a flag accepts: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// A number of seconds between 0 and a day (rejects NaN, infinities and negatives, which
/// durations cannot hold).
fn seconds_arg(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=MAX_SECONDS).contains(&value) {
        Ok(value)
    } else {
        Err(format!("expected seconds between 0 and {MAX_SECONDS}"))
    }
}

/// How a run ended, for the exit status.
enum Outcome {
    Done,
    Refused,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(EXIT_REFUSED),
        Err(error) => {
            report_error(&error, json);
            ExitCode::FAILURE
        }
    }
}

fn report_error(error: &anyhow::Error, json: bool) {
    if json {
        let api = match (
            error.downcast_ref::<CommandError>(),
            error.downcast_ref::<CallError>(),
        ) {
            (Some(CommandError::Api(api)), _) => Some(api),
            (_, Some(CallError::Webhook(WebhookError::Status { detail, .. }))) => Some(detail),
            _ => error.downcast_ref::<ApiError>(),
        };
        let body = api.map_or_else(
            || json!({"error": {"code": "client_error", "message": format!("{error:#}")}}),
            ApiError::to_json,
        );
        println!("{body}");
    } else {
        eprintln!("error: {error:#}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let store = match &cli.config {
        Some(path) => SessionStore::at(path),
        None => SessionStore::from_environment()?,
    };
    let stored = store.load()?;
    let url = cli
        .url
        .clone()
        .or_else(|| stored.as_ref().map(|s| s.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
        .trim_end_matches('/')
        .to_owned();
    // Tokens go only to the gateway that issued them.
    let session = stored.filter(|s| s.url == url);
    let mut context = Context::new(&url, store, session)?;
    if let Some(key) = cli.api_key.as_deref().filter(|k| !k.is_empty()) {
        context.use_api_key(key);
    }
    let out = Printer { json: cli.json };
    match cli.command {
        Command::Signup(args) => {
            let password = args.password.resolve()?;
            let answer = context
                .signup(&args.email, &password, &args.name, &args.company)
                .await?;
            out.answer(&answer, |who| {
                format!(
                    "Signed up {} with tenant {} (plan {}). Logged in to {url}.",
                    who.email,
                    who.tenant.as_deref().unwrap_or("?"),
                    who.plan.as_deref().unwrap_or("?"),
                )
            });
        }
        Command::Login(args) => {
            let password = args.password.resolve()?;
            let answer = context
                .login(&args.email, &password, args.tenant.as_deref())
                .await?;
            out.answer(&answer, |who| {
                format!(
                    "Logged in to {url} as {} (tenant {}).",
                    who.email,
                    who.tenant.as_deref().unwrap_or("none"),
                )
            });
        }
        Command::Logout => {
            let had_session = context.logout().await?;
            out.value(&json!({"loggedOut": had_session}), || {
                if had_session {
                    "Logged out.".to_owned()
                } else {
                    "Not logged in.".to_owned()
                }
            });
        }
        Command::Whoami => {
            let me = context.client().me().await?;
            let current = context.session().and_then(|s| s.tenant.clone());
            out.answer(&me, |me| whoami_text(me, current.as_deref(), &url));
        }
        Command::Tenants(TenantsCommand::List) => {
            let tenants = context.client().tenants().await?;
            let current = context.session().and_then(|s| s.tenant.clone());
            out.answer(&tenants, |page| {
                tenants_text(&page.items, current.as_deref())
            });
        }
        Command::Tenants(TenantsCommand::Use { slug }) => {
            context.use_tenant(&slug).await?;
            out.value(&json!({"tenant": slug}), || {
                format!("Tenant {slug} is now the default.")
            });
        }
        Command::Numbers(command) => resources::numbers::run(command, &mut context, out).await?,
        Command::Agents(command) => resources::agents::run(command, &mut context, out).await?,
        Command::Credentials(command) => {
            resources::credentials::run(command, &mut context, out).await?;
        }
        Command::Campaigns(command) => {
            resources::campaigns::run(command, &mut context, out).await?;
        }
        Command::Calls(command) => resources::calls::run(command, &mut context, out).await?,
        Command::Webhooks(command) => resources::webhooks::run(command, &mut context, out).await?,
        Command::ApiKeys(command) => {
            resources::access::api_keys(command, &mut context, out).await?
        }
        Command::Members(command) => resources::access::members(command, &mut context, out).await?,
        Command::Invitations(command) => {
            resources::access::invitations(command, &mut context, out).await?;
        }
        Command::Billing(command) => resources::billing::run(command, &mut context, out).await?,
        Command::Usage(tenant) => resources::calls::usage(tenant, &mut context, out).await?,
        Command::Call(args) => return place_call(&args, &url, out, &mut context).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "switchboard",
                &mut std::io::stdout(),
            );
        }
    }
    Ok(Outcome::Done)
}

async fn place_call(
    args: &CallArgs,
    url: &str,
    out: Printer,
    context: &mut Context,
) -> anyhow::Result<Outcome> {
    let SimulatedCarrier::Twilio = args.carrier;
    let caller_audio = match &args.audio {
        Some(path) => audio::read_wav_8k(path)?,
        None => audio::speech_like(1.5),
    };
    let options = CallOptions {
        webhook: WebhookTarget {
            base_url: url.to_owned(),
            signed_base_url: args.public_url.clone().unwrap_or_else(|| url.to_owned()),
            auth_token: args
                .auth_token
                .clone()
                .unwrap_or_else(|| switchboard_carriers::sandbox::DEFAULT_SIGNING_KEY.to_owned()),
        },
        from: args.from.clone(),
        to: args.to.clone(),
        account_sid: args.account_sid.clone(),
        caller_audio,
        trailing_silence_seconds: args.say_silence_seconds,
        idle_seconds: args.idle_seconds,
        max_seconds: args.max_seconds,
        media_url: args.media_url.clone(),
        status_callback: !args.no_status_callback,
    };
    let progress = Progress::new(!out.json);
    match call::run(&options, args.out.as_deref(), &progress).await {
        Ok(mut report) => {
            if report.transcript.is_empty() && !args.no_transcript {
                fetch_transcript(context, &mut report, &progress).await;
            }
            progress.finish();
            out.value(&serde_json::to_value(&report)?, || call_text(&report));
            Ok(Outcome::Done)
        }
        Err(CallError::Refused(refusal)) => {
            progress.finish();
            if out.json {
                let mut body = serde_json::to_value(&refusal)?;
                body["outcome"] = json!("refused");
                println!("{body}");
            } else {
                eprintln!("call refused: {}", refusal.describe());
            }
            Ok(Outcome::Refused)
        }
        Err(error) => {
            progress.finish();
            Err(error.into())
        }
    }
}

fn whoami_text(me: &Me, current: Option<&str>, url: &str) -> String {
    let who = match (&me.user, &me.api_key_id) {
        (Some(user), _) => user.email.clone(),
        (None, Some(key)) => format!("API key {key}"),
        (None, None) => "?".to_owned(),
    };
    let verified = match &me.user {
        Some(user) if !user.email_verified => " (e-mail not verified)",
        _ => "",
    };
    format!(
        "{who}{verified} on {url}\n{}",
        tenants_text(&me.tenants, current)
    )
}

fn tenants_text(items: &[Membership], current: Option<&str>) -> String {
    if items.is_empty() {
        return "No tenants.".to_owned();
    }
    items
        .iter()
        .map(|t| {
            let marker = if Some(t.slug.as_str()) == current {
                "*"
            } else {
                " "
            };
            format!("{marker} {:<24} {:<8} {}", t.slug, t.role, t.name)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn call_text(report: &CallReport) -> String {
    let mut lines = Vec::new();
    if !report.transcript.is_empty() {
        lines.push("transcript:".to_owned());
        for line in &report.transcript {
            lines.push(format!(
                "  {}: {}",
                line.role.as_deref().unwrap_or("server"),
                line.text
            ));
        }
    }
    lines.push(report.summary_line());
    lines.join("\n")
}
