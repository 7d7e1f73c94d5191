//! Server-side apply, the one way the operator writes objects and statuses.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use crate::builders::labels::FIELD_MANAGER;

fn apply_params() -> PatchParams {
    // force: the operator owns these fields; a hand edit is corrected, not a conflict.
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Applies `object` through `api` (cluster-wide or its namespace) and returns what the API
/// server stored.
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    Ok(api
        .patch(&object.name_any(), &apply_params(), &Patch::Apply(object))
        .await?)
}

/// Server-side-applies `status` to the status subresource of `name` through `api`.
pub(crate) async fn apply_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<(), Error>
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
