//! End to end in Kubernetes mode, without a cluster: one in-memory API server
//! (`switchboard-fake-cluster`: kube-fake-client plus the project's shim, with
//! kube-controller-manager simulated) shared by the operator's controllers and the gateway in
//! Kubernetes mode, and the tenant's runtime started in-process from exactly what the operator
//! and the gateway wrote into the tenant's namespace, read back from that API server: the
//! Deployment's environment (its `valueFrom` Secret references resolved), the agent ConfigMap
//! and the Secrets. Nothing is hand-copied between the components; the only test-side wiring
//! is the runtime's loopback address registered under the endpoint name the operator
//! published in `status.runtimeEndpoint` (the cluster DNS's part).
//!
//! Tenant namespaces use a non-default prefix (`customer-`), set on the gateway and the
//! operator alone, so a component that ignored the setting would not find the namespace or the
//! runtime.
//!
//! signup → the owner verifies the address → Tenant → its stack (namespace, Deployment,
//! ConfigMap, the runtime-credential Secret) → a sandbox number bought through the API and
//! routed by the operator → a call through the gateway's voice webhook and media proxy (no
//! carrier status callback: only the runtime's events, sent with the tenant's runtime
//! credential, complete the record) → call record `completed` with transcript turns, usage
//! minutes, STT minutes and TTS characters → SIGTERM to the gateway mid-call: readiness false,
//! new calls refused, the call completes and is recorded, then the gateway exits. Before the
//! drain the owner rotates the runtime credential: the old one is refused at once and the
//! running runtime reports the next call with the new one, without a restart (issue 13).
//! Along the way (issue 14) a Tenant applied with kubectl and naming its owner is adopted by
//! the gateway's Tenant watcher: the owner signs up and finds it, a signup with the same
//! company name leaves it untouched, its own runtime runs from its namespace's objects; a
//! number bought for a named agent (retried with one Idempotency-Key: one PhoneNumber, one
//! purchase — issue 18) is answered by that agent, then by the default agent once `PATCH`ed;
//! its own Twilio account stored through the API becomes `spec.carrier.credentialsSecretRef`
//! and buys its next number on a local Twilio-shaped server; a kubectl suspension survives
//! the owner's edit.
//!
//! The runtimes' ConfigMap and Secret volumes are kept in step with the API objects while they
//! run, as the kubelet does (`sync_volumes`, with its atomic `..data` symlink swap), so agent,
//! number, key and credential changes reach a running runtime only the way they do in a
//! cluster. SQLite always, Postgres too when `DATABASE_URL` is a Postgres URL.

#[path = "../../gateway/tests/support/postgres_schema.rs"]
mod postgres_schema;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_carriers::SandboxCarrier;
use switchboard_cli::call::{self, CallOptions};
use switchboard_cli::progress::Progress;
use switchboard_cli::webhook::WebhookTarget;
use switchboard_crds::{PhoneNumber, Tenant};
use switchboard_fake_cluster::{Churn, InMemoryApi, WriteCounter, in_memory_api, simulate_cluster};
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::mailer::MemoryMailer;
use switchboard_gateway::provider_keys::{RetryTiming, spawn_projection_retries};
use switchboard_gateway::store::Store;
use switchboard_gateway::{AppState, Config};
use switchboard_operator::OperatorConfig;
use switchboard_operator::controllers::phone_number::Carriers;
use switchboard_operator::controllers::{self, Context};
use switchboard_operator::gateway_client::{GatewayClient, InternalToken};
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "customer-";
const INTERNAL_TOKEN: &str = "e2e-internal-token-operator-only";
const SANDBOX_TOKEN: &str = "e2e-sandbox-auth-token";
const PASSWORD: &str = "correct horse battery staple";
/// The platform admin (`SWITCHBOARD_PLATFORM_ADMINS`) of the suspension test.
const PLATFORM_ADMIN: &str = "root@platform.e2e.test";
const CALLER: &str = "+15551234567";
const APP_ROLE: &str = "switchboard_e2e_kubernetes_app";
/// The kubectl tenant's named agent and what it says first (issue 14: a number's agent).
const GLOBEX_SALES: &str = "Globex sales, how can I help?";
/// The kubectl tenant's own Twilio account, stored through the credentials API.
const GLOBEX_TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const GLOBEX_TWILIO_TOKEN: &str = "globex-twilio-auth-token";
/// The platform's public URL (behind its ingress): every gateway replica has it, so access
/// tokens (its issuer) and carrier signatures (over its webhook URLs) hold on any replica.
const PUBLIC_URL: &str = "https://voice.e2e.test";

#[derive(Parser)]
struct GatewayFlags {
    #[command(flatten)]
    config: Config,
}

/// A gateway process in Kubernetes mode, served on loopback.
struct Gateway {
    state: AppState,
    mailer: Arc<MemoryMailer>,
    url: String,
    sigterm: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    async fn start(database_url: &str, kube: kube::Client) -> Self {
        Self::start_with(database_url, kube, &[]).await
    }

