//! Writing tenants to Kubernetes: the `Tenant` CR (server-side apply, field manager
//! `switchboard-gateway`) and the `provider-keys` and `runtime-credential` Secrets in the
//! tenant's namespace.
//!
//! The desired objects are built by plain functions from database rows ([`desired_tenant`],
//! [`desired_provider_secret`]) and unit tested; [`KubeSync`] only sends them.
//!
//! The gateway applies just the fields it owns (display name, plan, suspension, agent,
//! provider-secret reference), so fields set by GitOps or the operator (runtime sizing,
//! carrier, limits) are left to their own managers.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};
use switchboard_crds::tenant::{CONDITION_READY, Tenant};
use switchboard_crds::{API_GROUP, API_VERSION, TENANT_LABEL};

use crate::store::credentials::CredentialRow;
use crate::store::tenants::TenantRow;

/// Field manager of every object the gateway applies.
pub const FIELD_MANAGER: &str = "switchboard-gateway";
/// Name of the Secret holding a tenant's provider keys, in the tenant's namespace.
pub const PROVIDER_SECRET_NAME: &str = "provider-keys";
/// Annotation naming the gateway's tenant id on the CR.
pub const TENANT_ID_ANNOTATION: &str = "voice.switchboard.dev/tenant-id";

/// A Kubernetes call failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The API server refused or was unreachable.
    #[error("kubernetes API error: {0}")]
    Api(#[from] kube::Error),
    /// The stored agent configuration is not valid JSON.
    #[error("stored agent configuration is not JSON: {0}")]
    Agent(#[from] serde_json::Error),
}

/// The server-side-apply body of a tenant's `Tenant` CR (only the gateway's fields).
pub fn desired_tenant(tenant: &TenantRow) -> Result<Value, serde_json::Error> {
    let agent: Value = serde_json::from_str(&tenant.agent)?;
    Ok(json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": "Tenant",
        "metadata": {
            "name": tenant.slug,
            "labels": {
                TENANT_LABEL: tenant.slug,
                "app.kubernetes.io/managed-by": FIELD_MANAGER,
            },
            "annotations": { TENANT_ID_ANNOTATION: tenant.id },
        },
        "spec": {
            "displayName": tenant.name,
            "plan": tenant.plan,
            "suspended": tenant.suspended.0,
            "agent": agent,
            "providerSecretRef": PROVIDER_SECRET_NAME,
        }
    }))
}

/// The environment-variable-style key under which a credential's secret is projected:
/// the default credential of a vendor gets the well-known name (`OPENAI_API_KEY`), others
/// `<VENDOR>_API_KEY__<LABEL>` so the runtime can pick them by label.
pub fn secret_key_for(provider: &str, label: &str, is_default: bool) -> String {
    let base = format!("{}_API_KEY", env_token(provider));
    if is_default {
        base
    } else {
        format!("{base}__{}", env_token(label))
    }
}

fn env_token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The `provider-keys` Secret of a tenant (in `namespace`, its namespace) from its credentials
/// and their decrypted secrets.
pub fn desired_provider_secret(
    namespace: &str,
    tenant: &TenantRow,
    credentials: &[(CredentialRow, Vec<u8>)],
) -> Secret {
    let data: BTreeMap<String, ByteString> = credentials
        .iter()
        .map(|(row, secret)| {
            (
                secret_key_for(&row.provider, &row.label, row.is_default.0),
                ByteString(secret.clone()),
            )
        })
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(PROVIDER_SECRET_NAME.into()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (TENANT_LABEL.to_owned(), tenant.slug.clone()),
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    FIELD_MANAGER.to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The `runtime-credential` Secret of a tenant (in `namespace`, its namespace): the token its
/// runtime presents on `/internal/v1/events` (see [`crate::runtime_credential`]).
pub fn desired_runtime_credential_secret(
    namespace: &str,
    tenant: &TenantRow,
    token: &str,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET.into()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (TENANT_LABEL.to_owned(), tenant.slug.clone()),
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    FIELD_MANAGER.to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// What the operator reports about a tenant (read from the CR status).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TenantReadiness {
    /// Whether the `Ready` condition is `True`.
    pub ready: bool,
    /// Reason of the `Ready` condition.
    pub reason: Option<String>,
    /// Message of the `Ready` condition.
    pub message: Option<String>,
    /// The tenant's namespace, once created.
    pub namespace: Option<String>,
}

/// Readiness from a `Tenant` as read back from the cluster.
pub fn readiness_of(tenant: &Tenant) -> TenantReadiness {
    let status = tenant.status.as_ref();
    let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION_READY));
    TenantReadiness {
        ready: ready.is_some_and(|c| c.status == "True"),
        reason: ready.map(|c| c.reason.clone()),
        message: ready.map(|c| c.message.clone()),
        namespace: status.and_then(|s| s.namespace.clone()),
    }
}

/// Sends desired objects to the cluster, or does nothing when Kubernetes is off.
#[derive(Clone)]
pub struct KubeSync {
    client: Option<kube::Client>,
}

impl KubeSync {
    /// Kubernetes off (standalone mode and tests).
    pub fn disabled() -> Self {
        Self { client: None }
    }

