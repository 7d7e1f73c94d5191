//! Where a tenant's stack lives: its namespace and its runtime's endpoint, derived from the
//! tenant's name and one setting, `SWITCHBOARD_NAMESPACE_PREFIX` (default `tenant-`). The
//! operator creates the namespace and Service from these names and publishes
//! `status.runtimeEndpoint`; the gateway writes provider keys, PhoneNumbers and Campaigns into
//! the namespace and proxies media to the endpoint. Both call these functions with the same
//! setting (the Helm chart passes it to both), so they cannot disagree.

/// The namespace prefix when none is configured.
pub const DEFAULT_NAMESPACE_PREFIX: &str = "tenant-";
/// Name of the runtime's Deployment and Service in a tenant namespace.
pub const RUNTIME_SERVICE: &str = "voice-runtime";
/// Port of the runtime's Service (HTTP and the media WebSocket).
pub const RUNTIME_PORT: u16 = 8080;
/// Secret in a tenant namespace holding the tenant's runtime credential: the bearer token its
/// runtime presents on the gateway's `/internal/v1/events`. The gateway issues it and writes
/// the Secret from the tenant's creation on (whether or not provider keys are stored); the
/// operator's runtime Deployment mounts it and points `SWITCHBOARD_INTERNAL_TOKEN_FILE` at the
/// file, which the runtime re-reads, so a rotated credential needs no restart.
pub const RUNTIME_CREDENTIAL_SECRET: &str = "runtime-credential";
/// Key of [`RUNTIME_CREDENTIAL_SECRET`] holding the token.
pub const RUNTIME_CREDENTIAL_KEY: &str = "token";

/// The namespace holding tenant `tenant`'s stack: `{prefix}{tenant}`.
pub fn tenant_namespace(prefix: &str, tenant: &str) -> String {
    format!("{prefix}{tenant}")
}

/// The tenant a namespace belongs to (`tenant-acme` → `acme` with prefix `tenant-`), `None`
/// for namespaces outside the prefix.
pub fn tenant_of_namespace<'a>(prefix: &str, namespace: &'a str) -> Option<&'a str> {
    namespace.strip_prefix(prefix).filter(|t| !t.is_empty())
}

/// The in-cluster base URL of the runtime Service in `namespace`
/// (`http://voice-runtime.{namespace}.svc.cluster.local:8080`).
pub fn runtime_endpoint(namespace: &str) -> String {
    format!("http://{RUNTIME_SERVICE}.{namespace}.svc.cluster.local:{RUNTIME_PORT}")
}

/// The naming setting as one value, for configuration structs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantNaming {
    /// Prefix of tenant namespaces.
    pub namespace_prefix: String,
}

impl Default for TenantNaming {
    fn default() -> Self {
        Self::new(DEFAULT_NAMESPACE_PREFIX)
    }
}

impl TenantNaming {
    /// Naming with `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            namespace_prefix: prefix.into(),
        }
    }

    /// See [`tenant_namespace`].
    pub fn namespace(&self, tenant: &str) -> String {
        tenant_namespace(&self.namespace_prefix, tenant)
    }

    /// See [`tenant_of_namespace`].
    pub fn tenant_of<'a>(&self, namespace: &'a str) -> Option<&'a str> {
        tenant_of_namespace(&self.namespace_prefix, namespace)
    }

    /// The runtime endpoint of tenant `tenant` (see [`runtime_endpoint`]).
    pub fn runtime_endpoint(&self, tenant: &str) -> String {
        runtime_endpoint(&self.namespace(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let naming = TenantNaming::new("customer-");
        assert_eq!(naming.namespace("acme"), "customer-acme");
        assert_eq!(
            naming.runtime_endpoint("acme"),
            "http://voice-runtime.customer-acme.svc.cluster.local:8080"
        );
        assert_eq!(naming.tenant_of("customer-acme"), Some("acme"));
        assert_eq!(naming.tenant_of("tenant-acme"), None);
        assert_eq!(naming.tenant_of("customer-"), None);
        assert_eq!(TenantNaming::default().namespace("acme"), "tenant-acme");
    }
}
