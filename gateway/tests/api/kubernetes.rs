//! Kubernetes mode against a recording stand-in for the API server (a tower service behind
//! `kube::Client`): signup applies the `Tenant` CR with field manager `switchboard-gateway`,
//! a tenant PATCH re-applies it, credentials are projected into `provider-keys`, and readiness
//! is read back from the CR status.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use switchboard_gateway::kube::KubeSync;

use crate::common::{Options, sqlite_app};

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    body: Value,
}

fn fake_api_server(log: Arc<Mutex<Vec<Recorded>>>) -> kube::Client {
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let log = log.clone();
        async move {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(Body::new(body), usize::MAX)
                .await
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path().to_owned();
            log.lock().unwrap().push(Recorded {
                method: parts.method.to_string(),
                path: path.clone(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                body: body.clone(),
            });
            // Apply answers with the applied object; GET of a Tenant answers a Ready one.
            let answer = if parts.method == "GET" {
                let name = path.rsplit('/').next().unwrap_or_default();
                json!({"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
                    "metadata": {"name": name}, "spec": {"displayName": name},
                    "status": {"namespace": format!("tenant-{name}"), "conditions": [{"type": "Ready", "status": "True",
                        "reason": "Reconciled", "message": "runtime available", "lastTransitionTime": "2026-11-21T00:00:00Z"}]}})
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
    let applies: Vec<Recorded> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PATCH")
        .cloned()
        .collect();
    assert_eq!(applies.len(), 1, "{applies:?}");
    let cr = &applies[0];
    assert_eq!(
        cr.path,
        "/apis/voice.switchboard.dev/v1alpha1/tenants/kube-co"
    );
    assert!(
        cr.query.contains("fieldManager=switchboard-gateway") && cr.query.contains("force=true"),
        "{}",
        cr.query
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
    let last = log
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r.method == "PATCH")
        .cloned()
        .unwrap();
    assert_eq!(last.body["spec"]["agent"]["greeting"], "Welcome to Kube Co");

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
