//! Writing tenants to Kubernetes: the `Tenant` CR (server-side apply, field manager
//! `switchboard-gateway`, never forced) and the `provider-keys` and `runtime-credential`
//! Secrets in the tenant's namespace.
//!
//! The desired objects are built by plain functions from database rows ([`desired_tenant`],
//! [`desired_provider_secret`]) and what a write may touch is decided by [`plan_tenant_write`]
//! from the CR as read back; all three are unit tested. [`KubeSync`] only sends them.
//!
//! Field ownership (`switchboard_crds::tenant::GATEWAY_FIELDS`): the gateway applies at most
//! `displayName`, `plan`, `agent`, `providerSecretRef` and `carrier`, and of those only the
//! ones it already holds alone plus the one a write changes. A field another manager (kubectl,
//! Argo CD, Flux) holds is never taken: changing it answers [`KubeError::OwnedElsewhere`] naming
//! that manager. `runtime`, `limits` and `owners` belong to the manifest; `suspended`
//! (`ADMIN_FIELDS`) is written only for a platform admin's suspension or a deletion's grace
//! period, and only when no manifest holds it.
//!
//! The gateway applies to a Tenant only if it is linked to the gateway tenant being written:
//! created by the gateway (annotation [`TENANT_ID_ANNOTATION`] names that tenant) or adopted from
//! a manifest (its uid is the one the tenant row recorded). Anything else is
//! [`KubeError::Foreign`], so signup can never take over a Tenant someone else made.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};
use switchboard_crds::credentials::CredentialEntry;
use switchboard_crds::tenant::{ADMIN_FIELDS, CONDITION_READY, GATEWAY_FIELDS, Tenant};
use switchboard_crds::{API_GROUP, API_VERSION, TENANT_LABEL};

use crate::store::tenants::{ORIGIN_MANIFEST, TenantRow};

/// Field manager of every object the gateway applies.
pub const FIELD_MANAGER: &str = "switchboard-gateway";
/// Name of the Secret holding a tenant's provider keys, in the tenant's namespace.
pub const PROVIDER_SECRET_NAME: &str = "provider-keys";
/// Annotation naming the gateway's tenant id on a CR the gateway created.
pub const TENANT_ID_ANNOTATION: &str = switchboard_crds::tenant::GATEWAY_TENANT_ID_ANNOTATION;

