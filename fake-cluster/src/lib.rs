//! An in-memory Kubernetes API server for tests: kube-fake-client, which knows our CRDs and
//! their status subresources, behind a shim that adds what the fake lacks (watches,
//! cluster-scoped Tenants and Namespaces, whole lists, the API server's apply and JSON-patch
//! semantics). The operator's controllers, the gateway in Kubernetes mode and the end-to-end
//! tests share one such server through [`InMemoryApi`]; [`simulate_cluster`] plays
//! kube-controller-manager's part (Deployment rollouts, quota status).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube_fake_client::{ClientBuilder, interceptor};
use switchboard_crds::{Campaign, PhoneNumber, Tenant};
use tokio::sync::broadcast;

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
    in_memory_api(tenants, objects, status_writes).await.client
}

/// The in-memory API server, seeded like [`fake_api_seeded`], with its request counts.
pub async fn in_memory_api(
    tenants: Vec<Tenant>,
    objects: Vec<serde_json::Value>,
    status_writes: WriteCounter,
) -> InMemoryApi {
    let counter = status_writes.0.clone();
    let fake = ClientBuilder::new()
        .with_resource::<Tenant>()
        .with_resource::<PhoneNumber>()
        .with_resource::<Campaign>()
        .with_status_subresource::<Tenant>()
        .with_status_subresource::<PhoneNumber>()
        .with_status_subresource::<Campaign>()
        .with_status_subresource::<Deployment>()
        .with_status_subresource::<ResourceQuota>()
        .with_runtime_objects(objects)
        .with_objects(tenants.into_iter().map(file_cluster_scoped).collect())
        .with_interceptor_funcs(interceptor::Funcs::new().patch_status(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }))
        .build()
        .await
        .expect("fake API server");
    let requests = Requests::default();
    let shim = Shim {
        fake,
        namespaces: NamespaceStore::default(),
        hub: WatchHub::default(),
        requests: Some(requests.clone()),
        require_namespaces: Arc::default(),
    };
    InMemoryApi {
        client: shim.clone().into_client(),
        requests,
        shim,
    }
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

/// The in-memory API server: kube-fake-client behind the shim below.
#[derive(Clone)]
pub struct InMemoryApi {
    /// A client whose every request is counted in [`InMemoryApi::requests`] (the operator's).
    pub client: Client,
    /// Requests by verb and resource, as the API server saw them.
    pub requests: Requests,
    shim: Shim,
}

impl InMemoryApi {
    /// A client whose requests are not counted: the tests' own and the simulated cluster's
    /// (kube-controller-manager) writes, which the operator's figures must not include.
    pub fn uncounted_client(&self) -> Client {
        let mut shim = self.shim.clone();
        shim.requests = None;
        shim.into_client()
    }

    /// From now on, refuses (404, like the API server) writes into namespaces that do not
    /// exist, e.g. a Secret written into a tenant's namespace before the operator created it.
    /// Off by default: controller tests seed namespaced objects without their Namespace.
    pub fn require_namespaces(&self) {
        self.shim.require_namespaces.store(true, Ordering::SeqCst);
    }

    /// Every change the API server makes, as its watches report them (for simulators).
    pub fn changes(&self) -> broadcast::Receiver<Arc<Change>> {
        self.shim.hub.tx.subscribe()
    }

