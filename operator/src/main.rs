//! `switchboard-operator`: run the controllers, print the CRDs, or render a Tenant's objects.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use kube::Client;
use kube::runtime::events::Reporter;
use switchboard_carriers::SandboxCarrier;
use switchboard_crds::Tenant;
use switchboard_operator::controllers::phone_number::{Carriers, TelnyxAccount, TwilioAccount};
use switchboard_operator::controllers::watch::ControllerSettings;
use switchboard_operator::controllers::{self, Context};
use switchboard_operator::gateway_client::{GatewayClient, InternalToken};
use switchboard_operator::leader::{LeaseSettings, run_as_leader};
use switchboard_operator::{OperatorConfig, builders};
use switchboard_telemetry::{
    LogFormat, ReadinessCheck, init_logging, serve_observability, shutdown_signal,
};
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-operator",
    version,
    about = "Reconciles Switchboard tenants into voice stacks"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controllers (the default).
    Run,
    /// Print the CustomResourceDefinitions as YAML, or write one file each into a directory.
    Crds {
        /// Write `<name>.yaml` files here instead of printing.
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Print the objects the operator would apply for a Tenant manifest (for GitOps reviews).
    Render {
        /// Tenant manifest (YAML).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
struct ConfigArgs {
    /// Prefix of tenant namespaces.
    #[arg(long, env = "SWITCHBOARD_NAMESPACE_PREFIX", default_value = switchboard_crds::naming::DEFAULT_NAMESPACE_PREFIX)]
    namespace_prefix: String,
    /// Namespace the gateway runs in (the only ingress source of tenant runtimes).
    #[arg(
        long,
        env = "SWITCHBOARD_GATEWAY_NAMESPACE",
        default_value = "switchboard-system"
    )]
    gateway_namespace: String,
    /// Namespace of the Prometheus that scrapes tenant runtimes: admitted to their metrics
    /// port by each tenant's NetworkPolicy. Empty: no namespace is.
    #[arg(long, env = "SWITCHBOARD_MONITORING_NAMESPACE", default_value = "")]
    monitoring_namespace: String,
    /// In-cluster base URL of the gateway's internal API.
    #[arg(
        long,
        env = "SWITCHBOARD_GATEWAY_INTERNAL_URL",
        default_value = "http://switchboard-gateway.switchboard-system.svc:8080"
    )]
    gateway_internal_url: String,
    /// Public base URL of the gateway, configured as carriers' webhook target.
    #[arg(
        long,
        env = "SWITCHBOARD_GATEWAY_PUBLIC_URL",
        default_value = "https://voice.example.com"
    )]
    gateway_public_url: String,
    /// Default runtime image.
    #[arg(long, env = "SWITCHBOARD_RUNTIME_IMAGE", default_value_t = OperatorConfig::default().runtime_image)]
    runtime_image: String,
    /// ClusterRoles to bind in every tenant namespace, as JSON: `[{"clusterRole": …,
    /// "serviceAccountNamespace": …, "serviceAccount": …}]` (the chart sets it so the operator
    /// reads and the gateway writes Secrets in tenant namespaces only).
    #[arg(long, env = "SWITCHBOARD_TENANT_ROLE_BINDINGS")]
    tenant_role_bindings: Option<String>,
    /// Plan limit overrides as JSON, e.g. `{"free":{"monthlyCalls":100}}` (the gateway's
    /// setting of the same name; both must see the same value).
    #[arg(long, env = "SWITCHBOARD_PLAN_LIMITS")]
    plan_limits: Option<String>,
}

impl ConfigArgs {
    fn to_config(&self) -> anyhow::Result<OperatorConfig> {
        Ok(OperatorConfig {
            namespace_prefix: self.namespace_prefix.clone(),
            gateway_namespace: self.gateway_namespace.clone(),
            monitoring_namespace: Some(self.monitoring_namespace.trim().to_owned())
                .filter(|namespace| !namespace.is_empty()),
            gateway_internal_url: self.gateway_internal_url.clone(),
            gateway_public_url: self.gateway_public_url.clone(),
            runtime_image: self.runtime_image.clone(),
            plan_limits: switchboard_crds::PlanOverrides::parse(self.plan_limits.as_deref())?,
            tenant_role_bindings: match self.tenant_role_bindings.as_deref().map(str::trim) {
                None | Some("") => Vec::new(),
                Some(json) => serde_json::from_str(json)
                    .context("SWITCHBOARD_TENANT_ROLE_BINDINGS is not a list of bindings")?,
            },
        })
    }
}

