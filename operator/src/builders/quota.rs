//! ResourceQuota and LimitRange sized from the tenant's plan.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use switchboard_crds::{Plan, Tenant};

use super::labels::child_meta;

/// Name of the ResourceQuota and LimitRange in a tenant namespace.
pub const QUOTA_NAME: &str = "tenant-quota";
/// Name of the LimitRange in a tenant namespace.
pub const LIMIT_RANGE_NAME: &str = "tenant-limits";

/// How much of the cluster one plan may use. Each plan is strictly larger than the previous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSizing {
    /// Sum of CPU requests, in millicores.
    pub cpu_requests_m: u32,
    /// Sum of memory requests, in MiB.
    pub memory_requests_mi: u32,
    /// Sum of CPU limits, in millicores.
    pub cpu_limits_m: u32,
    /// Sum of memory limits, in MiB.
    pub memory_limits_mi: u32,
    /// Pods at once (runtime replicas plus surge during rollouts).
    pub pods: u32,
    /// Default CPU request of one runtime pod, in millicores.
    pub runtime_cpu_m: u32,
    /// Default memory request of one runtime pod, in MiB.
    pub runtime_memory_mi: u32,
}

/// The sizing of `plan`.
pub fn plan_sizing(plan: Plan) -> PlanSizing {
    match plan {
        Plan::Free => PlanSizing {
            cpu_requests_m: 500,
            memory_requests_mi: 512,
            cpu_limits_m: 1000,
            memory_limits_mi: 1024,
            pods: 3,
            runtime_cpu_m: 100,
            runtime_memory_mi: 128,
        },
        Plan::Starter => PlanSizing {
            cpu_requests_m: 2000,
            memory_requests_mi: 2048,
            cpu_limits_m: 4000,
            memory_limits_mi: 4096,
            pods: 8,
            runtime_cpu_m: 250,
            runtime_memory_mi: 256,
        },
        Plan::Professional => PlanSizing {
            cpu_requests_m: 8000,
            memory_requests_mi: 8192,
            cpu_limits_m: 16000,
            memory_limits_mi: 16384,
            pods: 24,
            runtime_cpu_m: 500,
            runtime_memory_mi: 512,
        },
        Plan::Enterprise | Plan::Onprem => PlanSizing {
            cpu_requests_m: 32000,
            memory_requests_mi: 65536,
            cpu_limits_m: 64000,
            memory_limits_mi: 131072,
            pods: 100,
            runtime_cpu_m: 1000,
            runtime_memory_mi: 1024,
        },
    }
}

fn millicores(m: u32) -> Quantity {
    Quantity(format!("{m}m"))
}

fn mebibytes(mi: u32) -> Quantity {
    Quantity(format!("{mi}Mi"))
}

fn count(n: u32) -> Quantity {
    Quantity(n.to_string())
}

/// The namespace's ResourceQuota: compute by plan, and no LoadBalancers, NodePorts or volumes,
/// because a tenant's stack never needs them and each would be a way around the platform.
pub fn resource_quota(tenant: &Tenant, namespace: &str) -> ResourceQuota {
    let sizing = plan_sizing(tenant.spec.plan);
    let hard = BTreeMap::from([
        ("requests.cpu".to_owned(), millicores(sizing.cpu_requests_m)),
        (
            "requests.memory".to_owned(),
            mebibytes(sizing.memory_requests_mi),
        ),
        ("limits.cpu".to_owned(), millicores(sizing.cpu_limits_m)),
        (
            "limits.memory".to_owned(),
            mebibytes(sizing.memory_limits_mi),
        ),
        ("pods".to_owned(), count(sizing.pods)),
        ("services".to_owned(), count(2)),
        ("services.loadbalancers".to_owned(), count(0)),
        ("services.nodeports".to_owned(), count(0)),
        ("persistentvolumeclaims".to_owned(), count(0)),
        ("configmaps".to_owned(), count(20)),
        ("secrets".to_owned(), count(20)),
    ]);
    ResourceQuota {
        metadata: child_meta(tenant, namespace, QUOTA_NAME),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..ResourceQuotaSpec::default()
        }),
        status: None,
    }
}

/// Defaults for containers that set no resources (a quota rejects such pods otherwise), and a
/// per-container ceiling so one pod cannot take the whole quota.
pub fn limit_range(tenant: &Tenant, namespace: &str) -> LimitRange {
    let sizing = plan_sizing(tenant.spec.plan);
    let item = LimitRangeItem {
        type_: "Container".into(),
        default_request: Some(BTreeMap::from([
            ("cpu".to_owned(), millicores(sizing.runtime_cpu_m)),
            ("memory".to_owned(), mebibytes(sizing.runtime_memory_mi)),
        ])),
        default: Some(BTreeMap::from([
            ("cpu".to_owned(), millicores(sizing.runtime_cpu_m * 2)),
            ("memory".to_owned(), mebibytes(sizing.runtime_memory_mi * 2)),
        ])),
        max: Some(BTreeMap::from([
            ("cpu".to_owned(), millicores(sizing.cpu_limits_m)),
            ("memory".to_owned(), mebibytes(sizing.memory_limits_mi)),
        ])),
        ..LimitRangeItem::default()
    };
    LimitRange {
        metadata: child_meta(tenant, namespace, LIMIT_RANGE_NAME),
        spec: Some(LimitRangeSpec { limits: vec![item] }),
    }
}

/// Requests and limits of a runtime container: the Tenant's own, else the plan's defaults.
pub fn runtime_resources(tenant: &Tenant) -> ResourceRequirements {
    if let Some(resources) = &tenant.spec.runtime.resources {
        return resources.clone();
    }
    let sizing = plan_sizing(tenant.spec.plan);
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), millicores(sizing.runtime_cpu_m)),
            ("memory".to_owned(), mebibytes(sizing.runtime_memory_mi)),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".to_owned(), millicores(sizing.runtime_cpu_m * 2)),
            ("memory".to_owned(), mebibytes(sizing.runtime_memory_mi * 2)),
        ])),
        ..ResourceRequirements::default()
    }
}