    /// Serves the API over HTTP on `127.0.0.1` (for an operator in another process) and
    /// returns its address. Requests over HTTP are counted like those of [`Self::client`].
    pub async fn serve_http(&self) -> std::net::SocketAddr {
        let shim = self.shim.clone();
        let service = tower::service_fn(move |request: axum::extract::Request| {
            let shim = shim.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let request = http::Request::from_parts(parts, kube::client::Body::from(bytes));
                let response = match shim.handle(request).await {
                    Ok(response) => response.map(axum::body::Body::new),
                    Err(error) => http::Response::builder()
                        .status(500)
                        .body(axum::body::Body::from(error.to_string()))
                        .expect("response"),
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let app = axum::Router::new().fallback_service(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }
}

/// Requests the API server answered, by verb (`get`, `list`, `watch`, `create`, `update`,
/// `patch`, `delete`) and resource (`deployments`, `tenants/status` …).
#[derive(Clone, Default)]
pub struct Requests(Arc<Mutex<BTreeMap<(String, String), u64>>>);

impl Requests {
    /// All counts so far.
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.0.lock().expect("lock").clone()
    }

    /// Requests so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Requests that change something (create, update, patch, delete) so far.
    pub fn writes(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((verb, _), _)| is_write(verb))
            .map(|(_, n)| n)
            .sum()
    }

    fn count(&self, verb: &str, resource: &str) {
        *self
            .0
            .lock()
            .expect("lock")
            .entry((verb.to_owned(), resource.to_owned()))
            .or_default() += 1;
    }
}

/// Whether `verb` changes state.
pub fn is_write(verb: &str) -> bool {
    matches!(verb, "create" | "update" | "patch" | "delete")
}

/// Counts by verb of `after - before`.
pub fn by_verb(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
) -> BTreeMap<String, u64> {
    let mut verbs = BTreeMap::new();
    for (key, n) in after {
        let delta = n - before.get(key).copied().unwrap_or(0);
        if delta > 0 {
            *verbs.entry(key.0.clone()).or_default() += delta;
        }
    }
    verbs
}

/// One change, as the API server's watches report it.
pub struct Change {
    seq: u64,
    /// `/api/v1/configmaps`, `/apis/apps/v1/deployments` … (no namespace).
    pub collection: String,
    /// The object's namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object.
    pub object: Arc<serde_json::Value>,
    line: Bytes,
}

/// Changes fanned out to watches. Publishing and subscribing happen under one lock, so a watch
/// that starts from a list's cursor gets every later change exactly once.
#[derive(Clone)]
struct WatchHub {
    state: Arc<Mutex<HubState>>,
    tx: broadcast::Sender<Arc<Change>>,
}

struct HubState {
    seq: u64,
    recent: VecDeque<Arc<Change>>,
}

/// The changes after a cursor, and a receiver of those still to come.
type Subscription = (Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>);

/// Changes kept for watches that start from an older cursor (the list → watch gap).
const RECENT_CHANGES: usize = 16_384;

impl Default for WatchHub {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(HubState {
                seq: 0,
                recent: VecDeque::new(),
            })),
            tx: broadcast::channel(1 << 16).0,
        }
    }
}

impl WatchHub {
    fn cursor(&self) -> String {
        format!("h{}", self.state.lock().expect("lock").seq)
    }

    fn publish(&self, collection: String, kind: &'static str, mut object: serde_json::Value) {
        strip_namespace(&mut object);
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_owned);
        let mut state = self.state.lock().expect("lock");
        state.seq += 1;
        let line = {
            let mut line =
                serde_json::to_vec(&serde_json::json!({"type": kind, "object": &object}))
                    .expect("json");
            line.push(b'\n');
            Bytes::from(line)
        };
        let change = Arc::new(Change {
            seq: state.seq,
            collection,
            namespace,
            kind,
            object: Arc::new(object),
            line,
        });
        state.recent.push_back(change.clone());
        if state.recent.len() > RECENT_CHANGES {
            state.recent.pop_front();
        }
        let _ = self.tx.send(change);
    }

    /// The changes after `cursor` and a receiver of those still to come; `None` when the
    /// cursor is unknown or too old (the client must list again: 410 Gone).
    fn subscribe(&self, cursor: &str) -> Option<Subscription> {
        let from: u64 = cursor.strip_prefix('h')?.parse().ok()?;
        let state = self.state.lock().expect("lock");
        let oldest = state.recent.front().map_or(state.seq + 1, |c| c.seq);
        if from + 1 < oldest {
            return None;
        }
        let replay = state
            .recent
            .iter()
            .filter(|c| c.seq > from)
            .cloned()
            .collect();
        Some((replay, self.tx.subscribe()))
    }
}

/// A request path: `/api/v1[/namespaces/{ns}]/{resource}[/{name}[/status]]` or the same
/// under `/apis/{group}/{version}`.
struct Target {
    collection: String,
    resource: String,
    namespaced_in: Option<String>,
    name: Option<String>,
    status: bool,
}