/// The platform's carrier accounts, used for tenants that bring none
/// (`Tenant.spec.carrier.credentialsSecretRef` unset). Prefer the environment (the chart
/// fills it from a Secret) over flags, which show up in process listings.
#[derive(Args)]
struct CarrierArgs {
    /// Platform Twilio account SID.
    #[arg(long, env = "TWILIO_ACCOUNT_SID", global = true)]
    twilio_account_sid: Option<String>,
    /// Platform Twilio auth token.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, global = true)]
    twilio_auth_token: Option<String>,
    /// Platform Telnyx API key.
    #[arg(long, env = "TELNYX_API_KEY", hide_env_values = true, global = true)]
    telnyx_api_key: Option<String>,
    /// Platform Telnyx Call Control connection id (numbers are routed to it).
    #[arg(long, env = "TELNYX_CONNECTION_ID", global = true)]
    telnyx_connection_id: Option<String>,
    /// JSON file keeping the sandbox carrier's inventory across restarts (default: memory).
    #[arg(long, env = "SWITCHBOARD_SANDBOX_STATE_FILE", global = true)]
    sandbox_state_file: Option<PathBuf>,
}

impl std::fmt::Debug for CarrierArgs {
    // Tokens and keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarrierArgs")
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("telnyx_connection_id", &self.telnyx_connection_id)
            .field("sandbox_state_file", &self.sandbox_state_file)
            .finish_non_exhaustive()
    }
}

/// Both halves of a credential, or neither; an empty value counts as unset.
fn pair(
    first: &Option<String>,
    second: &Option<String>,
    names: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let set = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    match (set(first), set(second)) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        _ => anyhow::bail!("set both of {names}, or neither"),
    }
}

impl CarrierArgs {
    fn to_carriers(&self) -> anyhow::Result<Carriers> {
        let platform_twilio = pair(
            &self.twilio_account_sid,
            &self.twilio_auth_token,
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        )?
        .map(|(account_sid, auth_token)| TwilioAccount {
            account_sid,
            auth_token,
        });
        let platform_telnyx = pair(
            &self.telnyx_api_key,
            &self.telnyx_connection_id,
            "TELNYX_API_KEY and TELNYX_CONNECTION_ID",
        )?
        .map(|(api_key, connection_id)| TelnyxAccount {
            api_key,
            connection_id,
        });
        let sandbox = match &self.sandbox_state_file {
            Some(path) => SandboxCarrier::open(path)
                .with_context(|| format!("cannot open sandbox state {}", path.display()))?,
            None => SandboxCarrier::in_memory(),
        };
        Ok(Carriers {
            platform_twilio,
            platform_telnyx,
            sandbox,
            ..Carriers::default()
        })
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    carriers: CarrierArgs,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "SWITCHBOARD_METRICS_LISTEN",
        default_value = "0.0.0.0:9090",
        global = true
    )]
    metrics_listen: SocketAddr,
    /// Hold a Lease before reconciling (needed with more than one replica).
    #[arg(long, env = "SWITCHBOARD_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "SWITCHBOARD_LEASE_NAME",
        default_value = "switchboard-operator",
        global = true
    )]
    lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "switchboard-system",
        global = true
    )]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME", global = true)]
    identity: Option<String>,
    #[command(flatten)]
    controllers: ControllerArgs,
    /// Log format: text or json.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
}

/// How hard the controllers may push the API server (see `ControllerSettings`).
#[derive(Args, Debug)]
struct ControllerArgs {
    /// Tenant reconciles run at once.
    #[arg(long, env = "SWITCHBOARD_TENANT_CONCURRENCY", default_value_t = ControllerSettings::default().tenant_concurrency, value_parser = clap::value_parser!(u16).range(1..), global = true)]
    tenant_concurrency: u16,
    /// PhoneNumber reconciles run at once.
    #[arg(long, env = "SWITCHBOARD_NUMBER_CONCURRENCY", default_value_t = ControllerSettings::default().number_concurrency, value_parser = clap::value_parser!(u16).range(1..), global = true)]
    number_concurrency: u16,
    /// Campaign reconciles run at once.
    #[arg(long, env = "SWITCHBOARD_CAMPAIGN_CONCURRENCY", default_value_t = ControllerSettings::default().campaign_concurrency, value_parser = clap::value_parser!(u16).range(1..), global = true)]
    campaign_concurrency: u16,
    /// Milliseconds a burst of changes to one object is gathered into one reconcile (0: off).
    #[arg(long, env = "SWITCHBOARD_RECONCILE_DEBOUNCE_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000), global = true)]
    reconcile_debounce_ms: u64,
}

