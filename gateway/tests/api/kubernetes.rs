//! Kubernetes mode against a recording stand-in for the API server (a tower service behind
//! `kube::Client`): signup creates no `Tenant` CR, verifying the owner's address applies it
//! with field manager `switchboard-gateway` (never forced), a tenant PATCH re-applies it,
//! credentials are projected into `provider-keys`, and readiness is read back from the CR
//! status. The projection converges once the tenant's namespace exists (the stand-in answers
//! 404 for Secrets until a test says the namespace is there).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::provider_keys::{RetryTiming, spawn_projection_retries};
use switchboard_gateway::store::{Scope, provider_keys};

use crate::common::{Options, TestApp, apps, sqlite_app};

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    body: Value,
    status: u16,
}

fn fake_api_server(log: Arc<Mutex<Vec<Recorded>>>) -> kube::Client {
    gated_api_server(log, Arc::new(AtomicBool::new(true)))
}

/// Like [`fake_api_server`], but Secrets in tenant namespaces are refused with the API
/// server's 404 (`namespaces "…" not found`) while `namespaces_exist` is false.
fn gated_api_server(
    log: Arc<Mutex<Vec<Recorded>>>,
    namespaces_exist: Arc<AtomicBool>,
) -> kube::Client {
    // Tenants applied so far (name → last body): a GET of any other answers 404.
    let tenants: Arc<Mutex<std::collections::HashMap<String, Value>>> = Arc::default();
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let log = log.clone();
        let namespaces_exist = namespaces_exist.clone();
        let tenants = tenants.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(Body::new(body), usize::MAX)
                .await
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path().to_owned();
            let missing_namespace =
                if path.contains("/secrets/") && !namespaces_exist.load(Ordering::SeqCst) {
                    path.strip_prefix("/api/v1/namespaces/")
                        .and_then(|rest| rest.split('/').next())
                        .map(str::to_owned)
                } else {
                    None
                };
            let status = if missing_namespace.is_some() {
                404
            } else {
                200
            };
            log.lock().unwrap().push(Recorded {
                method: parts.method.to_string(),
                path: path.clone(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                body: body.clone(),
                status,
            });
            if let Some(namespace) = missing_namespace {
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": format!("namespaces \"{namespace}\" not found"),
                    "reason": "NotFound", "details": {"name": namespace, "kind": "namespaces"}, "code": 404});
                return Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .header("content-type", "application/json")
                        .body(Body::from(status.to_string()))
                        .unwrap(),
                );
            }
            // Apply answers with the applied object; GET of an applied Tenant answers it Ready
            // (with the gateway holding what it applied), of any other Tenant 404.
            let name = path.rsplit('/').next().unwrap_or_default().to_owned();
            let is_tenant = path.contains("/tenants/");
            if is_tenant && parts.method == "PATCH" {
                tenants.lock().unwrap().insert(name.clone(), body.clone());
            }
            let stored = tenants.lock().unwrap().get(&name).cloned();
            let answer = if parts.method == "GET" && is_tenant {
                let Some(mut stored) = stored else {
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "message": format!("tenants \"{name}\" not found"),
                        "reason": "NotFound", "code": 404});
                    return Ok(Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .header("content-type", "application/json")
                        .body(Body::from(status.to_string()))
                        .unwrap());
                };
                let fields: serde_json::Map<String, Value> = stored["spec"]
                    .as_object()
                    .map(|spec| spec.keys().map(|k| (format!("f:{k}"), json!({}))).collect())
                    .unwrap_or_default();
                stored["metadata"]["managedFields"] = json!([{"manager": "switchboard-gateway",
                    "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": fields}}]);
                stored["status"] = json!({"namespace": format!("tenant-{name}"), "conditions": [{"type": "Ready", "status": "True",
                        "reason": "Reconciled", "message": "runtime available", "lastTransitionTime": "2026-11-21T00:00:00Z"}]});
                stored
            } else {
                body
            };
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(Body::from(answer.to_string()))
                    .unwrap(),
            )
        }
    });
    kube::Client::new(service, "default")
}

