//! The tenant's voice runtime: ServiceAccount, agent ConfigMap, Deployment, Service and PDB.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, HTTPGetAction, KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SeccompProfile, SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort,
    ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use switchboard_crds::{PhoneNumber, Tenant, agents};

use super::labels::{RUNTIME_NAME, child_meta, runtime_labels, runtime_selector, tenant_name};
use super::quota::runtime_resources;
use crate::config::OperatorConfig;

/// Port the runtime serves media WebSockets and health on (the Service's port the gateway
/// dials: see `switchboard_crds::naming`).
pub const RUNTIME_PORT: i32 = switchboard_crds::naming::RUNTIME_PORT as i32;
/// Port of the runtime's `/metrics` (container port `metrics`, which the chart's PodMonitor
/// scrapes); never the media port, so only the monitoring namespace is admitted to it.
pub const RUNTIME_METRICS_PORT: i32 = 9090;
/// Port of the gateway's internal API.
pub const GATEWAY_PORT: i32 = 8080;
/// ConfigMap holding the agent configuration (`agent.json`), mounted into the runtime.
pub const AGENT_CONFIG_MAP: &str = "switchboard-agent";
/// Secret the gateway writes the tenant's provider keys into, unless the Tenant names another.
pub const DEFAULT_PROVIDER_SECRET: &str = "provider-keys";
/// Non-root user of the runtime image (distroless `nonroot`).
const RUNTIME_UID: i64 = 65532;

/// The runtime's ServiceAccount. No token is mounted: the runtime never calls the API server.
pub fn service_account(tenant: &Tenant, namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: child_meta(tenant, namespace, RUNTIME_NAME),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The agent configuration the runtime reads (and reloads when the ConfigMap changes): the
/// default agent (`agent.json`) and the named agents (`agents.json`). The PhoneNumber
/// controller adds `numbers.json` ([`number_agents`]) and the Campaign controller
/// `campaigns.json`, each under its own field manager.
///
/// `agent_limit` is the tenant's effective `agents` limit (the default agent included): named
/// agents beyond it, in name order, are left out (calls that name them get the default
/// agent), so a plan downgrade never breaks the stack. The gateway's API refuses to create
/// more than the limit.
pub fn agent_config_map(
    tenant: &Tenant,
    namespace: &str,
    agent_limit: Option<u32>,
) -> Result<ConfigMap, serde_json::Error> {
    let agent = serde_json::to_string_pretty(&tenant.spec.agent)?;
    let allowed = agent_limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit.saturating_sub(1)).unwrap_or(usize::MAX)
    });
    let named: BTreeMap<&String, &switchboard_crds::tenant::AgentSpec> =
        tenant.spec.agents.iter().take(allowed).collect();
    let agents = serde_json::to_string_pretty(&named)?;
    Ok(ConfigMap {
        metadata: child_meta(tenant, namespace, AGENT_CONFIG_MAP),
        data: Some(BTreeMap::from([
            (agents::AGENT_FILE.to_owned(), agent),
            (agents::AGENTS_FILE.to_owned(), agents),
            ("tenant".to_owned(), tenant_name(tenant)),
        ])),
        ..ConfigMap::default()
    })
}

/// Field manager of the agent ConfigMap's `numbers.json` (applied by the PhoneNumber
/// controller next to the Tenant controller's keys).
pub const NUMBERS_FIELD_MANAGER: &str = "switchboard-operator-numbers";

/// The agent ConfigMap's `numbers.json`: the E.164 of each of the namespace's bought numbers
/// (not being deleted) that names an agent (`spec.agent`) → that agent. The runtime picks the
/// agent of a call by it. Pure: the number list in, the partial object out.
pub fn number_agents(
    namespace: &str,
    numbers: &[PhoneNumber],
) -> Result<ConfigMap, serde_json::Error> {
    let map = agents::number_agents(
        numbers
            .iter()
            .filter(|n| n.metadata.deletion_timestamp.is_none())
            .filter_map(|n| {
                let e164 = n.status.as_ref()?.e164.as_deref()?;
                Some((e164, n.spec.agent.as_deref()))
            }),
    );
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(AGENT_CONFIG_MAP.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            agents::NUMBERS_FILE.to_owned(),
            serde_json::to_string_pretty(&map)?,
        )])),
        ..ConfigMap::default()
    })
}

