//! Shared set-up for controller tests: an in-memory Kubernetes API (kube-fake-client) that
//! knows our CRDs and the status subresources, and a controller [`Context`] on top of it.

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::runtime::events::Reporter;
use kube_fake_client::{ClientBuilder, interceptor};
use switchboard_crds::{Campaign, PhoneNumber, Tenant};
use switchboard_operator::OperatorConfig;
use switchboard_operator::controllers::Context;
use switchboard_operator::gateway_client::{GatewayClient, InternalToken};
use switchboard_operator::metrics::Metrics;

/// Counts writes to status subresources, so tests can assert that nothing was written.
#[derive(Clone, Default)]
pub struct WriteCounter(pub Arc<AtomicUsize>);

impl WriteCounter {
    /// Status writes so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A fake API server with our CRDs registered, seeded with `tenants`.
pub async fn fake_api(tenants: Vec<Tenant>, status_writes: WriteCounter) -> Client {
    fake_api_with(tenants, Vec::new(), status_writes).await
}

/// A fake API server seeded with tenants and phone numbers.
pub async fn fake_api_with(
    tenants: Vec<Tenant>,
    numbers: Vec<PhoneNumber>,
    status_writes: WriteCounter,
) -> Client {
    let numbers = numbers
        .into_iter()
        .map(|n| serde_json::to_value(n).expect("json"))
        .collect();
    fake_api_seeded(tenants, numbers, status_writes).await
}

/// A fake API server seeded with tenants and any namespaced objects given as JSON manifests
/// (PhoneNumbers, Campaigns, ConfigMaps, Secrets …; status and deletionTimestamp are kept).
pub async fn fake_api_seeded(
    tenants: Vec<Tenant>,
    objects: Vec<serde_json::Value>,
    status_writes: WriteCounter,
) -> Client {
    let counter = status_writes.0.clone();
    let client = ClientBuilder::new()
        .with_resource::<Tenant>()
        .with_resource::<PhoneNumber>()
        .with_resource::<Campaign>()
        .with_status_subresource::<Tenant>()
        .with_status_subresource::<PhoneNumber>()
        .with_status_subresource::<Campaign>()
        .with_status_subresource::<Deployment>()
        .with_runtime_objects(objects)
        .with_objects(tenants.into_iter().map(file_cluster_scoped).collect())
        .with_interceptor_funcs(interceptor::Funcs::new().patch_status(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }))
        .build()
        .await
        .expect("fake API server");
    cluster_scope_shim(client)
}

/// Seeds a Tenant where the shim looks for it (seeding keeps a deletionTimestamp, so a
/// terminating Tenant can be set up; creating through the API would strip it).
fn file_cluster_scoped(mut tenant: Tenant) -> Tenant {
    tenant.metadata.namespace = Some(CLUSTER_SCOPE_NAMESPACE.into());
    tenant
        .metadata
        .uid
        .get_or_insert_with(|| format!("uid-{}", tenant.metadata.name.clone().unwrap_or_default()));
    tenant
}

/// A controller context over `client` with default operator settings.
pub fn context(client: Client) -> Arc<Context> {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let reporter = Reporter {
        controller: "switchboard-operator".into(),
        instance: Some("test".into()),
    };
    Arc::new(Context::new(
        client,
        OperatorConfig::default(),
        metrics,
        reporter,
    ))
}

/// A controller context whose gateway client points at `gateway_url` with `token`.
pub fn context_with_gateway(client: Client, gateway_url: &str, token: &str) -> Arc<Context> {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let reporter = Reporter {
        controller: "switchboard-operator".into(),
        instance: Some("test".into()),
    };
    let config = OperatorConfig {
        gateway_internal_url: gateway_url.to_owned(),
        ..OperatorConfig::default()
    };
    let gateway = GatewayClient::new(gateway_url, InternalToken::new(token).expect("token"))
        .expect("gateway client");
    Arc::new(Context::new(client, config, metrics, reporter).with_gateway(gateway))
}

/// A Tenant as a user would apply it.
pub fn tenant(name: &str, spec: serde_json::Value) -> Tenant {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("valid Tenant")
}

/// Where the shim files cluster-scoped Tenants inside the fake.
const CLUSTER_SCOPE_NAMESPACE: &str = "_cluster";
const TENANTS_PATH: &str = "/apis/voice.switchboard.dev/v1alpha1/tenants";
const NAMESPACES_PATH: &str = "/api/v1/namespaces";

