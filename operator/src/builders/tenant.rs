//! A Tenant's whole stack as one value: what the Tenant controller applies.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, ResourceQuota, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use switchboard_crds::Tenant;

use super::access::role_bindings;
use super::labels::{owner_reference, tenant_labels, tenant_name};
use super::network::network_policies;
use super::quota::{limit_range, resource_quota};
use super::runtime::{
    agent_config_map, deployment, pod_disruption_budget, service, service_account,
};
use crate::config::OperatorConfig;

/// Why a Tenant cannot be turned into a stack. Reported as `Ready=False, reason=InvalidSpec`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTenant {
    /// The name is not a DNS label, or too long once prefixed.
    #[error("metadata.name {name:?}: {reason}")]
    Name {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A spec field is out of range (admission normally stops this; the operator double-checks).
    #[error("{field}: {reason}")]
    Field {
        /// Path of the field, e.g. `spec.runtime.replicas`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Every object of a tenant's stack.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantStack {
    /// The tenant namespace.
    pub namespace: Namespace,
    /// Compute and object quota.
    pub resource_quota: ResourceQuota,
    /// Container defaults and ceilings.
    pub limit_range: LimitRange,
    /// Default-deny plus the allowances.
    pub network_policies: Vec<NetworkPolicy>,
    /// The runtime's identity (no API token).
    pub service_account: ServiceAccount,
    /// The agent configuration.
    pub agent_config: ConfigMap,
    /// The runtime pods.
    pub deployment: Deployment,
    /// The runtime Service.
    pub service: Service,
    /// Present only with more than one replica.
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    /// Platform components' access to the namespace ([`super::access`]).
    pub role_bindings: Vec<RoleBinding>,
}

const MAX_NAMESPACE_LEN: usize = 63;

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAMESPACE_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks what the schema cannot: the namespace name derived from the tenant's name.
pub fn validate(tenant: &Tenant, config: &OperatorConfig) -> Result<(), InvalidTenant> {
    let name = tenant_name(tenant);
    let namespace = config.tenant_namespace(&name);
    if !is_dns_label(&name) {
        return Err(InvalidTenant::Name {
            name,
            reason: "must be a DNS label (lowercase letters, digits and '-')".into(),
        });
    }
    if !is_dns_label(&namespace) {
        return Err(InvalidTenant::Name {
            reason: format!(
                "namespace {namespace:?} would be longer than {MAX_NAMESPACE_LEN} characters"
            ),
            name,
        });
    }
    let runtime = &tenant.spec.runtime;
    if runtime.replicas < 0 {
        return Err(InvalidTenant::Field {
            field: "spec.runtime.replicas",
            reason: format!("must not be negative, got {}", runtime.replicas),
        });
    }
    if runtime.max_concurrent_calls < 1 {
        return Err(InvalidTenant::Field {
            field: "spec.runtime.maxConcurrentCalls",
            reason: format!("must be at least 1, got {}", runtime.max_concurrent_calls),
        });
    }
    if runtime
        .image
        .as_deref()
        .is_some_and(|image| image.trim().is_empty())
    {
        return Err(InvalidTenant::Field {
            field: "spec.runtime.image",
            reason: "must not be empty when set".into(),
        });
    }
    for name in tenant.spec.agents.keys() {
        if let Err(reason) = switchboard_crds::agents::check_agent_name(name) {
            return Err(InvalidTenant::Field {
                field: "spec.agents",
                reason: format!("{name:?}: {reason}"),
            });
        }
    }
    Ok(())
}

/// The tenant namespace, labelled for the tenant and for Pod Security `restricted`.
pub fn namespace(tenant: &Tenant, name: &str) -> Namespace {
    let mut labels = tenant_labels(&tenant_name(tenant));
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".into(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".into(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "voice.switchboard.dev/display-name".to_owned(),
                tenant.spec.display_name.clone(),
            )])),
            owner_references: owner_reference(tenant).map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The stack the operator maintains for `tenant`.