    /// Connects when `enabled` and a cluster configuration is found; otherwise says so in the
    /// log and runs without Kubernetes.
    pub async fn connect(enabled: bool) -> Self {
        if !enabled {
            tracing::info!(
                "SWITCHBOARD_KUBERNETES=false: running without Kubernetes (no Tenant CRs or Secrets are written)"
            );
            return Self::disabled();
        }
        match kube::Client::try_default().await {
            Ok(client) => {
                tracing::info!(
                    "Kubernetes mode: Tenant CRs and provider-key Secrets are applied to the cluster"
                );
                Self {
                    client: Some(client),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "no Kubernetes cluster configuration found: running without Kubernetes");
                Self::disabled()
            }
        }
    }

    /// Whether objects are written to a cluster.
    pub fn enabled(&self) -> bool {
        self.client.is_some()
    }

    /// Kubernetes on, through `client` (tests use an in-memory API server).
    pub fn with_client(client: kube::Client) -> Self {
        Self {
            client: Some(client),
        }
    }

    /// The cluster client, when Kubernetes is on (for objects other modules apply).
    pub fn client(&self) -> Option<&kube::Client> {
        self.client.as_ref()
    }

    /// Applies the tenant's CR (server-side apply, forcing the gateway's fields).
    pub async fn apply_tenant(&self, tenant: &TenantRow) -> Result<(), KubeError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let api: Api<Tenant> = Api::all(client.clone());
        let body = desired_tenant(tenant)?;
        api.patch(
            &tenant.slug,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        Ok(())
    }

    /// Applies the tenant's `provider-keys` Secret.
    pub async fn apply_provider_secret(&self, secret: &Secret) -> Result<(), KubeError> {
        self.apply_secret(secret).await
    }

    /// Applies a Secret the gateway owns in a tenant namespace (the `provider-keys` Secret,
    /// the `runtime-credential` Secret), named by its metadata.
    pub async fn apply_secret(&self, secret: &Secret) -> Result<(), KubeError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let namespace = secret.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let mut body = secret.clone();
        body.metadata.managed_fields = None;
        let body = serde_json::to_value(&body).map_err(KubeError::Agent)?;
        let mut body = body;
        body["apiVersion"] = json!("v1");
        body["kind"] = json!("Secret");
        let name = secret.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        Ok(())
    }

    /// Readiness of the tenant's CR, `None` without Kubernetes or when the CR is missing.
    pub async fn tenant_readiness(&self, slug: &str) -> Result<Option<TenantReadiness>, KubeError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let api: Api<Tenant> = Api::all(client.clone());
        Ok(api.get_opt(slug).await?.as_ref().map(readiness_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Flag;

    fn tenant_row() -> TenantRow {
        TenantRow {
            id: "0b6c8a4e-1111-2222-3333-444455556666".into(),
            slug: "acme".into(),
            name: "Acme Inc".into(),
            plan: "starter".into(),
            suspended: Flag(false),
            agent: serde_json::to_string(&switchboard_crds::tenant::AgentSpec::default()).unwrap(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn desired_tenant_is_a_valid_tenant_with_only_gateway_fields() {
        let body = desired_tenant(&tenant_row()).unwrap();
        let tenant: Tenant = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(tenant.metadata.name.as_deref(), Some("acme"));
        assert_eq!(tenant.spec.display_name, "Acme Inc");
        assert_eq!(tenant.spec.plan, switchboard_crds::Plan::Starter);
        assert_eq!(
            tenant.spec.provider_secret_ref.as_deref(),
            Some(PROVIDER_SECRET_NAME)
        );
        assert_eq!(tenant.metadata.labels.unwrap()[TENANT_LABEL], "acme");
        // Fields owned by others are not in the apply body, so the gateway never claims them.
        let spec = body["spec"].as_object().unwrap();
        assert!(
            !spec.contains_key("runtime")
                && !spec.contains_key("carrier")
                && !spec.contains_key("limits")
        );
    }

    #[test]
    fn provider_secret_uses_well_known_names_for_defaults() {
        let cred = |provider: &str, label: &str, default: bool| CredentialRow {
            id: "c".into(),
            tenant_id: "t".into(),
            provider: provider.into(),
            label: label.into(),
            is_default: Flag(default),
            key_id: "k".into(),
            ciphertext: String::new(),
            hint: String::new(),
            metadata: "{}".into(),
            created_by: "u".into(),
            created_at: 0,
            updated_at: 0,
        };
        let secret = desired_provider_secret(
            &switchboard_crds::naming::TenantNaming::default().namespace("acme"),
            &tenant_row(),
            &[
                (cred("openai", "main", true), b"sk-1".to_vec()),
                (cred("openai", "backup key", false), b"sk-2".to_vec()),
                (cred("elevenlabs", "voice", true), b"el-1".to_vec()),
            ],
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("tenant-acme"));
        assert_eq!(secret.metadata.name.as_deref(), Some("provider-keys"));
        let data = secret.data.unwrap();
        assert_eq!(data["OPENAI_API_KEY"].0, b"sk-1");
        assert_eq!(data["OPENAI_API_KEY__BACKUP_KEY"].0, b"sk-2");
        assert_eq!(data["ELEVENLABS_API_KEY"].0, b"el-1");
    }

    #[test]
    fn readiness_reads_the_ready_condition() {
        let mut tenant: Tenant =
            serde_json::from_value(desired_tenant(&tenant_row()).unwrap()).unwrap();
        assert!(!readiness_of(&tenant).ready);
        tenant.status = Some(serde_json::from_value(json!({
            "namespace": "tenant-acme",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "all good",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        })).unwrap());
        let readiness = readiness_of(&tenant);
        assert!(readiness.ready);
        assert_eq!(readiness.namespace.as_deref(), Some("tenant-acme"));
        assert_eq!(readiness.reason.as_deref(), Some("Reconciled"));
    }
}
