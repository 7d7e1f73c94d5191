//! Who may use a tenant namespace besides its runtime: the platform's own components, through
//! RoleBindings to ClusterRoles the chart defines.
//!
//! Least privilege: the operator reads Secrets (tenants' carrier credentials, Campaign contact
//! lists) and the gateway writes tenants' provider keys, but only in tenant namespaces and
//! never with `list` or `watch`. RBAC cannot scope a ClusterRoleBinding to namespaces that
//! appear at runtime, so the chart grants the Secret rules through ClusterRoles bound by a
//! RoleBinding here, in each tenant namespace (a RoleBinding to a ClusterRole grants its rules
//! in that namespace only). The operator may create these bindings because the chart gives it
//! `bind` on exactly those ClusterRoles, not because it holds the rules itself.

use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use serde::Deserialize;
use switchboard_crds::Tenant;

use super::labels::child_meta;

/// One ClusterRole granted to one ServiceAccount in every tenant namespace
/// (`SWITCHBOARD_TENANT_ROLE_BINDINGS`, a JSON list the chart writes).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantRoleBinding {
    /// The ClusterRole whose rules apply in the tenant namespace; also the binding's name.
    pub cluster_role: String,
    /// Namespace of the ServiceAccount granted them.
    pub service_account_namespace: String,
    /// The ServiceAccount granted them.
    pub service_account: String,
}

/// The RoleBindings of a tenant namespace, one per configured grant.
pub fn role_bindings(
    tenant: &Tenant,
    namespace: &str,
    grants: &[TenantRoleBinding],
) -> Vec<RoleBinding> {
    grants
        .iter()
        .map(|grant| RoleBinding {
            metadata: child_meta(tenant, namespace, &grant.cluster_role),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: grant.cluster_role.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: grant.service_account.clone(),
                namespace: Some(grant.service_account_namespace.clone()),
                ..Subject::default()
            }]),
        })
        .collect()
}