impl Target {
    fn parse(path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (prefix, rest) = match *segments.first()? {
            "api" => (format!("/api/{}", segments.get(1)?), &segments[2..]),
            "apis" => (
                format!("/apis/{}/{}", segments.get(1)?, segments.get(2)?),
                &segments[3..],
            ),
            _ => return None,
        };
        let (namespaced_in, rest) = if rest.len() >= 3 && rest[0] == "namespaces" {
            (Some(rest[1].to_owned()), &rest[2..])
        } else {
            (None, rest)
        };
        let resource = (*rest.first()?).to_owned();
        Some(Self {
            collection: format!("{prefix}/{resource}"),
            name: rest.get(1).map(|n| (*n).to_owned()),
            status: rest.get(2) == Some(&"status"),
            resource,
            namespaced_in,
        })
    }
}

fn query_params(request: &http::Request<kube::client::Body>) -> Vec<(String, String)> {
    request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn with_query(uri: &http::Uri, params: &[(String, String)]) -> http::Uri {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let path = uri.path();
    if query.is_empty() {
        path.parse().expect("uri")
    } else {
        format!("{path}?{query}").parse().expect("uri")
    }
}

/// `k=v`, `k==v`, `k!=v`, `k` and `!k` terms, comma-separated.
fn matches_labels(object: &serde_json::Value, selector: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            labels[key].as_str() != Some(value)
        } else if let Some((key, value)) = term.split_once('=') {
            labels[key].as_str() == Some(value.trim_start_matches('='))
        } else if let Some(key) = term.strip_prefix('!') {
            labels.get(key).is_none()
        } else {
            labels.get(term).is_some()
        }
    })
}

type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn boxed(body: kube::client::Body) -> ResponseBody {
    body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()
}

/// kube-fake-client 0.3 cannot serve two cluster-scoped kinds the operator writes: it registers
/// every custom resource as namespaced (its registry has a TODO for cluster scope), so it refuses
/// Tenants; and its path parser rejects `/api/v1/namespaces/{name}`, so it cannot serve
/// Namespace objects at all. It has no watches either, and truncates paged lists. This shim
/// files Tenants under a hidden namespace of the fake (removing it from the answers), keeps
/// Namespace objects in a small store of its own, answers lists whole with a cursor, and serves
/// watches from the changes it forwarded (every write passes through it). Every other request
/// goes to the fake untouched. Known gaps: owner-reference garbage collection of a deleted
/// Tenant's children is not simulated, and watches never time out (a real API server ends them
/// after `timeoutSeconds` and the client resumes).
#[derive(Clone)]
struct Shim {
    fake: Client,
    namespaces: NamespaceStore,
    hub: WatchHub,
    requests: Option<Requests>,
    /// Refuse writes into namespaces that do not exist (see
    /// [`InMemoryApi::require_namespaces`]).
    require_namespaces: Arc<std::sync::atomic::AtomicBool>,
}

impl Shim {
    fn into_client(self) -> Client {
        Client::new(
            tower::service_fn(move |request| self.clone().handle(request)),
            "default",
        )
    }

