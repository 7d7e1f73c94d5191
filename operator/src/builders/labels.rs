//! Labels and owner references shared by every object of a tenant's stack.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use switchboard_crds::{TENANT_LABEL, Tenant};

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "switchboard-operator";
/// `app.kubernetes.io/name` of the runtime pods; also the Deployment and Service name (the
/// gateway reaches the Service by this name: see `switchboard_crds::naming`).
pub const RUNTIME_NAME: &str = switchboard_crds::naming::RUNTIME_SERVICE;

/// Labels on every object the operator creates for `tenant`.
pub fn tenant_labels(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            FIELD_MANAGER.to_owned(),
        ),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "switchboard".to_owned(),
        ),
        (TENANT_LABEL.to_owned(), tenant.to_owned()),
    ])
}

/// Labels selecting the runtime pods of a tenant (stable: a Deployment selector is immutable).
pub fn runtime_selector(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), RUNTIME_NAME.to_owned()),
        ("app.kubernetes.io/instance".to_owned(), tenant.to_owned()),
    ])
}

/// Labels of the runtime pods, Deployment and Service.
pub fn runtime_labels(tenant: &str) -> BTreeMap<String, String> {
    let mut labels = tenant_labels(tenant);
    labels.extend(runtime_selector(tenant));
    labels.insert("app.kubernetes.io/component".into(), "runtime".into());
    labels
}

/// The controller owner reference pointing at the Tenant, so children are garbage-collected
/// with it. `None` when the Tenant has no uid yet (never the case for objects read from the API).
pub fn owner_reference(tenant: &Tenant) -> Option<OwnerReference> {
    tenant.controller_owner_ref(&())
}

/// Metadata of a namespaced child of the tenant's stack.
pub fn child_meta(tenant: &Tenant, namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(tenant_labels(&tenant_name(tenant))),
        owner_references: owner_reference(tenant).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

/// The Tenant's name (empty only for objects that were never stored).
pub fn tenant_name(tenant: &Tenant) -> String {
    tenant.metadata.name.clone().unwrap_or_default()
}
