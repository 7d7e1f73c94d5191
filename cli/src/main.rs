//! `switchboard`: the command-line client for people and scripts.
//!
//! Exit status: 0 success, 1 failure, 2 bad usage, 3 the gateway refused a simulated call.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_cli::call::{self, CallError, CallOptions, CallReport, TranscriptLine};
use switchboard_cli::commands::{CommandError, Context, list_items, segment, tenant_path};
use switchboard_cli::progress::Progress;
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
    /// Phone numbers of a tenant.
    #[command(subcommand)]
    Numbers(NumbersCommand),
    /// Call records of a tenant.
    #[command(subcommand)]
    Calls(CallsCommand),
    /// Campaigns of a tenant.
    #[command(subcommand)]
    Campaigns(CampaignsCommand),
    /// Customer webhook endpoints of a tenant and their deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// This month's usage of a tenant against its plan's limits.
    Usage {
        /// Tenant [default: the session's].
        #[arg(long, env = "SWITCHBOARD_TENANT")]
        tenant: Option<String>,
    },
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

#[derive(Subcommand, Debug)]
enum NumbersCommand {
    /// Buy a number (a sandbox number on the sandbox carrier).
    Buy {
        /// Area code to search in (the sandbox's is 555).
        #[arg(long)]
        area_code: Option<String>,
        /// Tenant [default: the session's].
        #[arg(long, env = "SWITCHBOARD_TENANT")]
        tenant: Option<String>,
    },
    /// List the tenant's numbers.
    List {
        /// Tenant [default: the session's].
        #[arg(long, env = "SWITCHBOARD_TENANT")]
        tenant: Option<String>,
    },
}

#[derive(Args, Debug)]
struct TenantArg {
    /// Tenant [default: the session's].
    #[arg(long, env = "SWITCHBOARD_TENANT")]
    tenant: Option<String>,
}

#[derive(Subcommand, Debug)]
enum CampaignsCommand {
    /// List the tenant's campaigns (every page).
    List(TenantArg),
}