/// Replicas the Deployment should run: none while suspended.
pub fn desired_replicas(tenant: &Tenant) -> i32 {
    if tenant.spec.suspended {
        0
    } else {
        tenant.spec.runtime.replicas.max(0)
    }
}

fn provider_secret_name(tenant: &Tenant) -> String {
    tenant
        .spec
        .provider_secret_ref
        .clone()
        .unwrap_or_else(|| DEFAULT_PROVIDER_SECRET.to_owned())
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// Pod Security Standard `restricted`, the values its admission check demands.
/// Volume of the runtime credential Secret.
const CREDENTIAL_VOLUME: &str = "runtime-credential";
/// Where the runtime credential Secret is mounted (`SWITCHBOARD_INTERNAL_TOKEN_FILE` names
/// its `token` file).
pub const CREDENTIAL_MOUNT_PATH: &str = "/etc/switchboard/credential";

fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUNTIME_UID),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// How long the runtime lets live calls finish after SIGTERM: the grace period less a margin
/// (a tenth, at least 10 s) for flushing call events, so the kubelet never kills a draining pod.
pub fn drain_seconds(tenant: &Tenant) -> i64 {
    let grace = tenant.spec.runtime.termination_grace_period_seconds;
    (grace - (grace / 10).max(10)).max(1)
}