/// A Kubernetes call failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The API server refused or was unreachable.
    #[error("kubernetes API error: {0}")]
    Api(#[from] kube::Error),
    /// The stored agent configuration is not valid JSON.
    #[error("stored agent configuration is not JSON: {0}")]
    Agent(#[from] serde_json::Error),
    /// A Tenant with this name exists and the gateway neither created nor adopted it.
    #[error("Tenant {name} exists and was not created by the gateway for this tenant")]
    Foreign {
        /// The Tenant's name.
        name: String,
    },
    /// The write changes a spec field another field manager holds.
    #[error("spec.{field} of Tenant {name} is managed by {manager}")]
    OwnedElsewhere {
        /// The Tenant's name.
        name: String,
        /// The spec field (`agent`, `plan` …).
        field: String,
        /// The field manager holding it (`kubectl`, `argocd-controller` …).
        manager: String,
    },
}

/// The server-side-apply body of a tenant's `Tenant` CR with the spec `fields` given (a subset
/// of `GATEWAY_FIELDS`; others are ignored).
pub fn desired_tenant(
    tenant: &TenantRow,
    fields: &BTreeSet<&str>,
) -> Result<Value, serde_json::Error> {
    let mut spec = serde_json::Map::new();
    for field in GATEWAY_FIELDS.into_iter().chain(ADMIN_FIELDS) {
        if !fields.contains(field) {
            continue;
        }
        let value = match field {
            "displayName" => json!(tenant.name),
            "suspended" => json!(tenant.suspended.0),
            "plan" => json!(tenant.plan),
            "agent" => serde_json::from_str(&tenant.agent)?,
            "agents" => switchboard_crds::agents::parse_named_agents(&tenant.agents)
                .and_then(serde_json::to_value)?,
            "carrier" => serde_json::from_str(&tenant.carrier)?,
            _ => json!(PROVIDER_SECRET_NAME),
        };
        spec.insert(field.to_owned(), value);
    }
    // A Tenant the gateway created carries its marks; an adopted one keeps the manifest's
    // metadata (its `managed-by` is GitOps's to set).
    let metadata = if tenant.origin == ORIGIN_MANIFEST {
        json!({ "name": tenant.slug })
    } else {
        json!({
            "name": tenant.slug,
            "labels": {
                TENANT_LABEL: tenant.slug,
                "app.kubernetes.io/managed-by": FIELD_MANAGER,
            },
            "annotations": { TENANT_ID_ANNOTATION: tenant.id },
        })
    };
    Ok(json!({
        "apiVersion": format!("{API_GROUP}/{API_VERSION}"),
        "kind": "Tenant",
        "metadata": metadata,
        "spec": spec,
    }))
}

/// Which managers hold each top-level spec field of `tenant` (from `metadata.managedFields`;
/// holding any part of a field, e.g. `agent.greeting`, counts as holding the field).
pub fn spec_field_managers(tenant: &Tenant) -> BTreeMap<String, BTreeSet<String>> {
    let mut managers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in tenant.metadata.managed_fields.iter().flatten() {
        if entry.subresource.as_deref().is_some_and(|s| !s.is_empty()) {
            continue;
        }
        let Some(manager) = entry.manager.as_deref() else {
            continue;
        };
        let Some(spec) = entry
            .fields_v1
            .as_ref()
            .and_then(|f| f.0.get("f:spec"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for key in spec.keys() {
            if let Some(field) = key.strip_prefix("f:") {
                managers
                    .entry(field.to_owned())
                    .or_default()
                    .insert(manager.to_owned());
            }
        }
    }
    managers
}

/// Whether `cr` is the Tenant of gateway tenant `tenant`: created by the gateway for it, or
/// adopted from a manifest (same uid).
pub fn is_linked(cr: &Tenant, tenant: &TenantRow) -> bool {
    let created_for_it = cr
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TENANT_ID_ANNOTATION))
        .is_some_and(|id| *id == tenant.id);
    let adopted = tenant.origin == ORIGIN_MANIFEST
        && tenant.cr_uid.is_some()
        && cr.metadata.uid == tenant.cr_uid;
    created_for_it || adopted
}

/// What one gateway write to a tenant's CR does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantWrite {
    /// Nothing to send (no CR yet and none due, or no field left to write).
    Skip,
    /// Server-side apply these spec fields.
    Apply(BTreeSet<&'static str>),
}

/// Decides a write that changes `changing` (spec fields) of `tenant`, given its CR as read
/// back (`None`: absent). A missing CR is created (with every gateway field) only for an
/// activated, not detached signup tenant. `providerSecretRef` is a soft claim: when another
/// manager holds it the write leaves it out instead of failing.
pub fn plan_tenant_write(
    tenant: &TenantRow,
    cr: Option<&Tenant>,
    changing: &[&'static str],
) -> Result<TenantWrite, KubeError> {
    let Some(cr) = cr else {
        let due = tenant.origin != ORIGIN_MANIFEST
            && tenant.activated_at.is_some()
            && tenant.detached_at.is_none();
        return Ok(if due {
            let mut fields: BTreeSet<&'static str> = GATEWAY_FIELDS.into_iter().collect();
            // A CR made for a suspended tenant (a platform admin's suspension) starts suspended.
            if tenant.suspended.0 {
                fields.extend(ADMIN_FIELDS);
            }
            TenantWrite::Apply(fields)
        } else {
            TenantWrite::Skip
        });
    };
    if !is_linked(cr, tenant) {
        return Err(KubeError::Foreign {
            name: tenant.slug.clone(),
        });
    }
    let managers = spec_field_managers(cr);
    let others = |field: &str| -> Option<String> {
        managers
            .get(field)
            .and_then(|m| m.iter().find(|m| *m != FIELD_MANAGER).cloned())
    };
    let mut fields: BTreeSet<&'static str> = GATEWAY_FIELDS
        .into_iter()
        .chain(ADMIN_FIELDS)
        .filter(|f| {
            managers.get(*f).is_some_and(|m| m.contains(FIELD_MANAGER)) && others(f).is_none()
        })
        .collect();
    for field in changing {
        match others(field) {
            None => {
                fields.insert(field);
            }
            Some(_) if *field == "providerSecretRef" => {}
            Some(manager) => {
                return Err(KubeError::OwnedElsewhere {
                    name: tenant.slug.clone(),
                    field: (*field).to_owned(),
                    manager,
                });
            }
        }
    }
    Ok(if fields.is_empty() {
        TenantWrite::Skip
    } else {
        TenantWrite::Apply(fields)
    })
}

/// An Opaque Secret the gateway owns in a tenant's namespace, labelled with the tenant and the
/// gateway as its manager (`provider-keys`, `runtime-credential`, `carrier-credentials`).
pub fn tenant_secret(
    name: &str,
    namespace: &str,
    tenant: &TenantRow,
    data: BTreeMap<String, ByteString>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
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

/// The `provider-keys` Secret of a tenant (in `namespace`, its namespace) from the runtime's
/// view of its credentials with their decrypted secrets
/// (built by `provider_keys::runtime_entries`).
pub fn desired_provider_secret(
    namespace: &str,
    tenant: &TenantRow,
    entries: &[(CredentialEntry, &[u8])],
) -> Secret {
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    for (entry, secret) in entries {
        data.insert(entry.key.clone(), ByteString(secret.to_vec()));
        // The vendor's default also under its well-known name (`OPENAI_API_KEY`, …), the
        // layout of a Secret written by hand.
        if entry.is_default
            && let Some(name) = entry.vendor.well_known_key()
        {
            data.insert(name.to_owned(), ByteString(secret.to_vec()));
        }
    }
    let index: Vec<&CredentialEntry> = entries.iter().map(|(entry, _)| entry).collect();
    // A list of plain structs: serialising cannot fail.
    let index = serde_json::to_vec(&index).unwrap_or_default();
    data.insert(
        switchboard_crds::credentials::INDEX_KEY.to_owned(),
        ByteString(index),
    );
    tenant_secret(PROVIDER_SECRET_NAME, namespace, tenant, data)
}

/// The `runtime-credential` Secret of a tenant (in `namespace`, its namespace): the token its
/// runtime presents on `/internal/v1/events` (see [`crate::runtime_credential`]).
pub fn desired_runtime_credential_secret(
    namespace: &str,
    tenant: &TenantRow,
    token: &str,
) -> Secret {
    tenant_secret(
        switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET,
        namespace,
        tenant,
        BTreeMap::from([(
            switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )]),
    )
}

/// What the operator reports about a tenant (read from the CR status).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
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

    /// Writes the gateway's part of the tenant's CR after a change of the spec fields
    /// `changing` (see [`plan_tenant_write`]): reads the CR, refuses a foreign one or a field
    /// held by another manager, and server-side-applies the rest without force (an API-server
    /// conflict is an error too, never overridden). Without Kubernetes it does nothing.
    pub async fn apply_tenant(
        &self,
        tenant: &TenantRow,
        changing: &[&'static str],
    ) -> Result<(), KubeError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let api: Api<Tenant> = Api::all(client.clone());
        let current = api.get_opt(&tenant.slug).await?;
        let TenantWrite::Apply(fields) = plan_tenant_write(tenant, current.as_ref(), changing)?
        else {
            return Ok(());
        };
        let body = desired_tenant(tenant, &fields)?;
        api.patch(
            &tenant.slug,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&body),
        )
        .await?;
        Ok(())
    }

    /// The Tenant named `name` (`None` without Kubernetes or when there is none).
    pub async fn tenant(&self, name: &str) -> Result<Option<Tenant>, KubeError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let api: Api<Tenant> = Api::all(client.clone());
        Ok(api.get_opt(name).await?)
    }

    /// Whether a Tenant named `name` exists in the cluster (`false` without Kubernetes).
    pub async fn tenant_exists(&self, name: &str) -> Result<bool, KubeError> {
        Ok(self.tenant(name).await?.is_some())
    }

    /// Applies the tenant's `provider-keys` Secret.
    pub async fn apply_provider_secret(&self, secret: &Secret) -> Result<(), KubeError> {
        self.apply_secret(secret).await
    }

    /// Applies a Secret the gateway owns in a tenant namespace (`provider-keys`,
    /// `runtime-credential`, `carrier-credentials`), named by its metadata; forced, since no
    /// one else may hold them.
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
    use crate::store::credentials::CredentialRow;

    fn tenant_row() -> TenantRow {
        TenantRow {
            id: "0b6c8a4e-1111-2222-3333-444455556666".into(),
            slug: "acme".into(),
            name: "Acme Inc".into(),
            plan: "starter".into(),
            suspended: Flag(false),
            agent: serde_json::to_string(&switchboard_crds::tenant::AgentSpec::default()).unwrap(),
            agents: "{}".into(),
            created_at: 0,
            updated_at: 0,
            origin: "signup".into(),
            cr_uid: None,
            activated_at: Some(0),
            detached_at: None,
            limits: "{}".into(),
            carrier: r#"{"kind":"twilio"}"#.into(),
        }
    }

    fn all() -> BTreeSet<&'static str> {
        GATEWAY_FIELDS.into_iter().collect()
    }

    /// A Tenant as read back, with `managers` (manager, spec fields) in its managedFields.
    fn cr(annotation: Option<&str>, uid: &str, managers: &[(&str, &[&str])]) -> Tenant {
        let managed: Vec<Value> = managers
            .iter()
            .map(|(manager, fields)| {
                let spec: serde_json::Map<String, Value> = fields
                    .iter()
                    .map(|f| (format!("f:{f}"), json!({})))
                    .collect();
                json!({"manager": manager, "operation": "Apply", "apiVersion": "voice.switchboard.dev/v1alpha1",
                       "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": spec}})
            })
            .collect();
        let mut metadata = json!({"name": "acme", "uid": uid, "managedFields": managed});
        if let Some(id) = annotation {
            metadata["annotations"] = json!({TENANT_ID_ANNOTATION: id});
        }
        serde_json::from_value(
            json!({"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
            "metadata": metadata, "spec": {"displayName": "Acme"}}),
        )
        .unwrap()
    }

    #[test]
    fn a_tenant_the_gateway_did_not_create_is_never_written() {
        let row = tenant_row();
        let foreign = cr(None, "u-1", &[("kubectl", &["displayName", "plan"])]);
        assert!(matches!(
            plan_tenant_write(&row, Some(&foreign), &["agent"]),
            Err(KubeError::Foreign { name }) if name == "acme"
        ));
        let other_tenant = cr(Some("another-id"), "u-1", &[(FIELD_MANAGER, &["agent"])]);
        assert!(matches!(
            plan_tenant_write(&row, Some(&other_tenant), &[]),
            Err(KubeError::Foreign { .. })
        ));
        // A manifest tenant is linked by the uid it was adopted with, not by its name.
        let manifest = TenantRow {
            origin: ORIGIN_MANIFEST.into(),
            cr_uid: Some("u-1".into()),
            ..tenant_row()
        };
        assert_eq!(
            plan_tenant_write(&manifest, Some(&foreign), &["agent"]).unwrap(),
            TenantWrite::Apply(["agent"].into_iter().collect())
        );
        let recreated = cr(None, "u-2", &[("kubectl", &["displayName"])]);
        assert!(matches!(
            plan_tenant_write(&manifest, Some(&recreated), &["agent"]),
            Err(KubeError::Foreign { .. })
        ));
    }

    #[test]
    fn a_missing_cr_is_created_only_for_an_activated_signup_tenant() {
        assert_eq!(
            plan_tenant_write(&tenant_row(), None, &["plan"]).unwrap(),
            TenantWrite::Apply(all())
        );
        let unverified = TenantRow {
            activated_at: None,
            ..tenant_row()
        };
        assert_eq!(
            plan_tenant_write(&unverified, None, &["agent"]).unwrap(),
            TenantWrite::Skip
        );
        let detached = TenantRow {
            detached_at: Some(5),
            ..tenant_row()
        };
        assert_eq!(
            plan_tenant_write(&detached, None, &[]).unwrap(),
            TenantWrite::Skip
        );
        let manifest = TenantRow {
            origin: ORIGIN_MANIFEST.into(),
            ..tenant_row()
        };
        assert_eq!(
            plan_tenant_write(&manifest, None, &[]).unwrap(),
            TenantWrite::Skip
        );
    }

    #[test]
    fn writes_keep_to_the_gateways_own_fields_and_name_the_owner_of_others() {
        let row = tenant_row();
        // kubectl took `plan` (e.g. `kubectl apply` of a manifest naming it): the gateway stops
        // sending it, keeps the fields it still holds alone, and a plan change is refused.
        let shared = cr(
            Some(&row.id),
            "u-1",
            &[
                (
                    FIELD_MANAGER,
                    &["displayName", "plan", "agent", "providerSecretRef"],
                ),
                ("kubectl", &["plan", "suspended"]),
            ],
        );
        assert_eq!(
            plan_tenant_write(&row, Some(&shared), &["agent"]).unwrap(),
            TenantWrite::Apply(
                ["agent", "displayName", "providerSecretRef"]
                    .into_iter()
                    .collect()
            )
        );
        match plan_tenant_write(&row, Some(&shared), &["plan"]) {
            Err(KubeError::OwnedElsewhere { field, manager, .. }) => {
                assert_eq!((field.as_str(), manager.as_str()), ("plan", "kubectl"));
            }
            other => panic!("{other:?}"),
        }
        // `suspended` is never in a gateway write, whoever holds it.
        let TenantWrite::Apply(fields) = plan_tenant_write(&row, Some(&shared), &[]).unwrap()
        else {
            panic!("expected an apply");
        };
        assert!(!fields.contains("suspended") && !fields.contains("plan"));
        // providerSecretRef held by the manifest: left out, not an error.
        let manifest_keys = cr(
            Some(&row.id),
            "u-1",
            &[
                (FIELD_MANAGER, &["agent"]),
                ("argocd-controller", &["providerSecretRef"]),
            ],
        );
        assert_eq!(
            plan_tenant_write(&row, Some(&manifest_keys), &["providerSecretRef"]).unwrap(),
            TenantWrite::Apply(["agent"].into_iter().collect())
        );
        let body = desired_tenant(&row, &["agent"].into_iter().collect()).unwrap();
        assert_eq!(body["spec"].as_object().unwrap().len(), 1, "{body}");
    }

    #[test]
    fn suspension_is_written_only_when_the_manifest_does_not_hold_it() {
        let mut row = tenant_row();
        row.suspended = Flag(true);
        let gateway_made = cr(Some(&row.id), "u-1", &[(FIELD_MANAGER, &["agent"])]);
        let TenantWrite::Apply(fields) =
            plan_tenant_write(&row, Some(&gateway_made), &["suspended"]).unwrap()
        else {
            panic!("expected an apply");
        };
        assert!(fields.contains("suspended") && fields.contains("agent"));
        let body = desired_tenant(&row, &fields).unwrap();
        assert_eq!(body["spec"]["suspended"], json!(true));
        // Once held, a later write (an agent change) keeps sending it, so it is not dropped.
        let held = cr(
            Some(&row.id),
            "u-1",
            &[(FIELD_MANAGER, &["agent", "suspended"])],
        );
        let TenantWrite::Apply(fields) = plan_tenant_write(&row, Some(&held), &["agent"]).unwrap()
        else {
            panic!("expected an apply");
        };
        assert!(fields.contains("suspended"));
        // A manifest holding `spec.suspended`: suspension is refused naming the manager.
        let manifest = cr(
            Some(&row.id),
            "u-1",
            &[
                (FIELD_MANAGER, &["agent"]),
                ("argocd-controller", &["suspended"]),
            ],
        );
        match plan_tenant_write(&row, Some(&manifest), &["suspended"]) {
            Err(KubeError::OwnedElsewhere { field, manager, .. }) => {
                assert_eq!(
                    (field.as_str(), manager.as_str()),
                    ("suspended", "argocd-controller")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_runtime_credential_secret_carries_the_token_under_the_shared_names() {
        let secret = desired_runtime_credential_secret("customer-acme", &tenant_row(), "sbrt1.x");
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some(switchboard_crds::naming::RUNTIME_CREDENTIAL_SECRET)
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("customer-acme"));
        let data = secret.data.unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(
            data[switchboard_crds::naming::RUNTIME_CREDENTIAL_KEY].0,
            b"sbrt1.x".to_vec()
        );
    }

    #[test]
    fn desired_tenant_is_a_valid_tenant_with_only_gateway_fields() {
        let body = desired_tenant(&tenant_row(), &all()).unwrap();
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
        assert_eq!(
            tenant.spec.carrier.kind,
            switchboard_crds::CarrierKind::Twilio
        );
        for field in ["runtime", "limits", "suspended", "owners"] {
            assert!(!spec.contains_key(field), "{field} in {body}");
        }
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
        let rows = [
            (cred("openai", "main", true), b"sk-1".to_vec()),
            (cred("openai", "backup key", false), b"sk-2".to_vec()),
            (cred("elevenlabs", "voice", true), b"el-1".to_vec()),
            (
                CredentialRow {
                    metadata: r#"{"base_url":"https://vllm.example.com/v1"}"#.into(),
                    ..cred("openai-compatible", "vllm", true)
                },
                b"vl-1".to_vec(),
            ),
            (cred("twilio", "main", true), b"tw-1".to_vec()),
        ];
        let secret = desired_provider_secret(
            &switchboard_crds::naming::TenantNaming::default().namespace("acme"),
            &tenant_row(),
            &crate::provider_keys::runtime_entries(&rows),
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("tenant-acme"));
        assert_eq!(secret.metadata.name.as_deref(), Some("provider-keys"));
        let data = secret.data.unwrap();
        assert_eq!(data["OPENAI_API_KEY"].0, b"sk-1");
        assert_eq!(data["openai.main"].0, b"sk-1");
        assert_eq!(data["openai.backup_20key"].0, b"sk-2");
        assert_eq!(data["ELEVENLABS_API_KEY"].0, b"el-1");
        assert_eq!(data["openai-compatible.vllm"].0, b"vl-1");
        assert!(
            !data.values().any(|v| v.0 == b"tw-1"),
            "carrier accounts never reach the runtime"
        );
        let index: Vec<switchboard_crds::credentials::CredentialEntry> =
            serde_json::from_slice(&data[switchboard_crds::credentials::INDEX_KEY].0).unwrap();
        assert_eq!(index.len(), 4);
        let vllm = index.iter().find(|e| e.label == "vllm").unwrap();
        assert_eq!(
            vllm.base_url.as_deref(),
            Some("https://vllm.example.com/v1")
        );
        assert_eq!(
            data.len(),
            4 + 2 + 1,
            "each credential, two well-known defaults, the index"
        );
    }

    #[test]
    fn readiness_reads_the_ready_condition() {
        let mut tenant: Tenant =
            serde_json::from_value(desired_tenant(&tenant_row(), &all()).unwrap()).unwrap();
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