#[derive(Subcommand, Debug)]
enum WebhooksCommand {
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

#[derive(Subcommand, Debug)]
enum CallsCommand {
    /// The newest calls.
    List {
        /// How many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Tenant [default: the session's].
        #[arg(long, env = "SWITCHBOARD_TENANT")]
        tenant: Option<String>,
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
        match context.transcript(&tenant, &call_id).await {
            Ok(answer) => {
                let turns: Vec<TranscriptLine> =
                    serde_json::from_value(answer["items"].clone()).unwrap_or_default();
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
            out.value(&answer, || {
                format!(
                    "Signed up {} with tenant {} (plan {}). Logged in to {url}.",
                    answer["user"]["email"].as_str().unwrap_or(&args.email),
                    answer["tenant"]["slug"].as_str().unwrap_or("?"),
                    answer["tenant"]["plan"].as_str().unwrap_or("?"),
                )
            });
        }
        Command::Login(args) => {
            let password = args.password.resolve()?;
            let answer = context
                .login(&args.email, &password, args.tenant.as_deref())
                .await?;
            out.value(&answer, || {
                format!(
                    "Logged in to {url} as {} (tenant {}).",
                    answer["user"]["email"].as_str().unwrap_or(&args.email),
                    answer["tenant"].as_str().unwrap_or("none"),
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
            let me = context.whoami().await?;
            let current = context.session().and_then(|s| s.tenant.clone());
            out.value(&me, || whoami_text(&me, current.as_deref(), &url));
        }
        Command::Tenants(TenantsCommand::List) => {
            let tenants = context.tenants().await?;
            let current = context.session().and_then(|s| s.tenant.clone());
            out.value(&tenants, || {
                tenants_text(&list_items(&tenants), current.as_deref())
            });
        }
        Command::Tenants(TenantsCommand::Use { slug }) => {
            context.use_tenant(&slug).await?;
            out.value(&json!({"tenant": slug}), || {
                format!("Tenant {slug} is now the default.")
            });
        }
        Command::Numbers(NumbersCommand::Buy { area_code, tenant }) => {
            let tenant = context.tenant(tenant.as_deref())?;
            let number = context.buy_number(&tenant, area_code.as_deref()).await?;
            out.value(&number, || {
                format!(
                    "Bought {} for tenant {tenant} ({}).",
                    number["e164"].as_str().unwrap_or("a number"),
                    number["status"].as_str().unwrap_or("requested"),
                )
            });
        }
        Command::Numbers(NumbersCommand::List { tenant }) => {
            let tenant = context.tenant(tenant.as_deref())?;
            let numbers = context.numbers(&tenant).await?;
            out.value(&numbers, || numbers_text(&numbers, &tenant));
        }
        Command::Calls(CallsCommand::List { limit, tenant }) => {
            let tenant = context.tenant(tenant.as_deref())?;
            let calls = context.calls(&tenant, limit).await?;
            out.value(&calls, || calls_text(&calls, &tenant));
        }
        Command::Campaigns(CampaignsCommand::List(t)) => {
            let tenant = context.tenant(t.tenant.as_deref())?;
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => tenant_path(&tenant, &format!("campaigns?cursor={}", segment(c))),
                    None => tenant_path(&tenant, "campaigns"),
                };
                let page = context.authed(Method::GET, &path, None).await?;
                items.extend(list_items(&page));
                match page["nextCursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            let all = json!({"items": items, "nextCursor": null});
            out.value(&all, || {
                lines(&items, |c| {
                    format!(
                        "{}\t{}\t{}",
                        c["name"].as_str().unwrap_or("?"),
                        c["phase"].as_str().unwrap_or("?"),
                        c["fromNumber"].as_str().unwrap_or("")
                    )
                })
            });
        }
        Command::Webhooks(command) => webhooks(command, &mut context, &out).await?,
        Command::Usage { tenant } => {
            let tenant = context.tenant(tenant.as_deref())?;
            let usage = context.usage(&tenant).await?;
            out.value(&usage, || usage_text(&usage, &tenant));
        }
        Command::Call(args) => return place_call(&args, &url, &out, &mut context).await,
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

/// One line per item, or `(none)`.
fn lines(items: &[Value], line: impl Fn(&Value) -> String) -> String {
    if items.is_empty() {
        return "(none)".to_owned();
    }
    items.iter().map(line).collect::<Vec<_>>().join("\n")
}

fn endpoint_text(endpoint: &Value) -> String {
    let mut text = format!(
        "{}\t{}\t{}\t{}",
        endpoint["id"].as_str().unwrap_or("?"),
        endpoint["url"].as_str().unwrap_or("?"),
        endpoint["events"]
            .as_array()
            .map(|e| e
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default(),
        if endpoint["enabled"] == false {
            "disabled"
        } else {
            "enabled"
        },
    );
    if let Some(secret) = endpoint["secret"].as_str() {
        text.push_str(&format!("\nsigning secret (shown once): {secret}"));
    }
    if let Some(until) = endpoint["previousSecretExpiresAt"].as_str() {
        text.push_str(&format!("\nthe previous secret signs too until {until}"));
    }
    text
}

async fn webhooks(
    command: WebhooksCommand,
    context: &mut Context,
    out: &Printer,
) -> anyhow::Result<()> {
    let path = |context: &Context, tenant: &TenantArg, rest: &str| {
        context
            .tenant(tenant.tenant.as_deref())
            .map(|t| tenant_path(&t, rest))
    };
    match command {
        WebhooksCommand::List(t) => {
            let answer = context
                .authed(Method::GET, &path(context, &t, "webhooks?limit=200")?, None)
                .await?;
            out.value(&answer, || lines(&list_items(&answer), endpoint_text));
        }
        WebhooksCommand::Create {
            endpoint_url,
            events,
            tenant,
        } => {
            let mut body = json!({"url": endpoint_url});
            if !events.is_empty() {
                body["events"] = json!(events);
            }
            let answer = context
                .create(&path(context, &tenant, "webhooks")?, &body)
                .await?;
            out.value(&answer, || endpoint_text(&answer));
        }
        WebhooksCommand::Update {
            id,
            endpoint_url,
            events,
            enabled,
            tenant,
        } => {
            let mut body = json!({});
            if let Some(url) = endpoint_url {
                body["url"] = json!(url);
            }
            if !events.is_empty() {
                body["events"] = json!(events);
            }
            if let Some(enabled) = enabled {
                body["enabled"] = json!(enabled);
            }
            let rest = format!("webhooks/{}", segment(&id));
            let answer = context
                .authed(Method::PATCH, &path(context, &tenant, &rest)?, Some(&body))
                .await?;
            out.value(&answer, || endpoint_text(&answer));
        }
        WebhooksCommand::RotateSecret {
            id,
            grace_hours,
            tenant,
        } => {
            let body = match grace_hours {
                Some(hours) => json!({"gracePeriodHours": hours}),
                None => json!({}),
            };
            let rest = format!("webhooks/{}/rotate-secret", segment(&id));
            let answer = context
                .authed(Method::POST, &path(context, &tenant, &rest)?, Some(&body))
                .await?;
            out.value(&answer, || endpoint_text(&answer));
        }
        WebhooksCommand::Test { id, tenant } => {
            let rest = format!("webhooks/{}/test", segment(&id));
            let answer = context
                .authed(Method::POST, &path(context, &tenant, &rest)?, None)
                .await?;
            out.value(&answer, || {
                format!(
                    "Queued test message {}.",
                    answer["id"].as_str().unwrap_or("?")
                )
            });
        }
        WebhooksCommand::Deliveries(t) => {
            let answer = context
                .authed(
                    Method::GET,
                    &path(context, &t, "webhooks/deliveries")?,
                    None,
                )
                .await?;
            out.value(&answer, || {
                lines(&list_items(&answer), |d| {
                    format!(
                        "{}\t{}\t{}\t{} attempt(s)",
                        d["id"].as_str().unwrap_or("?"),
                        d["eventType"].as_str().unwrap_or("?"),
                        d["status"].as_str().unwrap_or("?"),
                        d["attempts"].as_i64().unwrap_or(0)
                    )
                })
            });
        }
        WebhooksCommand::Resend { id, tenant } => {
            let rest = format!("webhooks/deliveries/{}/resend", segment(&id));
            let answer = context
                .authed(Method::POST, &path(context, &tenant, &rest)?, None)
                .await?;
            out.value(&answer, || format!("Message {id} will be delivered again."));
        }
        WebhooksCommand::Delete { id, tenant } => {
            let rest = format!("webhooks/{}", segment(&id));
            context
                .authed(Method::DELETE, &path(context, &tenant, &rest)?, None)
                .await?;
            out.value(&json!({"deleted": id}), || {
                format!("Endpoint {id} removed.")
            });
        }
    }
    Ok(())
}

async fn place_call(
    args: &CallArgs,
    url: &str,
    out: &Printer,
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

/// Prints JSON or text.
struct Printer {
    json: bool,
}

impl Printer {
    fn value(&self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

fn whoami_text(me: &Value, current: Option<&str>, url: &str) -> String {
    let who = me["user"]["email"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| me["apiKeyId"].as_str().map(|k| format!("API key {k}")))
        .unwrap_or_else(|| "?".to_owned());
    let verified = match me["user"]["emailVerified"].as_bool() {
        Some(false) => " (e-mail not verified)",
        _ => "",
    };
    format!(
        "{who}{verified} on {url}\n{}",
        tenants_text(
            me["tenants"].as_array().map_or(&[][..], Vec::as_slice),
            current
        )
    )
}

fn tenants_text(items: &[Value], current: Option<&str>) -> String {
    if items.is_empty() {
        return "No tenants.".to_owned();
    }
    items
        .iter()
        .map(|t| {
            let slug = t["slug"].as_str().unwrap_or("?");
            let marker = if Some(slug) == current { "*" } else { " " };
            format!(
                "{marker} {slug:<24} {:<8} {}",
                t["role"].as_str().unwrap_or(""),
                t["name"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn numbers_text(numbers: &Value, tenant: &str) -> String {
    let items = list_items(numbers);
    if items.is_empty() {
        return format!("Tenant {tenant} has no numbers yet: `switchboard numbers buy`.");
    }
    items
        .iter()
        .map(|n| {
            format!(
                "{:<16} {:<10} {}",
                n["e164"].as_str().unwrap_or("(pending)"),
                n["status"].as_str().unwrap_or(""),
                n["name"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn calls_text(calls: &Value, tenant: &str) -> String {
    let items = list_items(calls);
    if items.is_empty() {
        return format!("Tenant {tenant} has no calls yet.");
    }
    items
        .iter()
        .map(|c| {
            let duration = c["durationSeconds"]
                .as_i64()
                .map_or_else(|| "-".to_owned(), |s| format!("{s}s"));
            format!(
                "{:<26} {:<8} {:<14} -> {:<14} {:<10} {:>6}  {}",
                c["startedAt"].as_str().unwrap_or("-"),
                c["direction"].as_str().unwrap_or(""),
                c["from"].as_str().unwrap_or("-"),
                c["to"].as_str().unwrap_or("-"),
                c["outcome"]
                    .as_str()
                    .or_else(|| c["status"].as_str())
                    .unwrap_or(""),
                duration,
                c["id"].as_str().unwrap_or(""),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn usage_text(usage: &Value, tenant: &str) -> String {
    let used = &usage["usage"];
    let limits = &usage["limits"];
    let against = |used_key: &str, limit_key: &str| {
        let count = used[used_key].as_i64().unwrap_or(0);
        match limits[limit_key].as_u64() {
            Some(limit) => format!("{count}/{limit}"),
            None => format!("{count} (unlimited)"),
        }
    };
    format!(
        "Usage of {tenant} in {} (plan {}): calls {}, minutes {}, API requests {}, STT {:.1} min, TTS {} characters",
        usage["period"].as_str().unwrap_or("?"),
        usage["plan"].as_str().unwrap_or("?"),
        against("callCount", "monthlyCalls"),
        against("callMinutes", "monthlyMinutes"),
        against("apiRequests", "monthlyApiRequests"),
        used["sttMinutes"].as_f64().unwrap_or(0.0),
        used["ttsCharacters"].as_i64().unwrap_or(0),
    )
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