fn runtime_container(tenant: &Tenant, config: &OperatorConfig) -> Container {
    let name = tenant_name(tenant);
    let image = tenant
        .spec
        .runtime
        .image
        .clone()
        .unwrap_or_else(|| config.runtime_image.clone());
    Container {
        name: "runtime".into(),
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".into()),
                container_port: RUNTIME_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("metrics".into()),
                container_port: RUNTIME_METRICS_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        env: Some(vec![
            env("SWITCHBOARD_TENANT", name),
            env("SWITCHBOARD_LISTEN", format!("0.0.0.0:{RUNTIME_PORT}")),
            env(
                "SWITCHBOARD_METRICS_LISTEN",
                format!("0.0.0.0:{RUNTIME_METRICS_PORT}"),
            ),
            env("SWITCHBOARD_LOG_FORMAT", "json"),
            env(
                "SWITCHBOARD_MAX_CONCURRENT_CALLS",
                tenant.spec.runtime.max_concurrent_calls.to_string(),
            ),
            env(
                "SWITCHBOARD_DRAIN_SECONDS",
                drain_seconds(tenant).to_string(),
            ),
            env("SWITCHBOARD_AGENT_CONFIG_DIR", "/etc/switchboard/agent"),
            env("SWITCHBOARD_PROVIDER_KEYS_DIR", "/etc/switchboard/keys"),
            env(
                "SWITCHBOARD_GATEWAY_EVENTS_URL",
                format!(
                    "{}/internal/v1/events",
                    config.gateway_internal_url.trim_end_matches('/')
                ),
            ),
            // The tenant's own runtime credential, which the gateway writes into the namespace
            // when the tenant is created, read from the mounted Secret rather than the
            // environment: the kubelet refreshes a mounted Secret in place, so a rotated
            // credential reaches the running runtime without a restart (the runtime re-reads
            // the file on every delivery).
            env(
                "SWITCHBOARD_INTERNAL_TOKEN_FILE",
                format!(
                    "{CREDENTIAL_MOUNT_PATH}/{}",
                    switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY
                ),
            ),
        ]),
        resources: Some(runtime_resources(tenant)),
        readiness_probe: Some(http_probe("/readyz", 5, 2)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        security_context: Some(restricted_container_security()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "agent-config".into(),
                mount_path: "/etc/switchboard/agent".into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "provider-keys".into(),
                mount_path: "/etc/switchboard/keys".into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: CREDENTIAL_VOLUME.into(),
                mount_path: CREDENTIAL_MOUNT_PATH.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

fn runtime_volumes(tenant: &Tenant) -> Vec<Volume> {
    vec![
        Volume {
            name: "agent-config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: AGENT_CONFIG_MAP.into(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "provider-keys".into(),
            // Optional: a tenant on builtin providers has no keys, and the gateway may create
            // the Secret after the runtime starts (mounted Secrets update in place).
            secret: Some(SecretVolumeSource {
                secret_name: Some(provider_secret_name(tenant)),
                optional: Some(true),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: CREDENTIAL_VOLUME.into(),
            // Not optional: a runtime that could not report its calls must not take any (the
            // pod waits for the Secret).
            secret: Some(SecretVolumeSource {
                secret_name: Some(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET.into()),
                items: Some(vec![KeyToPath {
                    key: switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY.into(),
                    path: switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY.into(),
                    mode: None,
                }]),
                // Readable by the runtime's user and group only.
                default_mode: Some(0o440),
                optional: Some(false),
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                    "64Mi".into(),
                )),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    ]
}

/// The runtime Deployment. Config changes do not restart pods (the runtime reloads its mounted
/// config), so live calls are not cut by a prompt edit; rollouts surge before they remove.
pub fn deployment(tenant: &Tenant, namespace: &str, config: &OperatorConfig) -> Deployment {
    let name = tenant_name(tenant);
    let labels = runtime_labels(&name);
    let mut metadata = child_meta(tenant, namespace, RUNTIME_NAME);
    metadata.labels = Some(labels.clone());
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: Some(desired_replicas(tenant)),
            selector: LabelSelector {
                match_labels: Some(runtime_selector(&name)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(RUNTIME_NAME.into()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    termination_grace_period_seconds: Some(
                        tenant.spec.runtime.termination_grace_period_seconds,
                    ),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUNTIME_UID),
                        run_as_group: Some(RUNTIME_UID),
                        fs_group: Some(RUNTIME_UID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![runtime_container(tenant, config)],
                    volumes: Some(runtime_volumes(tenant)),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The runtime Service the gateway proxies media to (ClusterIP only: never exposed publicly).
pub fn service(tenant: &Tenant, namespace: &str) -> Service {
    let name = tenant_name(tenant);
    let mut metadata = child_meta(tenant, namespace, RUNTIME_NAME);
    metadata.labels = Some(runtime_labels(&name));
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(runtime_selector(&name)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: RUNTIME_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// A PodDisruptionBudget keeping all but one runtime pod up during node drains; only when
/// there is more than one replica (with one, a PDB would block drains forever).
pub fn pod_disruption_budget(tenant: &Tenant, namespace: &str) -> Option<PodDisruptionBudget> {
    if desired_replicas(tenant) <= 1 {
        return None;
    }
    let mut metadata = child_meta(tenant, namespace, RUNTIME_NAME);
    metadata.labels = Some(runtime_labels(&tenant_name(tenant)));
    Some(PodDisruptionBudget {
        metadata,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(runtime_selector(&tenant_name(tenant))),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

/// In-cluster URL of the runtime Service (`status.runtimeEndpoint`); the gateway derives the
/// same URL from the same function.
pub fn runtime_endpoint(namespace: &str) -> String {
    switchboard_crds::naming::runtime_endpoint(namespace)
}

#[cfg(test)]
mod number_agent_tests {
    use super::*;
    use switchboard_crds::{PhoneNumberSpec, PhoneNumberStatus};

    #[test]
    fn bought_numbers_that_name_an_agent_are_mapped() {
        let number = |name: &str, e164: Option<&str>, agent: Option<&str>| {
            let mut n = PhoneNumber::new(
                name,
                serde_json::from_value::<PhoneNumberSpec>(serde_json::json!({})).unwrap(),
            );
            n.spec.agent = agent.map(str::to_owned);
            n.status = Some(PhoneNumberStatus {
                e164: e164.map(str::to_owned),
                ..Default::default()
            });
            n
        };
        let numbers = [
            number("main", Some("+15550100"), Some("sales")),
            number("other", Some("+15550101"), None),
            number("pending", None, Some("sales")),
        ];
        let map = number_agents("tenant-acme", &numbers).unwrap();
        assert_eq!(map.metadata.name.as_deref(), Some(AGENT_CONFIG_MAP));
        let json: BTreeMap<String, String> =
            serde_json::from_str(&map.data.unwrap()[agents::NUMBERS_FILE]).unwrap();
        assert_eq!(
            json,
            BTreeMap::from([("+15550100".to_owned(), "sales".to_owned())])
        );
    }
}