    async fn handle(
        self,
        request: http::Request<kube::client::Body>,
    ) -> Result<http::Response<ResponseBody>, kube::Error> {
        let path = request.uri().path().to_owned();
        let Some(target) = Target::parse(&path) else {
            return Ok(self.fake.send(request).await?.map(boxed));
        };
        let params = query_params(&request);
        let watching = params
            .iter()
            .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
        let method = request.method().clone();
        let verb = match (method.as_str(), target.name.is_some()) {
            ("GET", _) if watching => "watch",
            ("GET", true) => "get",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            _ => "other",
        };
        if let Some(requests) = &self.requests {
            let resource = if target.status {
                format!("{}/status", target.resource)
            } else {
                target.resource.clone()
            };
            requests.count(verb, &resource);
        }
        if verb == "watch" {
            return Ok(self.watch(&target, &params));
        }
        let cursor = self.hub.cursor();
        let mut request = request;
        if verb == "list" {
            // Whole lists: the fake truncates at `limit` without a continue token.
            let kept: Vec<_> = params
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "limit" | "continue" | "resourceVersion" | "resourceVersionMatch"
                    )
                })
                .cloned()
                .collect();
            *request.uri_mut() = with_query(request.uri(), &kept);
        }
        let response = if target.collection == NAMESPACES_PATH && target.namespaced_in.is_none() {
            let body = body_bytes(request.into_body()).await?;
            let (response, change) = self
                .namespaces
                .handle(&method, target.name.as_deref(), &body);
            if let Some((kind, object)) = change {
                self.hub.publish(target.collection.clone(), kind, object);
            }
            response
        } else if let Some(missing) = self.missing_namespace(&target, verb) {
            not_found_namespace(&missing)
        } else {
            self.forward(request, &target, verb).await?
        };
        if verb != "list" || !response.status().is_success() {
            return Ok(response.map(boxed));
        }
        let (parts, body) = response.into_parts();
        let mut list: serde_json::Value =
            serde_json::from_slice(&body_bytes(body).await?).unwrap_or_default();
        list["metadata"]["resourceVersion"] = serde_json::json!(cursor);
        Ok(http::Response::from_parts(
            parts,
            boxed(kube::client::Body::from(
                serde_json::to_vec(&list).expect("json"),
            )),
        ))
    }

    /// The namespace a write targets when it does not exist and namespaces are required.
    fn missing_namespace(&self, target: &Target, verb: &str) -> Option<String> {
        if !self.require_namespaces.load(Ordering::SeqCst) || !is_write(verb) || verb == "delete" {
            return None;
        }
        let namespace = target.namespaced_in.as_deref()?;
        let known = self
            .namespaces
            .objects
            .lock()
            .expect("lock")
            .contains_key(namespace);
        (!known).then(|| namespace.to_owned())
    }

    /// Forwards a request to the fake (Tenants into their hidden namespace), publishing the
    /// change a successful write made.
    async fn forward(
        &self,
        request: http::Request<kube::client::Body>,
        target: &Target,
        verb: &str,
    ) -> Result<http::Response<kube::client::Body>, kube::Error> {
        let path = request.uri().path().to_owned();
        let is_tenant = path.starts_with(TENANTS_PATH);
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
        let request = null_tests_pass_on_missing_paths(&self.fake, request).await?;
        let (request, unchanged) = skip_noop_apply(&self.fake, request).await?;
        // A deletion's answer may be a Status; the watch reports the object.
        let before_delete = if verb == "delete" {
            let get = http::Request::get(request.uri().path())
                .body(kube::client::Body::empty())
                .expect("request");
            let current = self.fake.send(get).await?;
            json_body(current).await?.1
        } else {
            None
        };
        let noop = unchanged.is_some();
        let response = match unchanged {
            Some(current) => current,
            None => self.fake.send(request).await?,
        };
        let (parts, bytes) = {
            let (parts, body) = response.into_parts();
            (parts, body_bytes(body).await?)
        };
        let mut value = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        if parts.status.is_success() && is_write(verb) && !noop {
            let answered = value.clone().filter(|v| v["kind"] != "Status");
            if let Some(object) = answered.or(before_delete) {
                let gone = object["metadata"]["deletionTimestamp"].is_string()
                    && object["metadata"]["finalizers"]
                        .as_array()
                        .is_none_or(|f| f.is_empty());
                let kind = match verb {
                    "create" => "ADDED",
                    "delete" if gone || object["metadata"]["deletionTimestamp"].is_null() => {
                        "DELETED"
                    }
                    _ if gone => "DELETED",
                    _ => "MODIFIED",
                };
                self.hub.publish(target.collection.clone(), kind, object);
            }
        }
        if !is_tenant {
            return Ok(http::Response::from_parts(
                parts,
                kube::client::Body::from(bytes.to_vec()),
            ));
        }
        let body = match value.as_mut() {
            Some(value) => {
                strip_namespace(value);
                serde_json::to_vec(value).expect("json")
            }
            None => bytes.to_vec(),
        };
        Ok(http::Response::from_parts(
            parts,
            kube::client::Body::from(body),
        ))
    }

    /// A watch: the changes after the request's cursor, then live ones, as JSON lines.
    fn watch(&self, target: &Target, params: &[(String, String)]) -> http::Response<ResponseBody> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let selector = param("labelSelector");
        let collection = target.collection.clone();
        let namespace = target.namespaced_in.clone();
        let wanted = move |change: &Change| {
            change.collection == collection
                && (namespace.is_none() || change.namespace == namespace)
                && (selector.is_empty() || matches_labels(&change.object, &selector))
        };
        let gone = || {
            let line = serde_json::json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired",
                "code": 410, "message": "too old resource version"}});
            let mut bytes = serde_json::to_vec(&line).expect("json");
            bytes.push(b'\n');
            Bytes::from(bytes)
        };
        let lines: futures::stream::BoxStream<'static, Bytes> =
            match self.hub.subscribe(&param("resourceVersion")) {
                None => futures::stream::once(async move { gone() }).boxed(),
                Some((replay, receiver)) => {
                    let last = replay.last().map_or(0, |c| c.seq);
                    let wanted = Arc::new(wanted);
                    let replayed = {
                        let wanted = wanted.clone();
                        futures::stream::iter(
                            replay
                                .into_iter()
                                .filter(move |c| wanted(c))
                                .map(|c| c.line.clone())
                                .collect::<Vec<_>>(),
                        )
                    };
                    let live =
                        futures::stream::unfold((receiver, false), move |(mut receiver, ended)| {
                            let wanted = wanted.clone();
                            async move {
                                if ended {
                                    return None;
                                }
                                loop {
                                    match receiver.recv().await {
                                        Ok(change) if change.seq > last && wanted(&change) => {
                                            return Some((change.line.clone(), (receiver, false)));
                                        }
                                        Ok(_) => {}
                                        // Too slow a reader: make it list again.
                                        Err(broadcast::error::RecvError::Lagged(_)) => {
                                            return Some((gone(), (receiver, true)));
                                        }
                                        Err(broadcast::error::RecvError::Closed) => return None,
                                    }
                                }
                            }
                        });
                    replayed.chain(live).boxed()
                }
            };
        let body = StreamBody::new(lines.map(|line| Ok::<_, BoxError>(Frame::data(line))));
        http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(body.boxed_unsync())
            .expect("response")
    }
}

