//! Server-side apply, the one way the operator writes objects.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use crate::builders::labels::FIELD_MANAGER;

fn apply_params() -> PatchParams {
    // force: the operator owns these fields; a hand edit is corrected, not a conflict.
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Applies a namespaced object (its namespace comes from its metadata).
pub async fn apply_namespaced<K>(client: &Client, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let namespace = object
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    Ok(api
        .patch(&object.name_any(), &apply_params(), &Patch::Apply(object))
        .await?)
}

/// Applies a cluster-scoped object.
pub async fn apply_cluster<K>(client: &Client, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = ClusterResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    Ok(api
        .patch(&object.name_any(), &apply_params(), &Patch::Apply(object))
        .await?)
}

/// Deletes a namespaced object if it exists (e.g. a PDB no longer wanted).
pub async fn delete_if_present<K>(client: &Client, namespace: &str, name: &str) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Writes `status` to the status subresource of a cluster-scoped custom resource.
pub async fn apply_cluster_status<K, S>(
    client: &Client,
    name: &str,
    status: &S,
) -> Result<(), Error>
where
    K: Resource<Scope = ClusterResourceScope, DynamicType = ()> + Clone + Debug + DeserializeOwned,
    S: Serialize,
{
    apply_status(&Api::<K>::all(client.clone()), name, status).await
}

/// Writes `status` to the status subresource of a namespaced custom resource.
pub async fn apply_namespaced_status<K, S>(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &S,
) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Serialize,
{
    apply_status(
        &Api::<K>::namespaced(client.clone(), namespace),
        name,
        status,
    )
    .await
}

/// Server-side-applies `status` to the status subresource of `name` through `api`.
async fn apply_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    S: Serialize,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, &apply_params(), &Patch::Apply(&patch))
        .await?;
    Ok(())
}

/// Adds `finalizer` to `object` through `api` (cluster-scoped or namespaced alike). The
/// resourceVersion makes the merge patch conditional, so a concurrent change to the list fails
/// (and is retried) instead of being lost.
pub async fn add_finalizer<K>(api: &Api<K>, object: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let mut finalizers = object.finalizers().to_vec();
    if finalizers.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    finalizers.push(finalizer.to_owned());
    patch_finalizers(api, object, finalizers).await
}

/// Removes `finalizer` from `object` (conditionally, as [`add_finalizer`]).
pub async fn remove_finalizer<K>(api: &Api<K>, object: &K, finalizer: &str) -> Result<(), Error>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let finalizers: Vec<String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    if finalizers.len() == object.finalizers().len() {
        return Ok(());
    }
    patch_finalizers(api, object, finalizers).await
}

async fn patch_finalizers<K>(api: &Api<K>, object: &K, finalizers: Vec<String>) -> Result<(), Error>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&finalizer_patch(object, finalizers)),
    )
    .await?;
    Ok(())
}

/// A merge patch replacing the finalizer list, guarded by the object's resourceVersion.
fn finalizer_patch<K: Resource>(object: &K, finalizers: Vec<String>) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "resourceVersion": object.resource_version(),
            "finalizers": finalizers,
        }
    })
}
