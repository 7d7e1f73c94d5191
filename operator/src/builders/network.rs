//! NetworkPolicies of a tenant namespace: deny by default, then allow exactly what a voice
//! runtime needs.
//!
//! Ingress: the gateway's namespace to the media port; the monitoring namespace (the
//! operator's `SWITCHBOARD_MONITORING_NAMESPACE`, the chart's `monitoring.namespace`) to the
//! metrics port only. Without a monitoring namespace the metrics policy exists with no rule,
//! so unsetting it later takes the admission away on the next reconcile (nothing to prune).
//!
//! Egress beyond the "DNS and 443 outside the cluster": the runtime also reaches the
//! gateway's internal API (call events and usage), so egress to the gateway namespace on the
//! gateway port is allowed too. Nothing else in the cluster is reachable, including other tenants.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use switchboard_crds::Tenant;

use super::labels::{child_meta, runtime_selector, tenant_name};
use super::runtime::{GATEWAY_PORT, RUNTIME_METRICS_PORT, RUNTIME_PORT};

/// Private and link-local ranges: "outside the cluster" means none of these. 169.254.0.0/16
/// also keeps cloud metadata endpoints (and their credentials) out of reach.
const PRIVATE_IPV4: [&str; 5] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
];
const PRIVATE_IPV6: [&str; 2] = ["fc00::/7", "fe80::/10"];

fn namespace_selector(namespace: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            namespace.to_owned(),
        )])),
        ..LabelSelector::default()
    }
}

fn tcp_port(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        ..NetworkPolicyPort::default()
    }
}

fn policy(tenant: &Tenant, namespace: &str, name: &str, spec: NetworkPolicySpec) -> NetworkPolicy {
    NetworkPolicy {
        metadata: child_meta(tenant, namespace, name),
        spec: Some(spec),
    }
}

/// Every NetworkPolicy of the tenant namespace.
pub fn network_policies(
    tenant: &Tenant,
    namespace: &str,
    gateway_namespace: &str,
    monitoring_namespace: Option<&str>,
) -> Vec<NetworkPolicy> {
    let runtime_pods = LabelSelector {
        match_labels: Some(runtime_selector(&tenant_name(tenant))),
        ..LabelSelector::default()
    };
    let gateway_peer = NetworkPolicyPeer {
        namespace_selector: Some(namespace_selector(gateway_namespace)),
        ..NetworkPolicyPeer::default()
    };
    vec![
        policy(
            tenant,
            namespace,
            "default-deny",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            tenant,
            namespace,
            "allow-gateway-to-runtime",
            NetworkPolicySpec {
                pod_selector: Some(runtime_pods.clone()),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![gateway_peer.clone()]),
                    ports: Some(vec![tcp_port(RUNTIME_PORT)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            tenant,
            namespace,
            "allow-monitoring-to-runtime-metrics",
            NetworkPolicySpec {
                pod_selector: Some(runtime_pods.clone()),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(
                    monitoring_namespace
                        .map(|monitoring| NetworkPolicyIngressRule {
                            from: Some(vec![NetworkPolicyPeer {
                                namespace_selector: Some(namespace_selector(monitoring)),
                                ..NetworkPolicyPeer::default()
                            }]),
                            ports: Some(vec![tcp_port(RUNTIME_METRICS_PORT)]),
                        })
                        .into_iter()
                        .collect(),
                ),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            tenant,
            namespace,
            "allow-dns",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector::default()),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(namespace_selector("kube-system")),
                        pod_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "k8s-app".to_owned(),
                                "kube-dns".to_owned(),
                            )])),
                            ..LabelSelector::default()
                        }),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![
                        NetworkPolicyPort {
                            port: Some(IntOrString::Int(53)),
                            protocol: Some("UDP".into()),
                            ..NetworkPolicyPort::default()
                        },
                        tcp_port(53),
                    ]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        policy(
            tenant,
            namespace,
            "allow-runtime-egress",
            NetworkPolicySpec {
                pod_selector: Some(runtime_pods),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![
                    NetworkPolicyEgressRule {
                        to: Some(vec![
                            public_internet("0.0.0.0/0", &PRIVATE_IPV4),
                            public_internet("::/0", &PRIVATE_IPV6),
                        ]),
                        ports: Some(vec![tcp_port(443)]),
                    },
                    NetworkPolicyEgressRule {
                        to: Some(vec![gateway_peer]),
                        ports: Some(vec![tcp_port(GATEWAY_PORT)]),
                    },
                ]),
                ..NetworkPolicySpec::default()
            },
        ),
    ]
}

fn public_internet(cidr: &str, except: &[&str]) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.into(),
            except: Some(except.iter().map(|c| (*c).to_owned()).collect()),
        }),
        ..NetworkPolicyPeer::default()
    }
}