async fn json_body(
    response: http::Response<kube::client::Body>,
) -> Result<(http::StatusCode, Option<serde_json::Value>), kube::Error> {
    let status = response.status();
    let bytes = body_bytes(response.into_body()).await?;
    Ok((
        status,
        serde_json::from_slice(&bytes)
            .ok()
            .filter(|_| status.is_success()),
    ))
}

/// The whole body of a request or response.
pub async fn body_bytes<B>(body: B) -> Result<Bytes, kube::Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    Ok(body
        .collect()
        .await
        .map_err(|e| kube::Error::Service(e.into()))?
        .to_bytes())
}

/// A PATCH of one content type, taken apart, with the object it patches as stored now.
struct PatchRequest {
    parts: http::request::Parts,
    body: Bytes,
    /// The stored object, if it could be read.
    current: Option<serde_json::Value>,
}

impl PatchRequest {
    /// The request of `content_type` taken apart, or the request given back untouched.
    async fn take(
        fake: &Client,
        request: http::Request<kube::client::Body>,
        content_type: &[u8],
    ) -> Result<Result<Self, http::Request<kube::client::Body>>, kube::Error> {
        let matches = request.method() == http::Method::PATCH
            && request
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(content_type));
        if !matches {
            return Ok(Err(request));
        }
        let (parts, body) = request.into_parts();
        let body = body_bytes(body).await?;
        let get = http::Request::get(parts.uri.path())
            .body(kube::client::Body::empty())
            .expect("request");
        let (_, current) = json_body(fake.send(get).await?).await?;
        Ok(Ok(Self {
            parts,
            body,
            current,
        }))
    }

    fn rebuild(&self, body: Vec<u8>) -> http::Request<kube::client::Body> {
        http::Request::from_parts(self.parts.clone(), kube::client::Body::from(body))
    }
}