    /// [`Gateway::start`] with more flags (`extra`), listening where it says (`--listen`).
    async fn start_with(database_url: &str, kube: kube::Client, extra: &[&str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let url = format!("http://{address}");
        let master_key = "33".repeat(32);
        let mut flags = vec![
            "gateway",
            "--listen",
            &address,
            "--database-url",
            database_url,
            "--jwt-secret",
            "e2e-kubernetes-jwt-secret-e2e-kubernetes-01",
            "--master-encryption-key",
            &master_key,
            "--kubernetes",
            "true",
            "--namespace-prefix",
            PREFIX,
            "--public-url",
            PUBLIC_URL,
            "--sandbox-auth-token",
            SANDBOX_TOKEN,
            "--internal-token",
            INTERNAL_TOKEN,
            "--drain-seconds",
            "60",
            "--database-max-connections",
            "4",
            "--platform-admins",
            PLATFORM_ADMIN,
        ];
        flags.extend_from_slice(extra);
        let config = GatewayFlags::try_parse_from(flags).unwrap().config;
        let store = Store::connect(database_url, 4).await.unwrap();
        if database_url.starts_with("sqlite") {
            store.migrate().await.unwrap();
        }
        let mailer = Arc::new(MemoryMailer::default());
        let state = AppState::assemble(config, store, mailer.clone(), KubeSync::with_client(kube))
            .await
            .unwrap();
        // The projection of Secrets into tenant namespaces, retried quickly (the production
        // worker polls every 5 s).
        let fast = RetryTiming {
            poll: Duration::from_millis(100),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let mut background: Vec<_> = spawn_projection_retries(&state, fast).into_iter().collect();
        // The Tenant watcher, as the gateway's workers start it.
        background.extend(switchboard_gateway::tenant_sync::spawn(&state));
        let (sigterm, received) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(switchboard_gateway::http::server::serve_draining(
            state.clone(),
            listener,
            async move {
                let _ = received.await;
            },
        ));
        Self {
            state,
            mailer,
            url,
            sigterm: Some(sigterm),
            served,
            background,
        }
    }

    /// What SIGTERM does to the process (`shutdown_signal` resolving).
    fn sigterm(&mut self) {
        if let Some(sigterm) = self.sigterm.take() {
            let _ = sigterm.send(());
        }
    }

    async fn stop(mut self) {
        self.sigterm();
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.served).await;
        for task in &self.background {
            task.abort();
        }
    }
}

/// The operator's three controllers against `api`, talking to the gateway at `gateway_url`.
fn start_operator(api: &InMemoryApi, gateway_url: &str) -> CancellationToken {
    start_operator_with(api, gateway_url, None, Carriers::default())
}

/// [`start_operator`] with the platform's plan-limit overrides (`SWITCHBOARD_PLAN_LIMITS`,
/// the same setting as the gateway's `--plan-limits`) and the given carrier accounts (a
/// sandbox the test counts purchases of, a local Twilio-shaped server).
fn start_operator_with(
    api: &InMemoryApi,
    gateway_url: &str,
    plan_limits: Option<&str>,
    carriers: Carriers,
) -> CancellationToken {
    let config = OperatorConfig {
        namespace_prefix: PREFIX.to_owned(),
        gateway_internal_url: gateway_url.to_owned(),
        gateway_public_url: PUBLIC_URL.to_owned(),
        plan_limits: switchboard_crds::PlanOverrides::parse(plan_limits).unwrap(),
        ..OperatorConfig::default()
    };
    let reporter = kube::runtime::events::Reporter {
        controller: "switchboard-operator".into(),
        instance: Some("e2e".into()),
    };
    let gateway =
        GatewayClient::new(gateway_url, InternalToken::new(INTERNAL_TOKEN).unwrap()).unwrap();
    let ctx = Arc::new(
        Context::new(
            api.client.clone(),
            config,
            Arc::new(switchboard_operator::controllers::metrics().unwrap()),
            reporter,
        )
        .with_gateway(gateway)
        .with_carriers(carriers),
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(controllers::tenant::run(
        ctx.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    tokio::spawn(controllers::phone_number::run(
        ctx.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    tokio::spawn(controllers::campaign::run(
        ctx,
        shutdown.clone().cancelled_owned(),
    ));
    shutdown
}

/// A tenant runtime started from its namespace's objects as the kubelet would: the
/// Deployment's container environment with `secretKeyRef`/`configMapKeyRef` resolved (once, at
/// start, as for a real container), and its ConfigMap and Secret volumes as folders at their
/// mount paths, kept in step with the API objects by [`sync_volumes`] while it runs, the way
/// the kubelet refreshes mounted ConfigMaps and Secrets. The runtime re-reads its mounted
/// configuration as in production (`ConfigStore::spawn_reloader`), so an agent, number or key
/// change made through the API reaches it without a restart.
struct Runtime {
    address: SocketAddr,
    stop: CancellationToken,
    /// The configuration the runtime serves with (what its reloader last read).
    config: Arc<switchboard_runtime::ConfigStore>,
    _mounts: tempfile::TempDir,
    /// The volume refresh and the configuration reloader (they end with `stop`).
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Where a mounted volume's files come from.
#[derive(Clone)]
enum VolumeSource {
    ConfigMap(String),
    /// A Secret; `optional` ones may be missing (an empty folder); `items` (key → file)
    /// projects only those keys.
    Secret {
        name: String,
        optional: bool,
        items: Option<BTreeMap<String, String>>,
    },
}

/// One mounted volume: its folder and its source object.
#[derive(Clone)]
struct Mounted {
    folder: std::path::PathBuf,
    source: VolumeSource,
}

/// The files of `source` as the kubelet projects them (key → content); `None` while a
/// required object is missing (the kubelet keeps the last content).
async fn volume_files(
    client: &kube::Client,
    namespace: &str,
    source: &VolumeSource,
) -> Option<BTreeMap<String, Vec<u8>>> {
    match source {
        VolumeSource::ConfigMap(name) => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let map = api.get_opt(name).await.ok()??;
            Some(
                map.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect(),
            )
        }
        VolumeSource::Secret {
            name,
            optional,
            items,
        } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            match api.get_opt(name).await.ok()? {
                Some(secret) => Some(
                    secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|(k, v)| match items {
                            Some(items) => items.get(&k).map(|path| (path.clone(), v.0)),
                            None => Some((k, v.0)),
                        })
                        .collect(),
                ),
                None if *optional => Some(BTreeMap::new()),
                None => None,
            }
        }
    }
}

/// Writes `files` into `folder` as the kubelet's atomic writer does: the files go into a new
/// hidden timestamped folder, the `..data` symlink is swapped to it in one rename, and each
/// visible name is a symlink through `..data`; so a reader sees the old set or the new one,
/// never a mix. Returns whether anything changed.
fn project_atomically(
    folder: &std::path::Path,
    files: &BTreeMap<String, Vec<u8>>,
    generation: u64,
) -> std::io::Result<bool> {
    use std::os::unix::fs::symlink;
    let data = folder.join("..data");
    let current: BTreeMap<String, Vec<u8>> = match std::fs::read_dir(&data) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                (name, bytes)
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    if data.exists() && &current == files {
        return Ok(false);
    }
    let old = std::fs::read_link(&data).ok();
    let fresh = format!("..{generation:020}");
    std::fs::create_dir(folder.join(&fresh))?;
    for (name, bytes) in files {
        std::fs::write(folder.join(&fresh).join(name), bytes)?;
    }
    let staged = folder.join("..data_tmp");
    let _ = std::fs::remove_file(&staged);
    symlink(&fresh, &staged)?;
    std::fs::rename(&staged, &data)?;
    for name in files.keys() {
        let visible = folder.join(name);
        if std::fs::symlink_metadata(&visible).is_err() {
            symlink(std::path::Path::new("..data").join(name), &visible)?;
        }
    }
    for name in current.keys().filter(|n| !files.contains_key(*n)) {
        std::fs::remove_file(folder.join(name))?;
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(folder.join(old))?;
    }
    Ok(true)
}

/// The kubelet's refresh of mounted ConfigMaps and Secrets: every 100 ms, each volume's
/// folder is brought in line with its object, until `stop`.
fn sync_volumes(
    client: kube::Client,
    namespace: String,
    volumes: Vec<Mounted>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut generation = 1_u64;
        loop {
            for volume in &volumes {
                if let Some(files) = volume_files(&client, &namespace, &volume.source).await {
                    generation += 1;
                    if let Err(error) = project_atomically(&volume.folder, &files, generation) {
                        panic!("cannot refresh {}: {error}", volume.folder.display());
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    })
}

async fn start_runtime(client: &kube::Client, namespace: &str) -> Runtime {
    start_runtime_with(client, namespace, false).await
}

/// [`start_runtime`], letting the runtime reach private addresses (`SWITCHBOARD_OUTBOUND_ALLOW_
/// PRIVATE`, not part of the Deployment: the platform's choice) when `outbound_allow_private`.
async fn start_runtime_with(
    client: &kube::Client,
    namespace: &str,
    outbound_allow_private: bool,
) -> Runtime {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments
        .get(switchboard_crds::naming::RUNTIME_SERVICE)
        .await
        .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = pod.containers.first().unwrap().clone();

    let mut env = BTreeMap::new();
    for var in container.env.unwrap_or_default() {
        let value = match (var.value, var.value_from) {
            (Some(value), _) => Some(value),
            (None, Some(from)) => {
                if let Some(key) = from.secret_key_ref {
                    match secrets.get_opt(&key.name).await.unwrap() {
                        Some(secret) => secret
                            .data
                            .unwrap_or_default()
                            .get(&key.key)
                            .map(|v| String::from_utf8(v.0.clone()).unwrap()),
                        None => {
                            assert_eq!(
                                key.optional,
                                Some(true),
                                "the pod would not start: Secret {} is missing",
                                key.name
                            );
                            None
                        }
                    }
                } else if let Some(key) = from.config_map_key_ref {
                    config_maps
                        .get(&key.name)
                        .await
                        .unwrap()
                        .data
                        .unwrap_or_default()
                        .get(&key.key)
                        .cloned()
                } else {
                    None
                }
            }
            (None, None) => None,
        };
        if let Some(value) = value {
            env.insert(var.name, value);
        }
    }

    // Volumes: ConfigMaps and Secrets as folders of files, at their mount paths.
    let mounts = tempfile::tempdir().unwrap();
    let mut folders = BTreeMap::new();
    let mut synced = Vec::new();
    for mount in container.volume_mounts.unwrap_or_default() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        let folder = mounts.path().join(&mount.name);
        std::fs::create_dir_all(&folder).unwrap();
        let source = if let Some(source) = &volume.config_map {
            Some(VolumeSource::ConfigMap(source.name.clone()))
        } else {
            volume.secret.as_ref().map(|source| VolumeSource::Secret {
                name: source.secret_name.clone().unwrap(),
                optional: source.optional == Some(true),
                items: source.items.as_ref().map(|items| {
                    items
                        .iter()
                        .map(|i| (i.key.clone(), i.path.clone()))
                        .collect()
                }),
            })
        };
        if let Some(source) = source {
            // The pod does not start before its required volumes can be filled.
            let files = volume_files(client, namespace, &source)
                .await
                .unwrap_or_else(|| {
                    panic!("the pod would not start: volume {} is missing", mount.name)
                });
            project_atomically(&folder, &files, 1).unwrap();
            synced.push(Mounted {
                folder: folder.clone(),
                source,
            });
        }
        folders.insert(mount.mount_path, folder);
    }
    let folder_of = |variable: &str| -> std::path::PathBuf {
        let path = &env[variable];
        folders
            .get(path)
            .cloned()
            .unwrap_or_else(|| panic!("{variable}={path} is not a mounted volume"))
    };

    let source = switchboard_runtime::ConfigSource {
        agent_dir: folder_of("SWITCHBOARD_AGENT_CONFIG_DIR"),
        keys_dir: folder_of("SWITCHBOARD_PROVIDER_KEYS_DIR"),
    };
    let store = Arc::new(switchboard_runtime::ConfigStore::new(
        source.load().unwrap(),
    ));
    let stop = CancellationToken::new();
    let tasks = vec![
        sync_volumes(client.clone(), namespace.to_owned(), synced, stop.clone()),
        store
            .clone()
            .spawn_reloader(source, Duration::from_millis(200), stop.clone()),
    ];
    let tenant = env["SWITCHBOARD_TENANT"].clone();
    let metrics = switchboard_runtime::Metrics::new(&tenant).unwrap();
    let events_url = env.get("SWITCHBOARD_GATEWAY_EVENTS_URL").cloned();
    // The runtime credential: a file in a mounted Secret, re-read by the runtime (so a
    // rotation reaches it through the volume refresh above).
    let token_file = &env["SWITCHBOARD_INTERNAL_TOKEN_FILE"];
    let (mount_path, folder) = folders
        .iter()
        .find(|(path, _)| token_file.starts_with(&format!("{path}/")))
        .unwrap_or_else(|| panic!("SWITCHBOARD_INTERNAL_TOKEN_FILE={token_file} is not mounted"));
    let credential =
        switchboard_runtime::Credential::File(folder.join(&token_file[mount_path.len() + 1..]));
    assert!(
        credential.current().is_some(),
        "the runtime credential is mounted at start"
    );
    let (events, _delivery) = switchboard_runtime::EventSink::spawn_with_credential(
        events_url.clone(),
        Some(credential),
        metrics.clone(),
        stop.clone(),
    );
    let config = switchboard_runtime::RuntimeConfig {
        tenant,
        max_concurrent_calls: env["SWITCHBOARD_MAX_CONCURRENT_CALLS"].parse().unwrap(),
        events_url,
        outbound_allow_private,
        ..switchboard_runtime::RuntimeConfig::default()
    };
    let state = switchboard_runtime::RuntimeState::new(config, store.clone(), metrics, events);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = switchboard_runtime::router(state);
    let stopped = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped.cancelled_owned())
            .await
    });
    Runtime {
        address,
        stop,
        config: store,
        _mounts: mounts,
        _tasks: tasks,
    }
}

async fn api(
    gateway: &Gateway,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", gateway.url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `check` every 100 ms for up to `seconds`; panics with `what` when it never holds.
async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn call_options(gateway_url: &str, to: &str, speech_seconds: f64) -> CallOptions {
    CallOptions {
        // As through the ingress: requests reach this replica, signed for the public URL.
        webhook: WebhookTarget {
            base_url: gateway_url.to_owned(),
            signed_base_url: PUBLIC_URL.to_owned(),
            auth_token: SANDBOX_TOKEN.to_owned(),
        },
        from: CALLER.to_owned(),
        to: to.to_owned(),
        account_sid: None,
        caller_audio: switchboard_cli::audio::speech_like(speech_seconds),
        trailing_silence_seconds: 1.0,
        idle_seconds: 1.5,
        max_seconds: 20.0,
        media_url: Some(format!(
            "{}/media",
            gateway_url.replacen("http://", "ws://", 1)
        )),
        // No carrier status callback: only the runtime's events can complete the record.
        status_callback: false,
    }
}

/// The call record of `call_sid` once the runtime's events have completed it.
/// Signs up through the API and verifies the address; returns (slug, access token).
async fn signup_verified(gateway: &Gateway, email: &str, company: &str) -> (String, String) {
    let reply = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/signup", gateway.url))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Someone", "company": company}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);
    let reply: Value = reply.json().await.unwrap();
    verify_email(gateway, email).await;
    (
        reply["tenant"]["slug"].as_str().unwrap().to_owned(),
        reply["tokens"]["accessToken"].as_str().unwrap().to_owned(),
    )
}

/// A local server speaking Twilio's number API for the kubectl tenant's own account (wire
/// format: /work/shared/reference/protocols.md, as `operator/tests/phone_number_controller.rs`
/// fakes it): only that account's Basic credentials are accepted, and every purchase is kept.
#[derive(Default)]
struct FakeTwilio {
    numbers: std::sync::Mutex<Vec<Value>>,
    purchases: std::sync::atomic::AtomicUsize,
}

type FormPairs = Vec<(String, String)>;

fn form_field<'a>(pairs: &'a FormPairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn twilio_refusal(headers: &axum::http::HeaderMap) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    // base64("{GLOBEX_TWILIO_SID}:{GLOBEX_TWILIO_TOKEN}")
    let expected =
        "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpnbG9iZXgtdHdpbGlvLWF1dGgtdG9rZW4=";
    if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected) {
        return None;
    }
    Some(
        (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response(),
    )
}

