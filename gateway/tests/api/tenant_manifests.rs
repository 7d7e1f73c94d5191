//! Tenants applied with kubectl or GitOps, against kube-fake-client's in-memory API server (which
//! tracks server-side-apply field managers and refuses conflicting applies like a real one).
//! The watcher's steps (`tenant_sync::reconcile`, `detach`, `full_pass`) are driven directly
//! with the Tenants read back, since the fake serves no watches.
//!
//! kube-fake-client registers every custom resource as namespaced, so [`cluster_scoped`] files
//! the cluster-scoped Tenants under a hidden namespace and removes it from the answers (the same
//! trick as the operator's test shim).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use switchboard_crds::Tenant;
use switchboard_gateway::kube::KubeSync;
use switchboard_gateway::store::tenants;
use switchboard_gateway::tenant_sync;

use crate::common::{Options, TestApp, apps};

const HIDDEN_NAMESPACE: &str = "_cluster";
const TENANTS: &str = "/apis/voice.switchboard.dev/v1alpha1/tenants";

/// A client on `fake` that serves Tenants as cluster-scoped objects.
fn cluster_scoped(fake: kube::Client) -> kube::Client {
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let fake = fake.clone();
        async move {
            let (mut parts, body) = request.into_parts();
            if let Some(rest) = parts.uri.path().strip_prefix(TENANTS) {
                let path = format!(
                    "/apis/voice.switchboard.dev/v1alpha1/namespaces/{HIDDEN_NAMESPACE}/tenants{rest}"
                );
                let uri = match parts.uri.query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path,
                };
                parts.uri = uri.parse().expect("uri");
            }
            let response = fake.send(Request::from_parts(parts, body)).await?;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(Body::new(body), usize::MAX)
                .await
                .unwrap_or_default();
            let bytes = match serde_json::from_slice::<Value>(&bytes) {
                Ok(mut value) => {
                    strip_namespace(&mut value);
                    serde_json::to_vec(&value).expect("json").into()
                }
                Err(_) => bytes,
            };
            Ok::<_, kube::Error>(http::Response::from_parts(
                parts,
                kube::client::Body::from(bytes.to_vec()),
            ))
        }
    });
    kube::Client::new(service, "default")
}

fn strip_namespace(value: &mut Value) {
    if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip_namespace);
    }
    if value["kind"] == "Tenant"
        && let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("namespace");
    }
}

async fn in_memory_cluster() -> kube::Client {
    let fake = kube_fake_client::ClientBuilder::new()
        .with_resource::<Tenant>()
        .with_status_subresource::<Tenant>()
        .with_return_managed_fields()
        .build()
        .await
        .expect("fake API server");
    cluster_scoped(fake)
}