/// The API server's JSON patch lets `{"op": "test", "value": null}` pass on a missing path
/// (kube-runtime's finalizer helper relies on it when an object has no finalizers yet); the
/// fake's JSON patch fails it. Such tests are checked here and dropped when they hold.
async fn null_tests_pass_on_missing_paths(
    fake: &Client,
    request: http::Request<kube::client::Body>,
) -> Result<http::Request<kube::client::Body>, kube::Error> {
    let patch = match PatchRequest::take(fake, request, b"application/json-patch").await? {
        Ok(patch) => patch,
        Err(request) => return Ok(request),
    };
    let (Ok(serde_json::Value::Array(operations)), Some(current)) =
        (serde_json::from_slice(&patch.body), patch.current.as_ref())
    else {
        return Ok(patch.rebuild(patch.body.to_vec()));
    };
    let kept: Vec<_> = operations
        .into_iter()
        .filter(|op| {
            let null_test = op["op"] == "test" && op["value"].is_null();
            let path = op["path"].as_str().unwrap_or_default();
            !(null_test && current.pointer(path).is_none_or(|v| v.is_null()))
        })
        .collect();
    Ok(patch.rebuild(serde_json::to_vec(&kept).expect("json")))
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
    let patch = match PatchRequest::take(fake, request, b"application/apply-patch").await? {
        Ok(patch) => patch,
        Err(request) => return Ok((request, None)),
    };
    let rebuilt = patch.rebuild(patch.body.to_vec());
    let (Ok(body), Some(stored)) = (
        serde_json::from_slice::<serde_json::Value>(&patch.body),
        patch.current,
    ) else {
        return Ok((rebuilt, None));
    };
    let mut merged = stored.clone();
    merge(&mut merged, &body);
    if merged != stored {
        return Ok((rebuilt, None));
    }
    Ok((rebuilt, Some(json_response(200, stored))))
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
    /// Answers a request; a write also returns the change for the watches.
    fn handle(
        &self,
        method: &http::Method,
        name: Option<&str>,
        body: &[u8],
    ) -> (
        http::Response<kube::client::Body>,
        Option<(&'static str, serde_json::Value)>,
    ) {
        let mut objects = self.objects.lock().expect("lock");
        match (method.as_str(), name) {
            ("GET", None) => {
                let items: Vec<_> = objects.values().cloned().collect();
                (
                    json_response(
                        200,
                        serde_json::json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}),
                    ),
                    None,
                )
            }
            ("GET", Some(name)) => match objects.get(name) {
                Some(object) => (json_response(200, object.clone()), None),
                None => (not_found(name), None),
            },
            ("DELETE", Some(name)) => match objects.remove(name) {
                Some(object) => (
                    json_response(200, object.clone()),
                    Some(("DELETED", object)),
                ),
                None => (not_found(name), None),
            },
            ("PATCH", Some(name)) => {
                let patch: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                let created = !objects.contains_key(name);
                let object = objects.entry(name.to_owned()).or_insert_with(|| {
                    serde_json::json!({
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "uid": uuid_like(name), "creationTimestamp": "2026-01-01T00:00:00Z"}
                    })
                });
                let before = object.clone();
                merge(object, &patch);
                if !created && *object == before {
                    // Like the API server: an apply that changes nothing writes nothing.
                    return (json_response(200, object.clone()), None);
                }
                let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
                object["metadata"]["resourceVersion"] = serde_json::json!(version.to_string());
                let kind = if created { "ADDED" } else { "MODIFIED" };
                (
                    json_response(200, object.clone()),
                    Some((kind, object.clone())),
                )
            }
            _ => (
                json_response(
                    405,
                    serde_json::json!({"kind": "Status", "code": 405, "message": "not supported by the test shim"}),
                ),
                None,
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

/// The API server's answer to a write into a namespace that does not exist.
fn not_found_namespace(namespace: &str) -> http::Response<kube::client::Body> {
    json_response(
        404,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "details": {"name": namespace, "kind": "namespaces"},
            "message": format!("namespaces \"{namespace}\" not found")}),
    )
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

/// How the simulated cluster behaves.
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    /// Delay of each step of a Deployment's rollout (observed → available) and of a
    /// ResourceQuota's first status.
    pub step: std::time::Duration,
    /// Status updates per second that change nothing the operator reads (ResourceQuota
    /// usage, Deployment condition heartbeats), spread over the known objects.
    pub rest_updates_per_second: u32,
}