#[tokio::test]
async fn kubernetes_mode_writes_tenant_cr_and_provider_secret() {
    println!(
        "kubernetes_mode_writes_tenant_cr_and_provider_secret: running on [\"sqlite\"] (the database backend is not what this test is about)"
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut app = sqlite_app(&Options::default()).await;
    app.state.kube = KubeSync::with_client(fake_api_server(log.clone()));
    app.router = switchboard_gateway::app(app.state.clone());

    let owner = app.signup("k8s@acme.io", "Kube Co").await;
    let tenant_patches = |log: &Arc<Mutex<Vec<Recorded>>>| -> Vec<Recorded> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains("/tenants/"))
            .cloned()
            .collect()
    };
    // An unverified signup costs the cluster nothing: no Tenant, so no namespace or pod.
    assert!(
        tenant_patches(&log).is_empty(),
        "{:?}",
        tenant_patches(&log)
    );
    let token = app.mailed_token("k8s@acme.io");
    let verified = app
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
    // Only the Tenant counts here: the runtime-credential projection writes Secrets too.
    let applies = tenant_patches(&log);
    assert_eq!(applies.len(), 1, "{applies:?}");
    let cr = &applies[0];
    assert_eq!(
        cr.path,
        "/apis/voice.switchboard.dev/v1alpha1/tenants/kube-co"
    );
    assert!(
        cr.query.contains("fieldManager=switchboard-gateway") && !cr.query.contains("force"),
        "{}",
        cr.query
    );
    assert!(
        cr.body["spec"].get("suspended").is_none(),
        "suspension is the manifest's: {}",
        cr.body
    );
    assert_eq!(cr.body["kind"], "Tenant");
    assert_eq!(cr.body["spec"]["displayName"], "Kube Co");
    assert_eq!(cr.body["spec"]["providerSecretRef"], "provider-keys");
    assert_eq!(
        cr.body["metadata"]["annotations"]["voice.switchboard.dev/tenant-id"],
        owner.tenant_id.as_str()
    );

    let t = format!("/api/v1/tenants/{}", owner.slug);
    let patched = app
        .patch(
            &t,
            &owner.access,
            json!({"agent": {"greeting": "Welcome to Kube Co"}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let last = tenant_patches(&log).last().cloned().unwrap();
    assert_eq!(last.body["spec"]["agent"]["greeting"], "Welcome to Kube Co");
    assert!(!last.query.contains("force"), "{}", last.query);

    let created = app.post(&format!("{t}/credentials"), Some(&owner.access),
        json!({"provider": "deepgram", "label": "main", "secret": "dg-secret-0123456789abcdef"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let secret = log
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r.path.ends_with("/secrets/provider-keys"))
        .cloned()
        .expect("Secret applied");
    assert_eq!(
        secret.path,
        "/api/v1/namespaces/tenant-kube-co/secrets/provider-keys"
    );
    assert!(secret.query.contains("fieldManager=switchboard-gateway"));
    use base64::Engine;
    let value = secret.body["data"]["DEEPGRAM_API_KEY"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap(),
        b"dg-secret-0123456789abcdef"
    );

    let read = app.get(&t, &owner.access).await;
    assert_eq!(read.body["kubernetes"], true);
    assert_eq!(read.body["readiness"]["ready"], true, "{}", read.text);
    assert_eq!(read.body["readiness"]["namespace"], "tenant-kube-co");
    app.finish().await;
}

/// `(generation, projected)` of the tenant's provider keys, read in its own scope (so row-level
/// security applies on Postgres).
async fn projection_state(app: &TestApp, tenant_id: &str) -> (i64, i64) {
    let mut tx = app
        .state
        .store
        .read(&Scope::tenant(tenant_id))
        .await
        .unwrap();
    let state = provider_keys::state(&mut tx, tenant_id)
        .await
        .unwrap()
        .expect("tenant exists");
    tx.commit().await.unwrap();
    state
}

fn secret_writes(log: &Arc<Mutex<Vec<Recorded>>>) -> Vec<Recorded> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/secrets/provider-keys"))
        .cloned()
        .collect()
}

/// Writes of either Secret the gateway projects (`runtime-credential` goes first).
fn projected_writes(log: &Arc<Mutex<Vec<Recorded>>>) -> Vec<Recorded> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|r| {
            r.method == "PATCH"
                && (r.path.ends_with("/secrets/provider-keys")
                    || r.path.ends_with("/secrets/runtime-credential"))
        })
        .cloned()
        .collect()
}

fn decoded(secret: &Recorded, key: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let value = secret.body["data"][key].as_str()?;
    base64::engine::general_purpose::STANDARD.decode(value).ok()
}

/// Polls `check` every 20 ms for at most 10 s (a bound against hanging, not a timing claim).
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..500 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn provider_keys_converge_once_the_tenant_namespace_exists() {
    for mut app in apps(
        "provider_keys_converge_once_the_tenant_namespace_exists",
        Options::default(),
    )
    .await
    {
        let log = Arc::new(Mutex::new(Vec::new()));
        let namespace_exists = Arc::new(AtomicBool::new(false));
        app.state.kube =
            KubeSync::with_client(gated_api_server(log.clone(), namespace_exists.clone()));
        app.router = switchboard_gateway::app(app.state.clone());
        let owner = app
            .signup(&format!("converge-{}@acme.io", app.backend), "Converge Co")
            .await;
        let t = format!("/api/v1/tenants/{}", owner.slug);
        // Not pending while unverified (no Tenant yet); see the verification below.
        assert_eq!(
            projection_state(&app, &owner.tenant_id).await,
            (0, 0),
            "{}: an unverified signup has nothing to project",
            app.backend
        );
        let token = app.mailed_token(&format!("converge-{}@acme.io", app.backend));
        let verified = app
            .post("/api/v1/auth/verify-email", None, json!({"token": token}))
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
        assert_eq!(
            projection_state(&app, &owner.tenant_id).await,
            (1, 0),
            "{}: an activated tenant's runtime credential is pending until it lands in its namespace",
            app.backend
        );

        // Right after signup the operator has not created the namespace: the credential is
        // saved (201) but the Secret write is refused, and the tenant is pending.
        let created = app.post(&format!("{t}/credentials"), Some(&owner.access),
            json!({"provider": "deepgram", "label": "main", "secret": "dg-secret-0123456789abcdef"})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        // (Signup's and this change's inline attempts; the runtime credential goes first.)
        let refused = projected_writes(&log);
        assert!(!refused.is_empty(), "{}: inline attempts", app.backend);
        assert!(refused.iter().all(|w| w.status == 404), "{refused:?}");
        assert_eq!(
            refused[0].path,
            "/api/v1/namespaces/tenant-converge-co/secrets/runtime-credential"
        );
        let (generation, projected) = projection_state(&app, &owner.tenant_id).await;
        assert!(
            projected < generation,
            "{}: pending after the refused write ({generation}, {projected})",
            app.backend
        );
        // The retry task finds it across tenants (a system read, admitted by row-level
        // security on Postgres), paging by id.
        let mut tx = switchboard_gateway::store::system::read(&app.state.store)
            .await
            .unwrap();
        assert_eq!(
            provider_keys::pending(&mut tx, "", 10).await.unwrap(),
            vec![owner.tenant_id.clone()]
        );
        assert!(
            provider_keys::pending(&mut tx, &owner.tenant_id, 10)
                .await
                .unwrap()
                .is_empty()
        );
        tx.commit().await.unwrap();

        // The retry task keeps trying (with backoff) while the namespace is missing…
        let timing = RetryTiming {
            poll: Duration::from_millis(10),
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(40),
        };
        let retries = spawn_projection_retries(&app.state, timing).expect("Kubernetes mode");
        assert!(
            eventually(async || projected_writes(&log).len() >= refused.len() + 3).await,
            "{}: the retry task retries",
            app.backend
        );
        assert!(projected_writes(&log).iter().all(|w| w.status == 404));
        let (generation, projected) = projection_state(&app, &owner.tenant_id).await;
        assert!(projected < generation, "{}: still pending", app.backend);

        // …and once the namespace exists, writes the Secret with the right keys and clears
        // the pending state.
        namespace_exists.store(true, Ordering::SeqCst);
        assert!(
            eventually(async || {
                let (generation, projected) = projection_state(&app, &owner.tenant_id).await;
                projected == generation
            })
            .await,
            "{}: the projection converged",
            app.backend
        );
        let credential = projected_writes(&log)
            .into_iter()
            .rfind(|w| w.path.ends_with("/secrets/runtime-credential"))
            .unwrap();
        assert_eq!(credential.status, 200);
        let token = decoded(&credential, "token").expect("the runtime credential");
        let presented = app
            .state
            .runtime_credentials
            .verify(std::str::from_utf8(&token).unwrap())
            .expect("a credential the gateway accepts");
        assert_eq!(presented.tenant_id, owner.tenant_id);
        let written = secret_writes(&log);
        let last = written.last().unwrap();
        assert_eq!(last.status, 200);
        assert!(last.query.contains("fieldManager=switchboard-gateway"));
        assert_eq!(
            decoded(last, "DEEPGRAM_API_KEY").as_deref(),
            Some(&b"dg-secret-0123456789abcdef"[..])
        );
        // The key by vendor+label, the vendor's default by its well-known name, the index.
        assert_eq!(
            decoded(last, "deepgram.main").as_deref(),
            Some(&b"dg-secret-0123456789abcdef"[..])
        );
        assert!(decoded(last, switchboard_crds::credentials::INDEX_KEY).is_some());
        assert_eq!(
            last.body["data"].as_object().unwrap().len(),
            3,
            "{}",
            last.body
        );
        // Converged tenants are left alone.
        let settled = secret_writes(&log).len();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            secret_writes(&log).len(),
            settled,
            "{}: no writes once in sync",
            app.backend
        );
        retries.abort();

        // Without the retry task, the next credential change converges it too: the namespace
        // is missing for one change, then present for the next, whose Secret carries both.
        namespace_exists.store(false, Ordering::SeqCst);
        let second = app.post(&format!("{t}/credentials"), Some(&owner.access),
            json!({"provider": "openai", "label": "main", "secret": "sk-openai-0123456789abcdef"})).await;
        assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
        let (generation, projected) = projection_state(&app, &owner.tenant_id).await;
        assert!(projected < generation, "{}: pending again", app.backend);
        namespace_exists.store(true, Ordering::SeqCst);
        let id = second.body["id"].as_str().unwrap();
        let renamed = app
            .patch(
                &format!("{t}/credentials/{id}"),
                &owner.access,
                json!({"label": "primary"}),
            )
            .await;
        assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
        let (generation, projected) = projection_state(&app, &owner.tenant_id).await;
        assert_eq!(
            projected, generation,
            "{}: in sync after the next change",
            app.backend
        );
        let last = secret_writes(&log).last().cloned().unwrap();
        assert_eq!(last.status, 200);
        assert_eq!(
            decoded(&last, "DEEPGRAM_API_KEY").as_deref(),
            Some(&b"dg-secret-0123456789abcdef"[..])
        );
        assert_eq!(
            decoded(&last, "OPENAI_API_KEY").as_deref(),
            Some(&b"sk-openai-0123456789abcdef"[..])
        );
        app.finish().await;
    }
}