async fn start_fake_twilio() -> (String, Arc<FakeTwilio>) {
    use axum::extract::{Form, Path, Query, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    async fn available(headers: HeaderMap) -> Response {
        if let Some(refused) = twilio_refusal(&headers) {
            return refused;
        }
        axum::Json(
            json!({"available_phone_numbers": [{"phone_number": "+14155550142", "region": "CA"}]}),
        )
        .into_response()
    }
    async fn list(
        State(fake): State<Arc<FakeTwilio>>,
        headers: HeaderMap,
        Query(q): Query<FormPairs>,
    ) -> Response {
        if let Some(refused) = twilio_refusal(&headers) {
            return refused;
        }
        let found: Vec<Value> = fake
            .numbers
            .lock()
            .unwrap()
            .iter()
            .filter(|n| form_field(&q, "FriendlyName").is_none_or(|f| n["friendly_name"] == f))
            .filter(|n| form_field(&q, "PhoneNumber").is_none_or(|p| n["phone_number"] == p))
            .cloned()
            .collect();
        axum::Json(json!({"incoming_phone_numbers": found})).into_response()
    }
    async fn buy(
        State(fake): State<Arc<FakeTwilio>>,
        headers: HeaderMap,
        Form(form): Form<FormPairs>,
    ) -> Response {
        if let Some(refused) = twilio_refusal(&headers) {
            return refused;
        }
        fake.purchases
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let number = json!({
            "sid": "PN0123456789abcdef0123456789abcdef",
            "phone_number": form_field(&form, "PhoneNumber"),
            "friendly_name": form_field(&form, "FriendlyName"),
            "voice_url": form_field(&form, "VoiceUrl"),
            "status_callback": form_field(&form, "StatusCallback")
        });
        fake.numbers.lock().unwrap().push(number.clone());
        (axum::http::StatusCode::CREATED, axum::Json(number)).into_response()
    }
    async fn one(
        State(fake): State<Arc<FakeTwilio>>,
        headers: HeaderMap,
        Path((_, sid)): Path<(String, String)>,
    ) -> Response {
        if let Some(refused) = twilio_refusal(&headers) {
            return refused;
        }
        let sid = sid.trim_end_matches(".json");
        match fake
            .numbers
            .lock()
            .unwrap()
            .iter()
            .find(|n| n["sid"] == sid)
        {
            Some(n) => axum::Json(n.clone()).into_response(),
            None => (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(json!({"code": 20404, "message": "not found", "status": 404})),
            )
                .into_response(),
        }
    }

    let fake = Arc::new(FakeTwilio::default());
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/AvailablePhoneNumbers/{country}/Local.json",
            get(available),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
            get(list).post(buy),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers/{pn}",
            get(one),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/2010-04-01", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, fake)
}

/// `POST` with an `Idempotency-Key`, as a client retrying after a timeout does.
async fn post_with_key(
    gateway: &Gateway,
    path: &str,
    token: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", gateway.url))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Places a call to `to` and returns what the agent said first, from the call's transcript
/// once the runtime's events have completed the record.
async fn first_words(gateway: &Gateway, token: &str, tenant: &str, to: &str) -> String {
    let report = call::run(
        &call_options(&gateway.url, to, 0.8),
        None,
        &Progress::new(false),
    )
    .await
    .unwrap();
    assert_eq!(report.tenant.as_deref(), Some(tenant));
    let record = completed_call(gateway, token, tenant, &report.call_sid).await;
    let (_, transcript) = api(
        gateway,
        reqwest::Method::GET,
        record["transcript"].as_str().unwrap(),
        token,
        None,
    )
    .await;
    transcript["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["role"] == "agent")
        .and_then(|t| t["text"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no agent turn in {transcript}"))
}

/// Which agent the operator's `numbers.json` (the runtime's number → agent map in the agent
/// ConfigMap) names for `e164`.
async fn configured_agent(kube: &kube::Client, namespace: &str, e164: &str) -> Option<String> {
    let maps: Api<ConfigMap> = Api::namespaced(kube.clone(), namespace);
    let map = maps
        .get_opt(switchboard_operator::builders::runtime::AGENT_CONFIG_MAP)
        .await
        .ok()??;
    let numbers: BTreeMap<String, String> =
        serde_json::from_str(map.data?.get(switchboard_crds::agents::NUMBERS_FILE)?).ok()?;
    numbers.get(e164).cloned()
}

/// What of a Tenant the gateway must never change when it did not create it: the spec, labels,
/// annotations and the field ownership of everything but status.
fn owned_parts(tenant: &Tenant) -> Value {
    let managed: Vec<Value> = tenant
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref().unwrap_or_default().is_empty())
        .map(|m| json!({"manager": m.manager, "fields": m.fields_v1.as_ref().map(|f| f.0.clone())}))
        .collect();
    json!({"spec": tenant.spec, "labels": tenant.metadata.labels,
           "annotations": tenant.metadata.annotations, "managed": managed})
}

/// Issue 14: a Tenant applied with kubectl (as GitOps does), naming its owner, is a real
/// tenant: the operator builds its stack, the gateway adopts it, the named owner signs up and
/// finds it; a signup with the same company name gets another slug and leaves the Tenant
/// untouched. Its runtime runs from its namespace's objects, kept in step like the kubelet
/// does; a number bought for a named agent (the purchase retried with one Idempotency-Key:
/// one PhoneNumber, one purchase) is answered by that agent, and after `PATCH`ing the number
/// to the default agent, by the default agent. The tenant's own Twilio account stored through
/// the API becomes the Tenant's `spec.carrier.credentialsSecretRef` and buys its next number
/// (issue 14's carrier item, with issue 18's retried purchase again). A suspension set with
/// kubectl survives gateway writes.
async fn manifest_tenant(
    gateway: &Gateway,
    kube: &kube::Client,
    sandbox: &SandboxCarrier,
    twilio: &FakeTwilio,
) {
    use kube::api::{Patch, PatchParams};
    let tenants: Api<Tenant> = Api::all(kube.clone());
    tenants
        .patch(
            "globex",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(
                json!({"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
                "metadata": {"name": "globex"},
                "spec": {"displayName": "Globex", "plan": "starter",
                         "owners": [{"email": "ops@globex.example"}]}}),
            ),
        )
        .await
        .unwrap();
    eventually(30, "the kubectl Tenant to be Ready", || {
        let tenants = tenants.clone();
        async move {
            let status = tenants.get_opt("globex").await.ok()??.status?;
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(())
        }
    })
    .await;

    // Its owner signs up (under another company) and verifies: the tenant is theirs.
    let (_, owner) = signup_verified(gateway, "ops@globex.example", "Ops Team").await;
    eventually(30, "the owner to see the kubectl tenant", || {
        let owner = owner.clone();
        async move {
            let (_, listed) = api(
                gateway,
                reqwest::Method::GET,
                "/api/v1/tenants",
                &owner,
                None,
            )
            .await;
            listed["items"]
                .as_array()?
                .iter()
                .any(|m| m["slug"] == "globex" && m["role"] == "owner")
                .then_some(())
        }
    })
    .await;
    // The gateway pointed the runtime at its provider keys (the one field it claimed).
    let adopted = eventually(30, "the gateway's providerSecretRef", || {
        let tenants = tenants.clone();
        async move {
            let tenant = tenants.get_opt("globex").await.ok()??;
            tenant.spec.provider_secret_ref.is_some().then_some(tenant)
        }
    })
    .await;

    // A signup named like it gets another slug; the Tenant stays as it was.
    let before = owned_parts(&adopted);
    let (other, _) = signup_verified(gateway, "someone@else.example", "Globex").await;
    assert_eq!(other, "globex-2");
    eventually(30, "the colliding signup's own Tenant", || {
        let tenants = tenants.clone();
        async move { tenants.get_opt("globex-2").await.ok()? }
    })
    .await;
    let after = owned_parts(&tenants.get("globex").await.unwrap());
    assert_eq!(
        before, after,
        "the kubectl Tenant is untouched by the colliding signup"
    );

    // Its runtime, started as the kubelet would once the gateway has written its credential,
    // and kept in step with the namespace's objects from then on: what follows reaches it
    // through the ConfigMap and Secrets, never by a restart.
    let namespace = format!("{PREFIX}globex");
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), &namespace);
    eventually(30, "the kubectl tenant's runtime-credential Secret", || {
        let secrets = secrets.clone();
        async move {
            secrets
                .get_opt(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET)
                .await
                .ok()?
        }
    })
    .await;
    let endpoint = tenants
        .get("globex")
        .await
        .unwrap()
        .status
        .and_then(|s| s.runtime_endpoint)
        .unwrap();
    let runtime = start_runtime(kube, &namespace).await;
    gateway.state.runtime_addresses.insert(
        endpoint.strip_prefix("http://").unwrap().to_owned(),
        runtime.address,
    );

    // A named agent, and a number it answers, bought with an Idempotency-Key by a client that
    // retries twice (its answers lost): one PhoneNumber, one purchase at the carrier.
    let (status, created) = api(
        gateway,
        reqwest::Method::POST,
        "/api/v1/tenants/globex/agents",
        &owner,
        Some(json!({"name": "sales", "greeting": GLOBEX_SALES})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let numbers = "/api/v1/tenants/globex/numbers";
    let phone_numbers: Api<PhoneNumber> = Api::namespaced(kube.clone(), &namespace);
    let mut names = Vec::new();
    for _ in 0..3 {
        let (status, bought) = post_with_key(
            gateway,
            numbers,
            &owner,
            "globex-sales-line",
            json!({"areaCode": "555", "agent": "sales"}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{bought}");
        assert_eq!(bought["agent"], "sales", "{bought}");
        names.push(bought["name"].as_str().unwrap().to_owned());
    }
    assert!(names.iter().all(|n| *n == names[0]), "{names:?}");
    let objects = phone_numbers.list(&Default::default()).await.unwrap().items;
    assert_eq!(objects.len(), 1, "one PhoneNumber for three requests");
    let sales_line = eventually(30, "the sales number to be routed", || {
        let owner = owner.clone();
        let name = names[0].clone();
        async move {
            let (_, listed) = api(gateway, reqwest::Method::GET, numbers, &owner, None).await;
            let item = listed["items"]
                .as_array()?
                .iter()
                .find(|i| i["name"] == name.as_str())?
                .clone();
            (item["status"] == "Ready")
                .then(|| item["e164"].as_str().map(str::to_owned))
                .flatten()
        }
    })
    .await;
    assert_eq!(sandbox.purchase_count(), 1, "one purchase at the carrier");

    // The operator names the agent in the runtime's number map, the volume refresh brings it
    // to the running runtime, and the call is answered by the number's agent.
    eventually(30, "the running runtime to know the number's agent", || {
        let config = runtime.config.clone();
        let line = sales_line.clone();
        async move {
            let snapshot = config.snapshot();
            (snapshot.numbers.get(&line).map(String::as_str) == Some("sales")
                && snapshot.agents.contains_key("sales"))
            .then_some(())
        }
    })
    .await;
    assert_eq!(
        configured_agent(kube, &namespace, &sales_line)
            .await
            .as_deref(),
        Some("sales")
    );
    assert_eq!(
        first_words(gateway, &owner, "globex", &sales_line).await,
        GLOBEX_SALES
    );

    // The number's agent changed through the API: an unknown agent is refused naming the
    // field; back to the default agent, the next call hears the default agent.
    let line_path = format!("{numbers}/{sales_line}");
    let (status, refused) = api(
        gateway,
        reqwest::Method::PATCH,
        &line_path,
        &owner,
        Some(json!({"agent": "nobody"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], "agent", "{refused}");
    let (status, changed) = api(
        gateway,
        reqwest::Method::PATCH,
        &line_path,
        &owner,
        Some(json!({"agent": "default"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["agent"], Value::Null, "{changed}");
    let object = phone_numbers.get(&names[0]).await.unwrap();
    assert_eq!(object.spec.agent, None, "PhoneNumber.spec.agent cleared");
    assert_eq!(
        object.spec.area_code.as_deref(),
        Some("555"),
        "the rest kept"
    );
    eventually(30, "the running runtime to drop the number's agent", || {
        let config = runtime.config.clone();
        let line = sales_line.clone();
        async move { (!config.snapshot().numbers.contains_key(&line)).then_some(()) }
    })
    .await;
    let (_, default_agent) = api(
        gateway,
        reqwest::Method::GET,
        "/api/v1/tenants/globex/agents/default",
        &owner,
        None,
    )
    .await;
    let default_greeting = default_agent["greeting"].as_str().unwrap().to_owned();
    assert_ne!(default_greeting, GLOBEX_SALES);
    assert_eq!(
        first_words(gateway, &owner, "globex", &sales_line).await,
        default_greeting
    );

    // The tenant's own Twilio account, stored through the credentials API, becomes its
    // carrier: the gateway writes the account into the Secret `carrier-credentials` and points
    // the Tenant's `spec.carrier.credentialsSecretRef` at it; the operator buys the next
    // number with it (the local Twilio server accepts only that account's credentials).
    let (status, stored) = api(
        gateway,
        reqwest::Method::POST,
        "/api/v1/tenants/globex/credentials",
        &owner,
        Some(
            json!({"provider": "twilio", "label": "main", "secret": GLOBEX_TWILIO_TOKEN,
                    "metadata": {"account_sid": GLOBEX_TWILIO_SID}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let carrier = eventually(
        30,
        "the Tenant's carrier to name the tenant's account",
        || {
            let tenants = tenants.clone();
            async move {
                let carrier = tenants.get_opt("globex").await.ok()??.spec.carrier;
                carrier.credentials_secret_ref.is_some().then_some(carrier)
            }
        },
    )
    .await;
    assert_eq!(carrier.kind, switchboard_crds::CarrierKind::Twilio);
    let secret_name = carrier.credentials_secret_ref.unwrap();
    let account = eventually(30, "the carrier credentials Secret", || {
        let secrets = secrets.clone();
        let name = secret_name.clone();
        async move { secrets.get_opt(&name).await.ok()??.data }
    })
    .await;
    let text = |key: &str| String::from_utf8(account[key].0.clone()).unwrap();
    assert_eq!(account.len(), 2, "{:?}", account.keys().collect::<Vec<_>>());
    assert_eq!(text("accountSid"), GLOBEX_TWILIO_SID);
    assert_eq!(text("authToken"), GLOBEX_TWILIO_TOKEN);
    let mut twilio_names = Vec::new();
    for _ in 0..3 {
        let (status, bought) = post_with_key(
            gateway,
            numbers,
            &owner,
            "globex-own-line",
            json!({"areaCode": "415"}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{bought}");
        twilio_names.push(bought["name"].as_str().unwrap().to_owned());
    }
    assert!(twilio_names.iter().all(|n| *n == twilio_names[0]));
    let own_line = eventually(30, "the number bought on the tenant's account", || {
        let owner = owner.clone();
        let name = twilio_names[0].clone();
        async move {
            let (_, listed) = api(gateway, reqwest::Method::GET, numbers, &owner, None).await;
            let item = listed["items"]
                .as_array()?
                .iter()
                .find(|i| i["name"] == name.as_str())?
                .clone();
            (item["status"] == "Ready").then_some(item)
        }
    })
    .await;
    assert_eq!(own_line["carrier"], "twilio", "{own_line}");
    assert_eq!(own_line["e164"], "+14155550142", "{own_line}");
    assert_eq!(
        twilio.purchases.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one purchase on the tenant's Twilio account"
    );
    assert_eq!(
        phone_numbers
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        sandbox.purchase_count(),
        1,
        "nothing more bought on the sandbox"
    );

    // A suspension set with kubectl survives the owner's edit and reaches the gateway.
    tenants
        .patch(
            "globex",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspended": true}})),
        )
        .await
        .unwrap();
    let (status, edited) = api(
        gateway,
        reqwest::Method::PATCH,
        "/api/v1/tenants/globex",
        &owner,
        Some(json!({"agent": {"greeting": "Globex, how can we help?"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    let tenant = tenants.get("globex").await.unwrap();
    assert!(tenant.spec.suspended, "kubectl's suspension stays");
    assert_eq!(tenant.spec.agent.greeting, "Globex, how can we help?");
    eventually(30, "the gateway to see the suspension", || {
        let owner = owner.clone();
        async move {
            let (_, view) = api(
                gateway,
                reqwest::Method::GET,
                "/api/v1/tenants/globex",
                &owner,
                None,
            )
            .await;
            (view["suspended"] == true).then_some(())
        }
    })
    .await;
    runtime.stop.cancel();
}

/// Verifies `email` with the token the gateway mailed it.
async fn verify_email(gateway: &Gateway, email: &str) {
    let mail = gateway
        .mailer
        .sent()
        .into_iter()
        .rev()
        .find(|m| m.to == email && m.body.contains("token="))
        .expect("verification mail");
    let start = mail.body.find("token=").unwrap() + "token=".len();
    let token = mail.body[start..].split_whitespace().next().unwrap();
    let verified = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/verify-email", gateway.url))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
}

async fn completed_call(gateway: &Gateway, token: &str, tenant: &str, call_sid: &str) -> Value {
    let path = format!("/api/v1/tenants/{tenant}/calls");
    eventually(20, "the runtime's events to complete the call", || {
        let path = path.clone();
        async move {
            let (status, page) = api(gateway, reqwest::Method::GET, &path, token, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["items"]
                .as_array()?
                .iter()
                .find(|c| c["carrierCallId"] == call_sid && c["status"] == "completed")
                .filter(|c| c["turns"].as_i64().unwrap_or(0) >= 1)
                .cloned()
        }
    })
    .await
}

/// The whole flow on one database.
async fn kubernetes_mode_end_to_end(backend: &str, database_url: &str) {
    println!("e2e_kubernetes: running on {backend}");
    let cluster = in_memory_api(Vec::new(), Vec::new(), WriteCounter::default()).await;
    // Like a real API server: nothing lands in a tenant namespace before the operator made it.
    cluster.require_namespaces();
    let kube = cluster.uncounted_client();
    let simulator = simulate_cluster(
        &cluster,
        Churn {
            step: Duration::from_millis(20),
            rest_updates_per_second: 0,
        },
    );
    let mut gateway = Gateway::start(database_url, cluster.client.clone()).await;
    // The operator's sandbox account (its purchases counted) and the kubectl tenant's own
    // Twilio account on a local server.
    let sandbox = SandboxCarrier::in_memory();
    let (twilio_base_url, twilio) = start_fake_twilio().await;
    let operator = start_operator_with(
        &cluster,
        &gateway.url,
        None,
        Carriers {
            sandbox: sandbox.clone(),
            twilio_base_url,
            ..Carriers::default()
        },
    );

    // Sign up: the gateway applies the Tenant; the operator builds its stack.
    let signup = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/signup", gateway.url))
        .json(&json!({"email": "owner@example.com", "password": PASSWORD, "name": "Ada Owner", "company": "Acme Voice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    let signup: Value = signup.json().await.unwrap();
    let slug = signup["tenant"]["slug"].as_str().unwrap().to_owned();
    let token = signup["tokens"]["accessToken"].as_str().unwrap().to_owned();
    let namespace = format!("{PREFIX}{slug}");
    assert_eq!(signup["tenant"]["namespace"], namespace.as_str());
    // An unverified signup costs the cluster nothing; verifying the address creates the Tenant.
    let tenants: Api<Tenant> = Api::all(kube.clone());
    assert!(
        tenants.get_opt(&slug).await.unwrap().is_none(),
        "no Tenant before the owner's address is verified"
    );
    verify_email(&gateway, "owner@example.com").await;

    let endpoint = eventually(30, "the Tenant to be Ready", || {
        let tenants = tenants.clone();
        let slug = slug.clone();
        async move {
            let tenant = tenants.get_opt(&slug).await.ok()??;
            let status = tenant.status?;
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(status.runtime_endpoint?)
        }
    })
    .await;
    assert_eq!(
        endpoint,
        format!("http://voice-runtime.{namespace}.svc.cluster.local:8080"),
        "the operator publishes the runtime endpoint under the configured prefix"
    );
    let (status, view) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/api/v1/tenants/{slug}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["readiness"]["ready"], true, "{view}");

    manifest_tenant(&gateway, &kube, &sandbox, &twilio).await;

    // The runtime credential is in the namespace from the start (no provider key stored).
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), &namespace);
    eventually(30, "the runtime-credential Secret", || {
        let secrets = secrets.clone();
        async move {
            secrets
                .get_opt(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET)
                .await
                .ok()?
        }
    })
    .await;
    assert!(
        secrets.get_opt("provider-keys").await.unwrap().is_some(),
        "the provider-keys Secret is written with it"
    );

    // The tenant's runtime, from its namespace's objects; the cluster DNS's part: its
    // published endpoint name resolves to it.
    let runtime = start_runtime(&kube, &namespace).await;
    let host_port = endpoint.strip_prefix("http://").unwrap().to_owned();
    gateway
        .state
        .runtime_addresses
        .insert(host_port, runtime.address);

    // Buy a sandbox number: the gateway applies a PhoneNumber, the operator buys and routes it.
    let numbers = format!("/api/v1/tenants/{slug}/numbers");
    let (status, bought) = api(
        &gateway,
        reqwest::Method::POST,
        &numbers,
        &token,
        Some(json!({"areaCode": "555"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{bought}");
    let number = eventually(30, "the number to be Ready", || {
        let gateway = &gateway;
        let numbers = numbers.clone();
        let token = token.clone();
        async move {
            let (_, listed) = api(gateway, reqwest::Method::GET, &numbers, &token, None).await;
            let item = listed["items"].as_array()?.first()?.clone();
            (item["status"] == "Ready")
                .then(|| item["e164"].as_str().map(str::to_owned))
                .flatten()
        }
    })
    .await;

    // A call through the voice webhook and the media proxy.
    let report = call::run(
        &call_options(&gateway.url, &number, 1.2),
        None,
        &Progress::new(false),
    )
    .await
    .unwrap();
    assert_eq!(report.tenant.as_deref(), Some(slug.as_str()));
    assert!(report.agent_messages > 0, "the agent sent no audio");
    assert!(
        report.response_latency_ms.is_some(),
        "the agent did not answer the caller's turn: {:?}",
        report.timeline
    );
    let record = completed_call(&gateway, &token, &slug, &report.call_sid).await;
    assert_eq!(record["to"], number.as_str());
    assert_eq!(record["direction"], "inbound");
    let (_, transcript) = api(
        &gateway,
        reqwest::Method::GET,
        record["transcript"].as_str().unwrap(),
        &token,
        None,
    )
    .await;
    assert!(
        !transcript["items"].as_array().unwrap().is_empty(),
        "{transcript}"
    );
    let (_, usage) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/api/v1/tenants/{slug}/usage"),
        &token,
        None,
    )
    .await;
    assert!(
        usage["usage"]["callMinutes"].as_i64().unwrap() >= 1,
        "{usage}"
    );
    assert!(
        usage["usage"]["sttMinutes"].as_f64().unwrap() > 0.0,
        "{usage}"
    );
    assert!(
        usage["usage"]["ttsCharacters"].as_i64().unwrap() > 0,
        "{usage}"
    );

    // In Kubernetes mode the shared internal token is the operator's alone: it posts no events.
    let forged = json!({"events": [{"id": "forged-1", "tenant": slug, "callId": record["id"],
        "occurredAt": "2026-11-21T10:00:00Z", "type": "transcriptTurn", "index": 99,
        "role": "caller", "text": "forged", "offsetMs": 0}]});
    let refused = reqwest::Client::new()
        .post(format!("{}/internal/v1/events", gateway.url))
        .bearer_auth(INTERNAL_TOKEN)
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // The owner rotates the runtime credential (issue 13): the old one is refused at once, and
    // the running runtime, not restarted, reports the next call with the new one, read from
    // its mounted Secret once the volume refresh has rewritten it.
    let credential_of = |secret: Secret| {
        let data = secret.data.unwrap_or_default();
        String::from_utf8(
            data[switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY]
                .0
                .clone(),
        )
        .unwrap()
    };
    let old_credential = credential_of(
        secrets
            .get(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET)
            .await
            .unwrap(),
    );
    let (status, rotated) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/api/v1/tenants/{slug}/runtime-credential/rotate"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let stale = reqwest::Client::new()
        .post(format!("{}/internal/v1/events", gateway.url))
        .bearer_auth(&old_credential)
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        StatusCode::UNAUTHORIZED,
        "the old credential is refused"
    );
    eventually(30, "the rotated credential in the Secret", || {
        let secrets = secrets.clone();
        let old = old_credential.clone();
        async move {
            let secret = secrets
                .get_opt(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET)
                .await
                .ok()??;
            (credential_of(secret) != old).then_some(())
        }
    })
    .await;
    let after_rotation = call::run(
        &call_options(&gateway.url, &number, 0.8),
        None,
        &Progress::new(false),
    )
    .await
    .unwrap();
    completed_call(&gateway, &token, &slug, &after_rotation.call_sid).await;

    // SIGTERM mid-call: readiness turns false, a new call is refused, the live call goes on
    // to its end and is recorded; then the gateway exits.
    let live_options = call_options(&gateway.url, &number, 4.0);
    let live =
        tokio::spawn(async move { call::run(&live_options, None, &Progress::new(false)).await });
    eventually(10, "the second call's media stream", || {
        let open = gateway.state.drain.open_streams();
        async move { (open == 1).then_some(()) }
    })
    .await;
    gateway.sigterm();
    eventually(5, "readiness to turn false", || {
        let url = format!("{}/readyz", gateway.url);
        async move {
            let status = reqwest::get(url).await.ok()?.status();
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
        }
    })
    .await;
    let refused = call::run(
        &call_options(&gateway.url, &number, 0.5),
        None,
        &Progress::new(false),
    )
    .await;
    assert!(refused.is_err(), "a draining gateway admitted a new call");
    let report = live.await.unwrap().unwrap();
    assert!(
        report.response_latency_ms.is_some(),
        "the call drained through SIGTERM was cut: {:?}",
        report.timeline
    );
    tokio::time::timeout(Duration::from_secs(30), &mut gateway.served)
        .await
        .expect("the gateway exits once its calls have ended")
        .unwrap()
        .unwrap();

    // The replacement gateway (same database and cluster) shows the drained call completed.
    let successor = Gateway::start(database_url, cluster.client.clone()).await;
    let drained = completed_call(&successor, &token, &slug, &report.call_sid).await;
    assert_eq!(drained["to"], number.as_str());

    operator.cancel();
    runtime.stop.cancel();
    successor.stop().await;
    for task in &gateway.background {
        task.abort();
    }
    simulator.abort();
}

/// Runs `scenario(backend, database_url)` on SQLite (a fresh file) and, when `DATABASE_URL` is
/// a Postgres URL, on Postgres in a fresh schema named after `schema`; says when Postgres did
/// not run (never skipped silently).
async fn on_both_backends(what: &str, schema: &str, scenario: impl AsyncFn(&str, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("gw.db").display());
    scenario("sqlite", &sqlite).await;
    match std::env::var("DATABASE_URL") {
        Ok(admin) if admin.starts_with("postgres") => {
            let (url, _schema) = postgres_schema::fresh_schema(&admin, schema, APP_ROLE).await;
            scenario("postgres", &url).await;
        }
        _ => println!(
            "{what}: DATABASE_URL is not a Postgres URL, so the Postgres backend did NOT run"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubernetes_mode_signup_stack_number_call_events_and_drain() {
    on_both_backends("e2e_kubernetes", "e2e_k8s", kubernetes_mode_end_to_end).await;
}

/// The runtime Deployment's replicas in `namespace` (`None` while it does not exist).
async fn runtime_replicas(kube: &kube::Client, namespace: &str) -> Option<i32> {
    let deployments: Api<Deployment> = Api::namespaced(kube.clone(), namespace);
    deployments
        .get_opt("voice-runtime")
        .await
        .ok()??
        .spec?
        .replicas
}

/// Issue 19: a platform admin's suspension reaches the Tenant (`spec.suspended`) and the
/// operator scales the tenant's runtime to zero; resuming brings it back. (A manifest holding
/// `spec.suspended` refuses the admin's write: `kube::tests::suspension_is_written_only_when_
/// the_manifest_does_not_hold_it`; this in-memory API server does not return managedFields.)
async fn admin_suspension_in_kubernetes(backend: &str, database_url: &str) {
    println!("e2e_kubernetes admin suspension: running on {backend}");
    let cluster = in_memory_api(Vec::new(), Vec::new(), WriteCounter::default()).await;
    cluster.require_namespaces();
    let kube = cluster.uncounted_client();
    let simulator = simulate_cluster(
        &cluster,
        Churn {
            step: Duration::from_millis(20),
            rest_updates_per_second: 0,
        },
    );
    let gateway = Gateway::start(database_url, cluster.client.clone()).await;
    let operator = start_operator(&cluster, &gateway.url);
    let (slug, owner) = signup_verified(&gateway, "owner@suspend.test", "Suspend Me").await;
    let (_, admin) = signup_verified(&gateway, PLATFORM_ADMIN, "Platform Ops").await;
    let namespace = format!("{PREFIX}{slug}");
    eventually(30, "the runtime Deployment with one replica", || {
        let kube = kube.clone();
        let namespace = namespace.clone();
        async move { (runtime_replicas(&kube, &namespace).await? >= 1).then_some(()) }
    })
    .await;
    // A tenant owner is no platform admin.
    let (status, _) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/api/v1/admin/tenants/{slug}/suspend"),
        &owner,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/api/v1/admin/tenants/{slug}/suspend"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tenants: Api<Tenant> = Api::all(kube.clone());
    assert!(
        tenants.get(&slug).await.unwrap().spec.suspended,
        "spec.suspended written"
    );
    eventually(30, "the operator to scale the runtime to zero", || {
        let kube = kube.clone();
        let namespace = namespace.clone();
        async move { (runtime_replicas(&kube, &namespace).await? == 0).then_some(()) }
    })
    .await;
    let (_, view) = api(
        &gateway,
        reqwest::Method::GET,
        &format!("/api/v1/tenants/{slug}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(view["suspended"], true, "{view}");

    let (status, body) = api(
        &gateway,
        reqwest::Method::POST,
        &format!("/api/v1/admin/tenants/{slug}/resume"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually(30, "the runtime to come back", || {
        let kube = kube.clone();
        let namespace = namespace.clone();
        async move { (runtime_replicas(&kube, &namespace).await? >= 1).then_some(()) }
    })
    .await;

    let (_, listed) = api(
        &gateway,
        reqwest::Method::GET,
        "/api/v1/admin/tenants",
        &admin,
        None,
    )
    .await;
    let row = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == slug.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["status"], "active", "{row}");
    assert!(!tenants.get(&slug).await.unwrap().spec.suspended);

    operator.cancel();
    gateway.stop().await;
    simulator.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubernetes_mode_admin_suspension_scales_the_runtime_to_zero() {
    on_both_backends(
        "e2e_kubernetes admin suspension",
        "e2e_k8s_adm",
        admin_suspension_in_kubernetes,
    )
    .await;
}

/// The tenant's language model in the campaign test: an OpenAI-compatible chat-completions
/// server on loopback that, like the runtime's provider tests' survey model, thanks the
/// caller and calls `record_answer` for the `rating` question with the caller's transcribed
/// words as `raw` — only when the caller said something, so an answer exists only if the
/// callee's speech reached the runtime and was heard.
#[derive(Clone, Default)]
struct SurveyModel {
    requests: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl SurveyModel {
    /// Serves it; returns its OpenAI base URL (`…/v1`).
    async fn start(&self) -> String {
        let app = axum::Router::new()
            .route(
                "/v1/chat/completions",
                axum::routing::post(Self::chat_completions),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    async fn chat_completions(
        axum::extract::State(model): axum::extract::State<Self>,
        axum::Json(request): axum::Json<Value>,
    ) -> axum::response::Response {
        model.requests.lock().unwrap().push(request.clone());
        let heard = request["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        let sse = |data: Value| format!("data: {data}\n\n");
        let mut body =
            sse(json!({"choices": [{"index": 0, "delta": {"content": "Thank you, noted."}}]}));
        if !heard.trim().is_empty() {
            let arguments = json!({"field": "rating", "raw": heard, "value": 4}).to_string();
            body.push_str(&sse(
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "call_1", "type": "function",
                 "function": {"name": "record_answer", "arguments": arguments}}]}}]}),
            ));
        }
        body.push_str("data: [DONE]\n\n");
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(axum::body::Body::from(body))
            .unwrap()
    }
}

/// Issue 13: a campaign call whose survey answer is recorded, in Kubernetes mode with the
/// gateway's sandbox carrier (`--sandbox-carrier`). The campaign is created through the API
/// for the signup tenant → Campaign → the operator registers it and publishes its script →
/// contacts uploaded → the gateway's dialer places the call through the sandbox → the
/// sandbox's speaking callee fetches the answer URL, streams through the gateway's media
/// proxy to the tenant's runtime, hears the greeting out and answers in the builtin voice →
/// the runtime transcribes it, its language model records the answer, and the `surveyAnswer`
/// event (sent with the tenant's runtime credential) lands in the campaign's results; the
/// call record is completed by the runtime's events.
async fn campaign_in_kubernetes(backend: &str, database_url: &str) {
    println!("e2e_kubernetes campaign: running on {backend}");
    let model = SurveyModel::default();
    let model_url = model.start().await;
    let cluster = in_memory_api(Vec::new(), Vec::new(), WriteCounter::default()).await;
    cluster.require_namespaces();
    let kube = cluster.uncounted_client();
    let simulator = simulate_cluster(
        &cluster,
        Churn {
            step: Duration::from_millis(20),
            rest_updates_per_second: 0,
        },
    );
    let plan = json!({"free": {"campaigns": true, "monthlyCalls": 100, "monthlyMinutes": 1000}})
        .to_string();
    let gateway = Gateway::start_with(
        database_url,
        cluster.client.clone(),
        &[
            "--sandbox-carrier",
            "true",
            // The tenant's model lives on loopback.
            "--outbound-allow-private",
            "true",
            "--plan-limits",
            &plan,
        ],
    )
    .await;
    let operator = start_operator_with(&cluster, &gateway.url, Some(&plan), Carriers::default());
    let (slug, token) = signup_verified(&gateway, "owner@campaign.test", "Campaign Co").await;
    let namespace = format!("{PREFIX}{slug}");
    let tenants: Api<Tenant> = Api::all(kube.clone());
    let endpoint = eventually(30, "the Tenant to be Ready", || {
        let tenants = tenants.clone();
        let slug = slug.clone();
        async move {
            let status = tenants.get_opt(&slug).await.ok()??.status?;
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(status.runtime_endpoint?)
        }
    })
    .await;

    // The tenant's agent thinks with its model (speech in and out stay builtin).
    let tenant_path = format!("/api/v1/tenants/{slug}");
    let (status, edited) = api(
        &gateway,
        reqwest::Method::PATCH,
        &tenant_path,
        &token,
        Some(
            json!({"agent": {"llm": {"provider": "openai-compatible", "baseUrl": model_url,
            "model": "survey-model"}}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");

    // A sandbox number, bought by the operator and routed.
    let numbers = format!("/api/v1/tenants/{slug}/numbers");
    let (status, bought) = api(
        &gateway,
        reqwest::Method::POST,
        &numbers,
        &token,
        Some(json!({"areaCode": "555"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{bought}");
    let (number_name, number) = eventually(30, "the number to be Ready", || {
        let gateway = &gateway;
        let numbers = numbers.clone();
        let token = token.clone();
        async move {
            let (_, listed) = api(gateway, reqwest::Method::GET, &numbers, &token, None).await;
            let item = listed["items"].as_array()?.first()?.clone();
            (item["status"] == "Ready").then_some((
                item["name"].as_str()?.to_owned(),
                item["e164"].as_str()?.to_owned(),
            ))
        }
    })
    .await;

    // The campaign, through the API: the gateway applies the Campaign, the operator registers
    // it with the gateway and publishes its script into the runtime's ConfigMap.
    let campaign = format!("/api/v1/tenants/{slug}/campaigns/spring");
    let (status, applied) = api(
        &gateway,
        reqwest::Method::PUT,
        &campaign,
        &token,
        Some(json!({
            "fromNumber": number_name,
            "contacts": {"uploaded": true},
            "schedule": {"timeZone": "UTC", "windowStart": "00:00", "windowEnd": "23:59", "days": []},
            "pacing": {"maxConcurrent": 1, "callsPerMinute": 10},
            "retry": {"maxAttempts": 1, "backoffSeconds": 60, "retryOn": []},
            "agent": {"greeting": "Hi, a quick survey.", "questions": [
                {"field": "rating", "text": "From one to five, how happy are you with us?",
                 "answerType": "number"}]},
        })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{applied}");
    let config_maps: Api<ConfigMap> = Api::namespaced(kube.clone(), &namespace);
    eventually(
        30,
        "the agent ConfigMap with the model and the script",
        || {
            let config_maps = config_maps.clone();
            let model_url = model_url.clone();
            async move {
                let data = config_maps
                    .get_opt(switchboard_operator::builders::runtime::AGENT_CONFIG_MAP)
                    .await
                    .ok()??
                    .data?;
                let script = data.get(switchboard_crds::agents::CAMPAIGNS_FILE)?;
                let agent = data.get(switchboard_crds::agents::AGENT_FILE)?;
                (script.contains("spring") && agent.contains(&model_url)).then_some(())
            }
        },
    )
    .await;

    // The runtime, from its namespace's objects (the model is on loopback, so private
    // addresses are allowed); the cluster DNS's part as in the other test.
    let runtime = start_runtime_with(&kube, &namespace, true).await;
    gateway.state.runtime_addresses.insert(
        endpoint.strip_prefix("http://").unwrap().to_owned(),
        runtime.address,
    );

    // One contact, uploaded once the operator has registered the campaign.
    let contacts_url = format!("{}{campaign}/contacts", gateway.url);
    eventually(30, "the campaign to take contacts", || {
        let contacts_url = contacts_url.clone();
        let token = token.clone();
        async move {
            let reply = reqwest::Client::new()
                .post(contacts_url)
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body("id,phone,name\nann,+15552000001,Ann\n")
                .send()
                .await
                .ok()?;
            let status = reply.status();
            let body: Value = reply.json().await.unwrap_or(Value::Null);
            (status == StatusCode::OK).then_some(())?;
            assert_eq!(body["accepted"], 1, "{body}");
            Some(())
        }
    })
    .await;

    // The dialer, as the gateway's workers run it (`SWITCHBOARD_DIALER`).
    let dialer = switchboard_gateway::dialer::Dialer::new(
        gateway.state.clone(),
        Arc::new(switchboard_gateway::dialer::clock::SystemClock),
    )
    .spawn(Duration::from_millis(200));

    let results_path = format!("{campaign}/results");
    let ann = eventually(60, "the survey answer in the campaign's results", || {
        let gateway = &gateway;
        let results_path = results_path.clone();
        let token = token.clone();
        async move {
            let (status, results) =
                api(gateway, reqwest::Method::GET, &results_path, &token, None).await;
            assert_eq!(status, StatusCode::OK, "{results}");
            let ann = results["items"].as_array()?.first()?.clone();
            (ann["state"] == "completed" && !ann["answers"]["rating"].is_null()).then_some(ann)
        }
    })
    .await;
    assert_eq!(ann["attempts"], 1, "{ann}");
    assert_eq!(ann["answers"]["rating"]["value"], 4, "{ann}");
    // The words are the runtime's transcript of the callee's speech (the builtin STT names
    // each utterance by its length): heard through the media path, not made up here.
    let raw = ann["answers"]["rating"]["raw"].as_str().unwrap_or_default();
    assert!(raw.starts_with("[utterance"), "{ann}");

    // The call record: outbound from the campaign's number, completed by the runtime's events.
    let call_id = ann["lastCallId"].as_str().unwrap().to_owned();
    let record = eventually(20, "the campaign call's record to be completed", || {
        let gateway = &gateway;
        let path = format!("/api/v1/tenants/{slug}/calls");
        let token = token.clone();
        let call_id = call_id.clone();
        async move {
            let (_, page) = api(gateway, reqwest::Method::GET, &path, &token, None).await;
            page["items"]
                .as_array()?
                .iter()
                .find(|c| c["id"] == call_id.as_str() && c["status"] == "completed")
                .cloned()
        }
    })
    .await;
    assert_eq!(record["direction"], "outbound", "{record}");
    assert_eq!(record["from"], number.as_str(), "{record}");
    assert!(record["turns"].as_i64().unwrap_or(0) >= 2, "{record}");

    // The model was given the campaign's script and the tool to record answers with.
    let request = model.requests.lock().unwrap().first().cloned().unwrap();
    let system = request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        system.contains("[rating, Number] From one to five"),
        "{system}"
    );
    assert!(
        request["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "record_answer"),
        "{request}"
    );

    dialer.abort();
    operator.cancel();
    runtime.stop.cancel();
    gateway.stop().await;
    simulator.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubernetes_mode_campaign_call_records_the_survey_answer() {
    on_both_backends(
        "e2e_kubernetes campaign",
        "e2e_k8s_camp",
        campaign_in_kubernetes,
    )
    .await;
}