/// kube-fake-client 0.3 cannot serve two cluster-scoped kinds the operator writes: it registers
/// every custom resource as namespaced (its registry has a TODO for cluster scope), so it refuses
/// Tenants; and its path parser rejects `/api/v1/namespaces/{name}`, so it cannot serve
/// Namespace objects at all. This shim files Tenants under a hidden namespace of the fake
/// (removing it from the answers) and keeps Namespace objects in a small store of its own;
/// every other request goes to the fake untouched. Known gap: owner-reference garbage
/// collection of a deleted Tenant's children is not simulated.
fn cluster_scope_shim(fake: Client) -> Client {
    let namespaces = NamespaceStore::default();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let fake = fake.clone();
        let namespaces = namespaces.clone();
        async move {
            let path = request.uri().path().to_owned();
            if let Some(rest) = path.strip_prefix(NAMESPACES_PATH) {
                let segments: Vec<String> = rest
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                if segments.len() <= 1 {
                    let method = request.method().clone();
                    let body = request
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| kube::Error::Service(e.into()))?
                        .to_bytes();
                    return Ok(namespaces.handle(
                        &method,
                        segments.first().map(String::as_str),
                        &body,
                    ));
                }
            }
            let is_tenant = path.starts_with(TENANTS_PATH);
            let (request, unchanged) = skip_noop_apply(&fake, request).await?;
            if let Some(current) = unchanged {
                return Ok(current);
            }
            let mut request = request;
            if is_tenant {
                let rewritten = path.replacen(
                    TENANTS_PATH,
                    &format!("/apis/voice.switchboard.dev/v1alpha1/namespaces/{CLUSTER_SCOPE_NAMESPACE}/tenants"),
                    1,
                );
                let query = request
                    .uri()
                    .query()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                *request.uri_mut() = format!("{rewritten}{query}").parse().expect("valid uri");
            }
            let response = fake.send(request).await?;
            if !is_tenant {
                return Ok::<_, kube::Error>(response);
            }
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| kube::Error::Service(e.into()))?
                .to_bytes();
            let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(mut value) => {
                    strip_namespace(&mut value);
                    serde_json::to_vec(&value).expect("json")
                }
                Err(_) => bytes.to_vec(),
            };
            Ok(http::Response::from_parts(
                parts,
                kube::client::Body::from(body),
            ))
        }
    });
    Client::new(service, "default")
}

/// The real API server does not write (nor bump `generation`) when an apply changes nothing;
/// kube-fake-client always writes. For an apply patch whose merge leaves the stored object
/// unchanged, answer with the stored object instead of forwarding the write.
async fn skip_noop_apply(
    fake: &Client,
    request: http::Request<kube::client::Body>,
) -> Result<
    (
        http::Request<kube::client::Body>,
        Option<http::Response<kube::client::Body>>,
    ),
    kube::Error,
> {
    let is_apply = request.method() == http::Method::PATCH
        && request
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/apply-patch"));
    if !is_apply {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| kube::Error::Service(e.into()))?
        .to_bytes();
    let rebuilt =
        || http::Request::from_parts(parts.clone(), kube::client::Body::from(bytes.to_vec()));
    let Ok(patch) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok((rebuilt(), None));
    };
    let get = http::Request::get(parts.uri.path())
        .body(kube::client::Body::empty())
        .expect("request");
    let Ok(current) = fake.send(get).await else {
        return Ok((rebuilt(), None));
    };
    if !current.status().is_success() {
        return Ok((rebuilt(), None));
    }
    let current_bytes = current
        .into_body()
        .collect()
        .await
        .map_err(|e| kube::Error::Service(e.into()))?
        .to_bytes();
    let Ok(stored) = serde_json::from_slice::<serde_json::Value>(&current_bytes) else {
        return Ok((rebuilt(), None));
    };
    let mut merged = stored.clone();
    merge(&mut merged, &patch);
    if merged == stored {
        let unchanged = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(current_bytes.to_vec()))
            .expect("response");
        return Ok((rebuilt(), Some(unchanged)));
    }
    Ok((rebuilt(), None))
}

fn strip_namespace(value: &mut serde_json::Value) {
    if let Some(items) = value.get_mut("items").and_then(|i| i.as_array_mut()) {
        items.iter_mut().for_each(strip_namespace);
    }
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut())
        && meta.get("namespace").and_then(|n| n.as_str()) == Some(CLUSTER_SCOPE_NAMESPACE)
    {
        meta.remove("namespace");
    }
}

/// Namespace objects, served by the shim: get, list, delete, and patch (apply creates).
#[derive(Clone, Default)]
struct NamespaceStore {
    objects: Arc<std::sync::Mutex<std::collections::BTreeMap<String, serde_json::Value>>>,
    version: Arc<AtomicUsize>,
}

impl NamespaceStore {
    fn handle(
        &self,
        method: &http::Method,
        name: Option<&str>,
        body: &[u8],
    ) -> http::Response<kube::client::Body> {
        let mut objects = self.objects.lock().expect("lock");
        match (method.as_str(), name) {
            ("GET", None) => {
                let items: Vec<_> = objects.values().cloned().collect();
                json_response(
                    200,
                    serde_json::json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}),
                )
            }
            ("GET", Some(name)) => match objects.get(name) {
                Some(object) => json_response(200, object.clone()),
                None => not_found(name),
            },
            ("DELETE", Some(name)) => match objects.remove(name) {
                Some(object) => json_response(200, object),
                None => not_found(name),
            },
            ("PATCH", Some(name)) => {
                let patch: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                let object = objects.entry(name.to_owned()).or_insert_with(|| {
                    serde_json::json!({
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "uid": uuid_like(name), "creationTimestamp": "2026-01-01T00:00:00Z"}
                    })
                });
                merge(object, &patch);
                let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
                object["metadata"]["resourceVersion"] = serde_json::json!(version.to_string());
                json_response(200, object.clone())
            }
            _ => json_response(
                405,
                serde_json::json!({"kind": "Status", "code": 405, "message": "not supported by the test shim"}),
            ),
        }
    }
}

fn uuid_like(name: &str) -> String {
    format!("00000000-0000-4000-8000-{:012x}", name.len())
}

/// JSON merge patch (RFC 7396), which is how the fake treats apply patches too.
fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(
                        target.entry(key.clone()).or_insert(serde_json::Value::Null),
                        value,
                    );
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn not_found(name: &str) -> http::Response<kube::client::Body> {
    json_response(
        404,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": format!("namespaces \"{name}\" not found")}),
    )
}

fn json_response(code: u16, body: serde_json::Value) -> http::Response<kube::client::Body> {
    http::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(
            serde_json::to_vec(&body).expect("json"),
        ))
        .expect("response")
}