/// `kubectl apply --server-side -f tenant.yaml` (what Flux and Argo CD's server-side sync do).
async fn kubectl_apply(client: &kube::Client, name: &str, spec: Value) -> Tenant {
    let api: Api<Tenant> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::apply("kubectl"),
        &Patch::Apply(
            json!({"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name}, "spec": spec}),
        ),
    )
    .await
    .expect("kubectl apply")
}

async fn read(client: &kube::Client, name: &str) -> Option<Tenant> {
    Api::<Tenant>::all(client.clone())
        .get_opt(name)
        .await
        .expect("get")
}

fn manifest(suspended: bool) -> Value {
    json!({
        "displayName": "Acme Corp", "plan": "starter", "suspended": suspended,
        "owners": [{"email": "Ops@Acme.io"}, {"email": "viewer@acme.io", "role": "viewer"}],
        "limits": {"phoneNumbers": 2},
        "agent": {"greeting": "Hello from GitOps"}
    })
}

async fn verify(app: &TestApp, email: &str) {
    let token = app.mailed_token(email);
    let reply = app
        .post("/api/v1/auth/verify-email", None, json!({"token": token}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

fn slugs(reply: &crate::common::Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["slug"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_kubectl_tenant_is_adopted_owned_by_its_manifest_owners_and_never_taken_over() {
    for mut app in apps(
        "a_kubectl_tenant_is_adopted_owned_by_its_manifest_owners_and_never_taken_over",
        Options::default(),
    )
    .await
    {
        let backend = app.backend;
        let cluster = in_memory_cluster().await;
        app.state.kube = KubeSync::with_client(cluster.clone());
        app.state.internal_token = Some("internal-token-0123456789".into());
        app.router = switchboard_gateway::app(app.state.clone());

        // A verified user the manifest will name, before the Tenant exists.
        let viewer = app.signup("viewer@acme.io", "Viewer Co").await;
        verify(&app, "viewer@acme.io").await;

        // The platform team applies the Tenant; the gateway sees it.
        let applied = kubectl_apply(&cluster, "acme", manifest(false)).await;
        tenant_sync::reconcile(&app.state, &applied).await.unwrap();
        let row = tenants::load_by_key(&app.state.store, "acme")
            .await
            .unwrap()
            .expect("adopted");
        assert_eq!(row.origin, "manifest", "{backend}");
        assert_eq!(
            (row.name.as_str(), row.plan.as_str()),
            ("Acme Corp", "starter")
        );
        assert_eq!(row.cr_uid, applied.metadata.uid);
        // The gateway pointed the runtime at its provider-keys Secret, under its own manager,
        // and touched nothing else.
        let cr = read(&cluster, "acme").await.unwrap();
        assert_eq!(
            cr.spec.provider_secret_ref.as_deref(),
            Some("provider-keys")
        );
        assert_eq!(cr.spec.display_name, "Acme Corp");
        let managers = switchboard_gateway::kube::spec_field_managers(&cr);
        assert_eq!(
            managers["providerSecretRef"].iter().collect::<Vec<_>>(),
            vec!["switchboard-gateway"]
        );
        assert!(
            managers["agent"].iter().all(|m| m == "kubectl"),
            "{managers:?}"
        );

        // The verified viewer is a member at once; ops@acme.io has no account: invited.
        let listed = app.get("/api/v1/tenants", &viewer.access).await;
        assert!(
            slugs(&listed).contains(&"acme".to_owned()),
            "{backend}: {}",
            listed.text
        );
        let invitation = app
            .mailer
            .sent()
            .into_iter()
            .find(|m| m.to == "ops@acme.io")
            .expect("owner invited");
        assert!(invitation.body.contains("acme"), "{}", invitation.body);

        // The runtime side now knows the tenant: the operator's number route is accepted.
        let route = app
            .call(
                axum::http::Method::PUT,
                "/internal/v1/numbers/+15550100",
                Some("internal-token-0123456789"),
                Some(json!({"tenant": "acme", "carrier": "sandbox"})),
            )
            .await;
        assert_eq!(
            route.status,
            StatusCode::NO_CONTENT,
            "{backend}: {}",
            route.text
        );

        // A signup whose company is "Acme" gets another name and leaves the Tenant exactly as
        // it was, before and after its owner verifies.
        let before = serde_json::to_vec(&read(&cluster, "acme").await.unwrap()).unwrap();
        let mallory = app.signup("mallory@example.net", "Acme").await;
        assert_eq!(mallory.slug, "acme-2", "{backend}");
        assert!(
            read(&cluster, "acme-2").await.is_none(),
            "no Tenant before verification"
        );
        let early = app
            .post(
                "/api/v1/tenants/acme-2/numbers",
                Some(&mallory.access),
                json!({}),
            )
            .await;
        assert_eq!(
            early.status,
            StatusCode::FORBIDDEN,
            "{backend}: {}",
            early.text
        );
        assert_eq!(early.body["error"]["code"], "email_not_verified");
        verify(&app, "mallory@example.net").await;
        let created = read(&cluster, "acme-2")
            .await
            .expect("created on verification");
        assert_eq!(
            created.metadata.annotations.as_ref().unwrap()["voice.switchboard.dev/tenant-id"],
            mallory.tenant_id
        );
        let after = serde_json::to_vec(&read(&cluster, "acme").await.unwrap()).unwrap();
        assert_eq!(
            before, after,
            "{backend}: the kubectl Tenant is byte-identical"
        );
        let mallorys = app.get("/api/v1/tenants", &mallory.access).await;
        assert_eq!(slugs(&mallorys), vec!["acme-2".to_owned()]);
        assert_eq!(
            app.get("/api/v1/tenants/acme/numbers", &mallory.access)
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // The named owner signs up (under another company) and verifies: the tenant is theirs.
        let owner = app.signup("ops@acme.io", "Ops Co").await;
        let listed = app.get("/api/v1/tenants", &owner.access).await;
        assert!(
            !slugs(&listed).contains(&"acme".to_owned()),
            "not before verification"
        );
        verify(&app, "ops@acme.io").await;
        let listed = app.get("/api/v1/tenants", &owner.access).await;
        let acme = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["slug"] == "acme")
            .cloned()
            .expect("owner sees the tenant");
        assert_eq!(acme["role"], "owner");

        // The manifest holds the agent and the name: the API answers 409 naming kubectl and
        // changes nothing.
        let refused = app
            .patch(
                "/api/v1/tenants/acme",
                &owner.access,
                json!({"agent": {"greeting": "Hijacked"}}),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{backend}: {}",
            refused.text
        );
        assert_eq!(refused.body["error"]["code"], "field_managed_elsewhere");
        assert_eq!(refused.body["error"]["field"], "agent");
        assert!(refused.text.contains("kubectl"), "{}", refused.text);
        let stored = app.get("/api/v1/tenants/acme", &owner.access).await;
        assert_eq!(stored.body["agent"]["greeting"], "Hello from GitOps");
        assert_eq!(
            read(&cluster, "acme").await.unwrap().spec.agent.greeting,
            "Hello from GitOps"
        );

        // spec.limits counts: 2 numbers instead of the starter plan's.
        let usage = app.get("/api/v1/tenants/acme/usage", &owner.access).await;
        assert_eq!(
            usage.body["limits"]["phoneNumbers"], 2,
            "{backend}: {}",
            usage.text
        );

        // A kubectl suspension reaches the gateway and survives its writes.
        let suspended = kubectl_apply(&cluster, "acme", manifest(true)).await;
        tenant_sync::reconcile(&app.state, &suspended)
            .await
            .unwrap();
        let row = tenants::load_by_key(&app.state.store, "acme")
            .await
            .unwrap()
            .unwrap();
        assert!(row.suspended.0, "{backend}: suspension mirrored");
        app.state
            .kube
            .apply_tenant(&row, &["providerSecretRef", "plan"])
            .await
            .expect_err("plan is the manifest's");
        app.state
            .kube
            .apply_tenant(&row, &["providerSecretRef"])
            .await
            .unwrap();
        assert!(
            read(&cluster, "acme").await.unwrap().spec.suspended,
            "{backend}"
        );

        // Owners leave with the manifest: the viewer is dropped from the list.
        let mut fewer = manifest(true);
        fewer["owners"] = json!([{"email": "ops@acme.io"}]);
        let fewer = kubectl_apply(&cluster, "acme", fewer).await;
        // Server-side apply keeps list entries another apply set; the fake merges lists whole.
        assert_eq!(fewer.spec.owners.len(), 1, "{:?}", fewer.spec.owners);
        tenant_sync::reconcile(&app.state, &fewer).await.unwrap();
        let listed = app.get("/api/v1/tenants", &viewer.access).await;
        assert!(
            !slugs(&listed).contains(&"acme".to_owned()),
            "{backend}: {}",
            listed.text
        );

        // Deleting the Tenant keeps the gateway tenant as a suspended archive; applying it again
        // re-attaches the same tenant.
        let api: Api<Tenant> = Api::all(cluster.clone());
        api.delete("acme", &DeleteParams::default()).await.unwrap();
        tenant_sync::detach(&app.state, &fewer).await.unwrap();
        let archived = tenants::load_by_key(&app.state.store, "acme")
            .await
            .unwrap()
            .unwrap();
        assert!(
            archived.detached_at.is_some() && archived.suspended.0,
            "{backend}"
        );
        let again = kubectl_apply(&cluster, "acme", manifest(false)).await;
        tenant_sync::reconcile(&app.state, &again).await.unwrap();
        let back = tenants::load_by_key(&app.state.store, "acme")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.id, row.id, "{backend}: same tenant");
        assert!(back.detached_at.is_none() && !back.suspended.0);
        assert_eq!(back.cr_uid, again.metadata.uid);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_signup_tenant_whose_tenant_was_deleted_is_detached_and_one_never_created_is_created() {
    for mut app in apps(
        "a_signup_tenant_whose_tenant_was_deleted_is_detached_and_one_never_created_is_created",
        Options::default(),
    )
    .await
    {
        let backend = app.backend;
        let cluster = in_memory_cluster().await;
        app.state.kube = KubeSync::with_client(cluster.clone());
        app.router = switchboard_gateway::app(app.state.clone());
        let first = app.signup("first@one.io", "One").await;
        verify(&app, "first@one.io").await;
        let one = read(&cluster, "one")
            .await
            .expect("created on verification");
        tenant_sync::reconcile(&app.state, &one).await.unwrap();
        // The owner's name edit goes through (the gateway holds displayName alone).
        let renamed = app
            .patch(
                "/api/v1/tenants/one",
                &first.access,
                json!({"name": "One Inc"}),
            )
            .await;
        assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
        assert_eq!(
            read(&cluster, "one").await.unwrap().spec.display_name,
            "One Inc"
        );
        // A platform operator suspends the self-service tenant with kubectl; the owner's next
        // edit goes through and the suspension stays, and reaches the gateway.
        Api::<Tenant>::all(cluster.clone())
            .patch(
                "one",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"suspended": true}})),
            )
            .await
            .unwrap();
        let edited = app
            .patch(
                "/api/v1/tenants/one",
                &first.access,
                json!({"agent": {"greeting": "Hi"}}),
            )
            .await;
        assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
        let cr = read(&cluster, "one").await.unwrap();
        assert!(
            cr.spec.suspended,
            "{backend}: kubectl suspension survives gateway writes"
        );
        assert_eq!(cr.spec.agent.greeting, "Hi");
        tenant_sync::reconcile(&app.state, &cr).await.unwrap();
        let shown = app.get("/api/v1/tenants/one", &first.access).await;
        assert_eq!(shown.body["suspended"], true, "{}", shown.text);

        // A second tenant whose Tenant creation "failed": remove it behind the gateway's back
        // before the gateway ever saw it.
        let _second = app.signup("second@two.io", "Two").await;
        verify(&app, "second@two.io").await;
        let api: Api<Tenant> = Api::all(cluster.clone());
        api.delete("two", &DeleteParams::default()).await.unwrap();
        api.delete("one", &DeleteParams::default()).await.unwrap();

        // A complete listing without either: `one` was seen, so it is detached; `two` never was,
        // so it is created.
        tenant_sync::full_pass(&app.state, &Default::default())
            .await
            .unwrap();
        let one = tenants::load_by_key(&app.state.store, "one")
            .await
            .unwrap()
            .unwrap();
        assert!(one.detached_at.is_some() && one.suspended.0, "{backend}");
        assert!(
            read(&cluster, "one").await.is_none(),
            "{backend}: never re-created"
        );
        assert!(
            read(&cluster, "two").await.is_some(),
            "{backend}: created by the full pass"
        );
        app.finish().await;
    }
}

/// The watcher itself: started against a cluster that already holds a kubectl Tenant and a
/// verified signup whose Tenant is missing, its first listing adopts the one and creates the
/// other (kube-fake-client serves the list; it has no watches, so later changes are covered
/// by the step tests above).
#[tokio::test]
async fn the_watcher_adopts_listed_tenants_and_creates_missing_ones_on_start() {
    for mut app in apps(
        "the_watcher_adopts_listed_tenants_and_creates_missing_ones_on_start",
        Options::default(),
    )
    .await
    {
        let backend = app.backend;
        let cluster = in_memory_cluster().await;
        app.state.kube = KubeSync::with_client(cluster.clone());
        app.router = switchboard_gateway::app(app.state.clone());
        kubectl_apply(&cluster, "globex", manifest(false)).await;
        let signup = app.signup("owner@initech.io", "Initech").await;
        verify(&app, "owner@initech.io").await;
        Api::<Tenant>::all(cluster.clone())
            .delete("initech", &DeleteParams::default())
            .await
            .unwrap();

        let watcher = tokio::spawn(tenant_sync::run(
            app.state.clone(),
            Api::all(cluster.clone()),
            std::time::Duration::from_secs(3600),
        ));
        let mut settled = false;
        // A bound against hanging, not a timing claim.
        for _ in 0..500 {
            let adopted = tenants::load_by_key(&app.state.store, "globex")
                .await
                .unwrap();
            if adopted.is_some() && read(&cluster, "initech").await.is_some() {
                settled = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        watcher.abort();
        assert!(settled, "{backend}: the first listing was reconciled");
        let created = read(&cluster, "initech").await.unwrap();
        assert_eq!(
            created.metadata.annotations.unwrap()["voice.switchboard.dev/tenant-id"],
            signup.tenant_id
        );
        app.finish().await;
    }
}

/// A Campaign a manifest holds is not taken over through the API: 409 naming its manager,
/// the Campaign unchanged.
#[tokio::test]
async fn a_gitops_campaign_is_not_taken_over_through_the_api() {
    use switchboard_crds::Campaign;
    println!(
        "a_gitops_campaign_is_not_taken_over_through_the_api: running on [\"sqlite\"] (the database backend is not what this test is about)"
    );
    let mut app = crate::common::sqlite_app(&Options::default()).await;
    let fake = kube_fake_client::ClientBuilder::new()
        .with_resource::<Tenant>()
        .with_resource::<Campaign>()
        .with_status_subresource::<Tenant>()
        .with_status_subresource::<Campaign>()
        .with_return_managed_fields()
        .build()
        .await
        .expect("fake API server");
    let cluster = cluster_scoped(fake);
    app.state.kube = KubeSync::with_client(cluster.clone());
    app.router = switchboard_gateway::app(app.state.clone());
    let owner = app.signup("ops@acme.io", "Ops Co").await;
    verify(&app, "ops@acme.io").await;
    let applied = kubectl_apply(&cluster, "acme", manifest(false)).await;
    tenant_sync::reconcile(&app.state, &applied).await.unwrap();

    let spec = |greeting: &str| {
        json!({"fromNumber": "+15550100", "contacts": {"configMapRef": {"name": "contacts", "key": "contacts.csv"}},
               "schedule": {"timeZone": "UTC", "windowStart": "00:00", "windowEnd": "23:59"},
               "agent": {"greeting": greeting}})
    };
    let campaigns: Api<Campaign> = Api::namespaced(cluster.clone(), "tenant-acme");
    campaigns
        .patch(
            "survey",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(json!({"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Campaign",
                "metadata": {"name": "survey", "namespace": "tenant-acme"}, "spec": spec("From Git")})),
        )
        .await
        .expect("kubectl apply");
    let refused = app
        .call(
            axum::http::Method::PUT,
            "/api/v1/tenants/acme/campaigns/survey",
            Some(&owner.access),
            Some(spec("From the API")),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "field_managed_elsewhere");
    assert!(refused.text.contains("kubectl"), "{}", refused.text);
    let kept = campaigns.get("survey").await.unwrap();
    assert_eq!(
        serde_json::to_value(&kept.spec).unwrap()["agent"]["greeting"],
        "From Git"
    );
    // A new name goes through.
    let created = app
        .call(
            axum::http::Method::PUT,
            "/api/v1/tenants/acme/campaigns/fresh",
            Some(&owner.access),
            Some(spec("From the API")),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text);
    app.finish().await;
}

/// Item 4: a self-service tenant starts on the platform's carrier; the Twilio/Telnyx account it
/// stores through the API becomes the `carrier-credentials` Secret its Tenant's `spec.carrier`
/// names (what the operator buys and configures its PhoneNumbers with), never the runtime's
/// `provider-keys`; deleting the credential returns it to the platform's carrier.
#[tokio::test]
async fn a_tenants_own_carrier_account_becomes_its_tenants_carrier_secret() {
    use k8s_openapi::api::core::v1::Secret;
    for mut app in apps(
        "a_tenants_own_carrier_account_becomes_its_tenants_carrier_secret",
        Options::default(),
    )
    .await
    {
        let backend = app.backend;
        let cluster = in_memory_cluster().await;
        let mut config = (*app.state.config).clone();
        config.voice.default_carrier = Some("twilio".into());
        app.state.config = std::sync::Arc::new(config);
        app.state.kube = KubeSync::with_client(cluster.clone());
        app.router = switchboard_gateway::app(app.state.clone());
        let owner = app.signup("owner@carrier.io", "Carrier Co").await;
        verify(&app, "owner@carrier.io").await;
        let cr = read(&cluster, "carrier-co").await.expect("created");
        assert_eq!(
            cr.spec.carrier.kind,
            switchboard_crds::CarrierKind::Twilio,
            "{backend}"
        );
        assert_eq!(
            cr.spec.carrier.credentials_secret_ref, None,
            "the platform's account"
        );

        let t = "/api/v1/tenants/carrier-co";
        let stored = app
            .post(
                &format!("{t}/credentials"),
                Some(&owner.access),
                json!({"provider": "telnyx", "label": "main", "secret": "KEY0123456789abcdefTELNYX",
                       "metadata": {"connection_id": "conn-1", "public_key": "cHVibGljLWtleQ=="}}),
            )
            .await;
        assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text);
        let cr = read(&cluster, "carrier-co").await.unwrap();
        assert_eq!(
            cr.spec.carrier.kind,
            switchboard_crds::CarrierKind::Telnyx,
            "{backend}"
        );
        assert_eq!(
            cr.spec.carrier.credentials_secret_ref.as_deref(),
            Some("carrier-credentials")
        );
        let secrets: Api<Secret> = Api::namespaced(cluster.clone(), "tenant-carrier-co");
        let data = secrets
            .get("carrier-credentials")
            .await
            .unwrap()
            .data
            .unwrap();
        assert_eq!(data["apiKey"].0, b"KEY0123456789abcdefTELNYX");
        assert_eq!(data["connectionId"].0, b"conn-1");
        let runtime_keys = secrets
            .get("provider-keys")
            .await
            .unwrap()
            .data
            .unwrap_or_default();
        assert!(
            runtime_keys.keys().all(|k| !k.contains("TELNYX")),
            "{backend}: carrier secrets never reach the runtime: {:?}",
            runtime_keys.keys().collect::<Vec<_>>()
        );

        let id = stored.body["id"].as_str().unwrap();
        let deleted = app
            .delete(&format!("{t}/credentials/{id}"), &owner.access)
            .await;
        assert!(deleted.status.is_success(), "{}", deleted.text);
        let cr = read(&cluster, "carrier-co").await.unwrap();
        assert_eq!(
            cr.spec.carrier.kind,
            switchboard_crds::CarrierKind::Twilio,
            "{backend}"
        );
        // The gateway's apply no longer names the Secret; a real API server removes a field
        // its only manager stops applying (kube-fake-client merges applies and keeps it).
        let row = tenants::load_by_key(&app.state.store, "carrier-co")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&row.carrier).unwrap(),
            json!({"kind": "twilio"})
        );
        // The Secret is re-applied without the account's keys (the unit tests of
        // `tenant_carrier` check that body); the fake keeps keys a real API server removes.
        assert!(
            secrets.get("carrier-credentials").await.is_ok(),
            "{backend}"
        );
        app.finish().await;
    }
}