/// What kube-controller-manager does to the operator's objects, against the in-memory API:
/// a new or changed Deployment is observed, then becomes available (two status writes); a
/// ResourceQuota gets its status; and, all along, status updates that change nothing the
/// operator reads. Its writes are not counted as the operator's. Runs until aborted.
pub fn simulate_cluster(api: &InMemoryApi, churn: Churn) -> tokio::task::JoinHandle<()> {
    let client = api.uncounted_client();
    let mut changes = api.changes();
    tokio::spawn(async move {
        let known: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let heartbeat = tokio::spawn(rest_churn(client.clone(), known.clone(), churn));
        loop {
            let change = match changes.recv().await {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if change.kind == "DELETED" {
                continue;
            }
            let object = change.object.clone();
            let namespace = change.namespace.clone().unwrap_or_default();
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match change.collection.as_str() {
                "/apis/apps/v1/deployments" => {
                    let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
                    let observed = object["status"]["observedGeneration"].as_i64().unwrap_or(0);
                    if observed >= generation {
                        continue;
                    }
                    if change.kind == "ADDED" {
                        known.lock().expect("lock").push((
                            "deployments".into(),
                            namespace.clone(),
                            name.clone(),
                        ));
                    }
                    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
                    tokio::spawn(roll_out(
                        Api::namespaced(client.clone(), &namespace),
                        name,
                        generation,
                        replicas,
                        churn.step,
                    ));
                }
                "/api/v1/resourcequotas" => {
                    let hard = object["spec"]["hard"].clone();
                    if object["status"]["hard"] == hard {
                        continue;
                    }
                    if change.kind == "ADDED" {
                        known.lock().expect("lock").push((
                            "resourcequotas".into(),
                            namespace.clone(),
                            name.clone(),
                        ));
                    }
                    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &namespace);
                    let step = churn.step;
                    tokio::spawn(async move {
                        tokio::time::sleep(step).await;
                        let status = serde_json::json!({"status": {"hard": hard, "used": {"pods": "0", "requests.cpu": "0", "requests.memory": "0"}}});
                        let _ = quotas
                            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                            .await;
                    });
                }
                _ => {}
            }
        }
        heartbeat.abort();
    })
}

async fn roll_out(
    deployments: Api<Deployment>,
    name: String,
    generation: i64,
    replicas: i64,
    step: std::time::Duration,
) {
    tokio::time::sleep(step).await;
    let progressing = serde_json::json!({"status": {
        "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
        "unavailableReplicas": replicas,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"}]}});
    let _ = deployments
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&progressing))
        .await;
    tokio::time::sleep(step).await;
    let available = serde_json::json!({"status": {
        "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": replicas, "availableReplicas": replicas, "unavailableReplicas": null,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}});
    let _ = deployments
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&available))
        .await;
}

/// Status updates that change nothing the operator reads: quota usage moving and the
/// Deployment's conditions being refreshed, round-robin over the known objects.
async fn rest_churn(
    client: Client,
    known: Arc<Mutex<Vec<(String, String, String)>>>,
    churn: Churn,
) {
    if churn.rest_updates_per_second == 0 {
        return;
    }
    let every = std::time::Duration::from_secs(1) / churn.rest_updates_per_second;
    let mut tick = tokio::time::interval(every);
    let mut next = 0usize;
    loop {
        tick.tick().await;
        let target = {
            let known = known.lock().expect("lock");
            if known.is_empty() {
                continue;
            }
            next = (next + 1) % known.len();
            known[next].clone()
        };
        let (resource, namespace, name) = target;
        let beat = (next % 7).to_string();
        if resource == "deployments" {
            let status = serde_json::json!({"status": {"conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": format!("heartbeat {beat}")},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}});
            let _ = Api::<Deployment>::namespaced(client.clone(), &namespace)
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await;
        } else {
            let status = serde_json::json!({"status": {"used": {"configmaps": beat}}});
            let _ = Api::<ResourceQuota>::namespaced(client.clone(), &namespace)
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await;
        }
    }
}
