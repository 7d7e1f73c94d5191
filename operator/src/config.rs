//! Operator settings that shape every tenant's stack (flags and env, see `main.rs`).

use switchboard_crds::PlanOverrides;
use switchboard_crds::naming;

use crate::builders::access::TenantRoleBinding;

/// Settings the desired-state builders and controllers need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Prefix of tenant namespaces: tenant `acme` lives in `{prefix}acme`.
    pub namespace_prefix: String,
    /// Namespace the gateway runs in: the only source of ingress to tenant runtimes' media port.
    pub gateway_namespace: String,
    /// Namespace of the Prometheus that scrapes tenant runtimes, admitted to their metrics
    /// port only; `None` admits nobody.
    pub monitoring_namespace: Option<String>,
    /// In-cluster base URL of the gateway's internal API (runtime events go there).
    pub gateway_internal_url: String,
    /// Public base URL of the gateway that carriers call (webhooks on numbers point here).
    pub gateway_public_url: String,
    /// Default voice-runtime image (a Tenant may override it).
    pub runtime_image: String,
    /// The platform's plan-limit overrides (`SWITCHBOARD_PLAN_LIMITS`, the gateway's setting).
    pub plan_limits: PlanOverrides,
    /// ClusterRoles granted to platform components in every tenant namespace (see
    /// [`crate::builders::access`]); empty: none (clusters that grant access otherwise).
    pub tenant_role_bindings: Vec<TenantRoleBinding>,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            namespace_prefix: naming::DEFAULT_NAMESPACE_PREFIX.into(),
            gateway_namespace: "switchboard-system".into(),
            monitoring_namespace: None,
            gateway_internal_url: "http://switchboard-gateway.switchboard-system.svc:8080".into(),
            gateway_public_url: "https://voice.example.com".into(),
            runtime_image: format!(
                "ghcr.io/switchboard-voice/switchboard-runtime:{}",
                env!("CARGO_PKG_VERSION")
            ),
            plan_limits: PlanOverrides::default(),
            tenant_role_bindings: Vec::new(),
        }
    }
}

impl OperatorConfig {
    /// The namespace holding a tenant's stack (the gateway computes it the same way).
    pub fn tenant_namespace(&self, tenant: &str) -> String {
        naming::tenant_namespace(&self.namespace_prefix, tenant)
    }

    /// The in-cluster URL of a tenant's runtime (`status.runtimeEndpoint`).
    pub fn runtime_endpoint(&self, tenant: &str) -> String {
        naming::runtime_endpoint(&self.tenant_namespace(tenant))
    }
}