pub fn desired_stack(
    tenant: &Tenant,
    config: &OperatorConfig,
) -> Result<TenantStack, InvalidTenant> {
    validate(tenant, config)?;
    let ns = config.tenant_namespace(&tenant_name(tenant));
    let agent_limit = tenant.spec.effective_limits(&config.plan_limits).agents;
    let agent_config =
        agent_config_map(tenant, &ns, agent_limit).map_err(|e| InvalidTenant::Field {
            field: "spec.agent",
            reason: e.to_string(),
        })?;
    Ok(TenantStack {
        namespace: namespace(tenant, &ns),
        resource_quota: resource_quota(tenant, &ns),
        limit_range: limit_range(tenant, &ns),
        network_policies: network_policies(
            tenant,
            &ns,
            &config.gateway_namespace,
            config.monitoring_namespace.as_deref(),
        ),
        service_account: service_account(tenant, &ns),
        agent_config,
        deployment: deployment(tenant, &ns, config),
        service: service(tenant, &ns),
        pod_disruption_budget: pod_disruption_budget(tenant, &ns),
        role_bindings: role_bindings(tenant, &ns, &config.tenant_role_bindings),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::quota::plan_sizing;
    use crate::builders::runtime::{RUNTIME_METRICS_PORT, RUNTIME_PORT};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use switchboard_crds::Plan;
    use switchboard_crds::tenant::TenantSpec;

    fn tenant(name: &str, spec: TenantSpec) -> Tenant {
        let mut tenant = Tenant::new(name, spec);
        tenant.metadata.uid = Some("6b4f0d0e-0000-4000-8000-000000000001".into());
        tenant
    }

    fn spec(plan: Plan) -> TenantSpec {
        serde_json::from_value(serde_json::json!({"displayName": "Acme Inc", "plan": plan}))
            .unwrap()
    }

    fn stack(t: &Tenant) -> TenantStack {
        desired_stack(t, &OperatorConfig::default()).unwrap()
    }

    fn hard(stack: &TenantStack, key: &str) -> Quantity {
        stack
            .resource_quota
            .spec
            .as_ref()
            .unwrap()
            .hard
            .as_ref()
            .unwrap()[key]
            .clone()
    }

    #[test]
    fn namespace_is_prefixed_labelled_and_restricted() {
        let s = stack(&tenant("acme", spec(Plan::Free)));
        let labels = s.namespace.metadata.labels.unwrap();
        assert_eq!(s.namespace.metadata.name.as_deref(), Some("tenant-acme"));
        assert_eq!(labels["voice.switchboard.dev/tenant"], "acme");
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    }

    #[test]
    fn every_child_is_owned_by_the_tenant() {
        let t = tenant("acme", spec(Plan::Starter));
        let s = stack(&t);
        let metas = [
            &s.namespace.metadata,
            &s.resource_quota.metadata,
            &s.limit_range.metadata,
            &s.service_account.metadata,
            &s.agent_config.metadata,
            &s.deployment.metadata,
            &s.service.metadata,
        ];
        for meta in metas
            .into_iter()
            .chain(s.network_policies.iter().map(|p| &p.metadata))
        {
            let owners = meta.owner_references.as_ref().expect("owner references");
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0].kind, "Tenant");
            assert_eq!(owners[0].uid, t.metadata.uid.clone().unwrap());
            assert_eq!(owners[0].controller, Some(true));
            if meta.name.as_deref() != Some("tenant-acme") {
                assert_eq!(meta.namespace.as_deref(), Some("tenant-acme"));
            }
        }
    }

    #[test]
    fn quota_grows_with_the_plan() {
        let sizes: Vec<_> = [
            Plan::Free,
            Plan::Starter,
            Plan::Professional,
            Plan::Enterprise,
        ]
        .into_iter()
        .map(plan_sizing)
        .collect();
        for pair in sizes.windows(2) {
            assert!(pair[0].cpu_requests_m < pair[1].cpu_requests_m);
            assert!(pair[0].memory_requests_mi < pair[1].memory_requests_mi);
            assert!(pair[0].pods < pair[1].pods);
        }
        let free = stack(&tenant("acme", spec(Plan::Free)));
        let pro = stack(&tenant("acme", spec(Plan::Professional)));
        assert_eq!(hard(&free, "requests.cpu"), Quantity("500m".into()));
        assert_eq!(hard(&pro, "requests.cpu"), Quantity("8000m".into()));
        assert_eq!(hard(&free, "services.loadbalancers"), Quantity("0".into()));
    }

    #[test]
    fn runtime_pods_meet_the_restricted_profile() {
        let s = stack(&tenant("acme", spec(Plan::Free)));
        let pod = s.deployment.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.termination_grace_period_seconds, Some(600));
        let drain = pod.containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == "SWITCHBOARD_DRAIN_SECONDS")
            .and_then(|e| e.value.clone());
        assert_eq!(
            drain.as_deref(),
            Some("540"),
            "calls drain within the grace period"
        );
        // The runtime's events credential is the tenant's own, from the Secret the gateway
        // writes into the namespace, mounted (so a rotation reaches the running runtime) and
        // not optional (the pod does not start without it); never a plain environment value.
        let env = pod.containers[0].env.clone().unwrap();
        assert!(env.iter().all(|e| e.name != "SWITCHBOARD_INTERNAL_TOKEN"));
        let file = env
            .iter()
            .find(|e| e.name == "SWITCHBOARD_INTERNAL_TOKEN_FILE")
            .and_then(|e| e.value.clone())
            .unwrap();
        let mount = pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| file.starts_with(&format!("{}/", m.mount_path)))
            .unwrap();
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .and_then(|v| v.secret.clone())
            .unwrap();
        assert_eq!(
            volume.secret_name.as_deref(),
            Some(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET)
        );
        assert_eq!(volume.optional, Some(false));
        let item = volume.items.unwrap().pop().unwrap();
        assert_eq!(item.key, switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY);
        assert_eq!(file, format!("{}/{}", mount.mount_path, item.path));
        let pod_security = pod.security_context.unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(
            pod_security.seccomp_profile.unwrap().type_,
            "RuntimeDefault"
        );
        let container = &pod.containers[0];
        let security = container.security_context.clone().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.unwrap().drop,
            Some(vec!["ALL".to_owned()])
        );
        assert!(container.readiness_probe.is_some() && container.liveness_probe.is_some());
        assert!(container.resources.as_ref().unwrap().limits.is_some());
        assert_eq!(
            s.service_account.automount_service_account_token,
            Some(false)
        );
    }

    #[test]
    fn suspension_scales_to_zero_and_drops_the_pdb() {
        let mut t = tenant("acme", spec(Plan::Professional));
        t.spec.runtime.replicas = 3;
        let running = stack(&t);
        assert_eq!(running.deployment.spec.as_ref().unwrap().replicas, Some(3));
        assert!(running.pod_disruption_budget.is_some());

        t.spec.suspended = true;
        let suspended = stack(&t);
        assert_eq!(
            suspended.deployment.spec.as_ref().unwrap().replicas,
            Some(0)
        );
        assert!(suspended.pod_disruption_budget.is_none());
    }

    #[test]
    fn single_replica_gets_no_pdb() {
        assert!(
            stack(&tenant("acme", spec(Plan::Free)))
                .pod_disruption_budget
                .is_none()
        );
    }

    #[test]
    fn platform_components_are_bound_in_the_tenant_namespace_only() {
        use crate::builders::access::TenantRoleBinding;
        let config = OperatorConfig {
            tenant_role_bindings: vec![TenantRoleBinding {
                cluster_role: "sb-switchboard-operator-tenant".into(),
                service_account_namespace: "switchboard-system".into(),
                service_account: "sb-switchboard-operator".into(),
            }],
            ..OperatorConfig::default()
        };
        let t = tenant("acme", spec(Plan::Free));
        let s = desired_stack(&t, &config).unwrap();
        assert_eq!(s.role_bindings.len(), 1);
        let binding = &s.role_bindings[0];
        assert_eq!(binding.metadata.namespace.as_deref(), Some("tenant-acme"));
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(binding.role_ref.name, "sb-switchboard-operator-tenant");
        let subject = &binding.subjects.as_ref().unwrap()[0];
        assert_eq!(subject.kind, "ServiceAccount");
        assert_eq!(subject.name, "sb-switchboard-operator");
        assert_eq!(subject.namespace.as_deref(), Some("switchboard-system"));
        assert_eq!(
            binding.metadata.owner_references.as_ref().unwrap()[0].uid,
            t.metadata.uid.clone().unwrap()
        );
        assert!(stack(&t).role_bindings.is_empty());
    }

    #[test]
    fn only_the_monitoring_namespace_reaches_the_metrics_port() {
        let metrics_ingress = |monitoring: Option<&str>| {
            let config = OperatorConfig {
                monitoring_namespace: monitoring.map(str::to_owned),
                ..OperatorConfig::default()
            };
            let s = desired_stack(&tenant("acme", spec(Plan::Free)), &config).unwrap();
            s.network_policies
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some("allow-monitoring-to-runtime-metrics"))
                .and_then(|p| p.spec.clone())
                .and_then(|spec| spec.ingress)
                .unwrap()
        };
        // Unset: the policy admits nobody (an empty `from` would admit everyone).
        assert!(metrics_ingress(None).is_empty());
        let rules = metrics_ingress(Some("monitoring"));
        assert_eq!(rules.len(), 1);
        let from = rules[0].from.as_ref().unwrap();
        assert_eq!(from.len(), 1);
        assert_eq!(
            from[0]
                .namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "monitoring"
        );
        assert!(from[0].pod_selector.is_none() && from[0].ip_block.is_none());
        let ports = rules[0].ports.as_ref().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, Some(IntOrString::Int(RUNTIME_METRICS_PORT)));
        assert_ne!(RUNTIME_METRICS_PORT, RUNTIME_PORT);
        // The runtime serves its metrics on that port, named for the PodMonitor.
        let s = stack(&tenant("acme", spec(Plan::Free)));
        let pod = s.deployment.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        assert!(container.ports.as_ref().unwrap().iter().any(|p| {
            p.name.as_deref() == Some("metrics") && p.container_port == RUNTIME_METRICS_PORT
        }));
        assert!(container.env.as_ref().unwrap().iter().any(|e| {
            e.name == "SWITCHBOARD_METRICS_LISTEN"
                && e.value.as_deref() == Some(&*format!("0.0.0.0:{RUNTIME_METRICS_PORT}"))
        }));
    }

    #[test]
    fn network_policies_deny_by_default_and_admit_only_the_gateway() {
        let s = stack(&tenant("acme", spec(Plan::Free)));
        let by_name = |n: &str| {
            s.network_policies
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(n))
                .and_then(|p| p.spec.clone())
                .unwrap()
        };
        let deny = by_name("default-deny");
        assert_eq!(deny.pod_selector, Some(Default::default()));
        assert_eq!(
            deny.policy_types,
            Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
        );
        assert!(deny.ingress.is_none() && deny.egress.is_none());

        let ingress = by_name("allow-gateway-to-runtime").ingress.unwrap();
        let from = ingress[0].from.as_ref().unwrap();
        let ns_labels = from[0]
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap();
        assert_eq!(
            ns_labels["kubernetes.io/metadata.name"],
            "switchboard-system"
        );

        let egress = by_name("allow-runtime-egress").egress.unwrap();
        let https = &egress[0];
        assert_eq!(
            https.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(443))
        );
        let block = https.to.as_ref().unwrap()[0].ip_block.as_ref().unwrap();
        assert!(
            block
                .except
                .as_ref()
                .unwrap()
                .contains(&"10.0.0.0/8".to_owned())
        );
        assert!(
            block
                .except
                .as_ref()
                .unwrap()
                .contains(&"169.254.0.0/16".to_owned())
        );
    }

    #[test]
    fn agent_config_carries_the_agent_spec() {
        let mut t = tenant("acme", spec(Plan::Free));
        t.spec.agent.greeting = "Welcome to Acme".into();
        let s = stack(&t);
        let json = &s.agent_config.data.unwrap()["agent.json"];
        let agent: switchboard_crds::tenant::AgentSpec = serde_json::from_str(json).unwrap();
        assert_eq!(agent.greeting, "Welcome to Acme");
    }

    #[test]
    fn named_agents_reach_the_runtime_up_to_the_plans_limit() {
        let named = |greeting: &str| switchboard_crds::tenant::AgentSpec {
            greeting: greeting.into(),
            ..Default::default()
        };
        let mut t = tenant("acme", spec(Plan::Starter));
        t.spec.agents = [
            ("billing".to_owned(), named("Billing")),
            ("sales".to_owned(), named("Sales")),
        ]
        .into();
        let agents = |t: &Tenant| -> switchboard_crds::agents::NamedAgents {
            serde_json::from_str(&stack(t).agent_config.data.unwrap()["agents.json"]).unwrap()
        };
        // Starter allows 2 agents, the default included: one named agent, in name order.
        assert_eq!(agents(&t).keys().collect::<Vec<_>>(), ["billing"]);
        t.spec.plan = Plan::Professional;
        assert_eq!(agents(&t)["sales"].greeting, "Sales");
        t.spec.agents.insert("Bad Name".into(), named("x"));
        let error = desired_stack(&t, &OperatorConfig::default()).unwrap_err();
        assert!(error.to_string().starts_with("spec.agents"), "{error}");
    }

    #[test]
    fn invalid_names_and_fields_are_reported_not_built() {
        let config = OperatorConfig::default();
        let long = "a".repeat(60);
        assert!(matches!(
            desired_stack(&tenant(&long, spec(Plan::Free)), &config),
            Err(InvalidTenant::Name { .. })
        ));
        assert!(matches!(
            desired_stack(&tenant("Acme.Corp", spec(Plan::Free)), &config),
            Err(InvalidTenant::Name { .. })
        ));
        let mut t = tenant("acme", spec(Plan::Free));
        t.spec.runtime.replicas = -1;
        let err = desired_stack(&t, &config).unwrap_err();
        assert!(err.to_string().contains("spec.runtime.replicas"), "{err}");
    }

    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
}