impl ControllerArgs {
    fn to_settings(&self) -> ControllerSettings {
        ControllerSettings {
            tenant_concurrency: self.tenant_concurrency,
            number_concurrency: self.number_concurrency,
            campaign_concurrency: self.campaign_concurrency,
            debounce: std::time::Duration::from_millis(self.reconcile_debounce_ms),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // kube's TLS runs on ring. Naming it keeps the binary working when another crate in the
    // same build also enables aws-lc-rs (the test dependencies do, for benchmarks): with two
    // providers compiled in, rustls cannot pick one and the first connection would panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Crds { output_dir } => print_or_write_crds(output_dir.as_deref()),
        Command::Render { file } => render(&file, &cli.run.config.to_config()?),
        Command::Run => run(cli.run).await,
    }
}

fn print_or_write_crds(output_dir: Option<&Path>) -> anyhow::Result<()> {
    let Some(dir) = output_dir else {
        print!("{}", switchboard_crds::all_crds_yaml()?);
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for crd in switchboard_crds::all_crds() {
        let path = dir.join(switchboard_crds::crd_file_name(&crd));
        std::fs::write(&path, switchboard_crds::crd_yaml(&crd)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn render(file: &Path, config: &OperatorConfig) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut tenant: Tenant = serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not a valid Tenant", file.display()))?;
    // Owner references need the uid the API server will assign; show a recognisable placeholder.
    tenant
        .metadata
        .uid
        .get_or_insert_with(|| "00000000-0000-0000-0000-000000000000".into());
    let stack = builders::desired_stack(&tenant, config)
        .map_err(|e| anyhow::anyhow!("invalid Tenant: {e}"))?;
    println!(
        "# Objects switchboard-operator applies for Tenant {:?}.",
        tenant.metadata.name.as_deref().unwrap_or("")
    );
    println!("# ownerReferences[].uid is a placeholder: the API server assigns the Tenant's uid.");
    let mut documents = vec![
        serde_yaml::to_string(&stack.namespace)?,
        serde_yaml::to_string(&stack.resource_quota)?,
        serde_yaml::to_string(&stack.limit_range)?,
    ];
    for policy in &stack.network_policies {
        documents.push(serde_yaml::to_string(policy)?);
    }
    for binding in &stack.role_bindings {
        documents.push(serde_yaml::to_string(binding)?);
    }
    documents.push(serde_yaml::to_string(&stack.service_account)?);
    documents.push(serde_yaml::to_string(&stack.agent_config)?);
    documents.push(serde_yaml::to_string(&stack.deployment)?);
    documents.push(serde_yaml::to_string(&stack.service)?);
    if let Some(pdb) = &stack.pod_disruption_budget {
        documents.push(serde_yaml::to_string(pdb)?);
    }
    for document in documents {
        print!("---\n{document}");
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, "info,kube=warn");
    let config = args.config.to_config()?;
    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration found (in-cluster or kubeconfig)")?;
    let metrics = Arc::new(controllers::metrics()?);
    let identity = args.identity.clone().unwrap_or_else(default_identity);

    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    let ready: ReadinessCheck = Arc::new(|| Box::pin(async { Ok(()) }));
    let (_, observability) = serve_observability(
        args.metrics_listen,
        metrics.registry.clone(),
        ready,
        shutdown.clone().cancelled_owned(),
    )
    .await
    .with_context(|| format!("cannot listen on {}", args.metrics_listen))?;

    let reporter = Reporter {
        controller: "switchboard-operator".into(),
        instance: Some(identity.clone()),
    };
    let gateway = gateway_client(&config.gateway_internal_url)?;
    let carriers = args.carriers.to_carriers()?;
    let settings = args.controllers.to_settings();
    tracing::info!(?settings, "controller settings");
    let mut ctx = Context::new(client.clone(), config, metrics, reporter)
        .with_carriers(carriers)
        .with_settings(settings);
    if let Some(gateway) = gateway {
        ctx = ctx.with_gateway(gateway);
    }
    let ctx = Arc::new(ctx);
    let controllers = {
        let tenants = controllers::tenant::run(ctx.clone(), shutdown.clone().cancelled_owned());
        let numbers =
            controllers::phone_number::run(ctx.clone(), shutdown.clone().cancelled_owned());
        let campaigns = controllers::campaign::run(ctx, shutdown.clone().cancelled_owned());
        async move {
            tokio::join!(tenants, numbers, campaigns);
        }
    };

    if args.leader_election {
        let lease = LeaseSettings {
            name: args.lease_name,
            namespace: args.lease_namespace,
            identity,
            duration_seconds: 15,
            grace_seconds: 5,
        };
        run_as_leader(client, lease, shutdown.clone(), controllers).await?;
    } else {
        tracing::warn!("leader election disabled: run only one replica");
        controllers.await;
    }
    shutdown.cancel();
    observability.await.context("observability server task")??;
    tracing::info!("stopped");
    Ok(())
}

/// The gateway's internal API client. The token is read from the environment only (never a
/// flag, so it stays out of `ps` and `--help`); without it Campaigns cannot be registered.
fn gateway_client(base_url: &str) -> anyhow::Result<Option<GatewayClient>> {
    let Some(token) = std::env::var("SWITCHBOARD_INTERNAL_TOKEN")
        .ok()
        .and_then(InternalToken::new)
    else {
        tracing::warn!(
            "SWITCHBOARD_INTERNAL_TOKEN is not set: Campaigns cannot be registered with the gateway"
        );
        return Ok(None);
    };
    let gateway = GatewayClient::new(base_url, token)
        .with_context(|| format!("invalid SWITCHBOARD_GATEWAY_INTERNAL_URL {base_url:?}"))?;
    Ok(Some(gateway))
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .unwrap_or_else(|_| format!("switchboard-operator-{}", std::process::id()))
}
