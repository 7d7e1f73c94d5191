//! The Tenant controller against an in-memory Kubernetes API.

mod support;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, ResourceQuota, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use support::{WriteCounter, by_verb, context, fake_api, fake_api_with, in_memory_api};
use switchboard_crds::conditions::{find_condition, is_condition_true};
use switchboard_crds::{PhoneNumber, Tenant};
use switchboard_operator::controllers::{Context, Error, tenant};

const NS: &str = "tenant-acme";

async fn get_tenant(client: &Client, name: &str) -> Tenant {
    Api::<Tenant>::all(client.clone())
        .get(name)
        .await
        .expect("tenant exists")
}

/// Reconciles the stored Tenant as the controller would after a watch event, its caches
/// up to date with the API server (as the watches keep them).
async fn reconcile(
    ctx: &Arc<Context>,
    name: &str,
) -> Result<kube::runtime::controller::Action, Error> {
    ctx.caches.relist(&ctx.client).await.expect("relist");
    let current = get_tenant(&ctx.client, name).await;
    tenant::reconcile(Arc::new(current), ctx.clone()).await
}

/// First reconcile adds the finalizer; the second builds the stack.
async fn reconcile_until_applied(ctx: &Arc<Context>, name: &str) {
    reconcile(ctx, name).await.expect("finalizer added");
    reconcile(ctx, name).await.expect("stack applied");
}

async fn mark_runtime_available(client: &Client, replicas: i32) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let generation = deployments
        .get("voice-runtime")
        .await
        .unwrap()
        .metadata
        .generation;
    let status = json!({"status": {"availableReplicas": replicas, "readyReplicas": replicas, "observedGeneration": generation}});
    deployments
        .patch_status(
            "voice-runtime",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
}

fn acme(spec: serde_json::Value) -> Tenant {
    support::tenant("acme", spec)
}

async fn quota_cpu(client: &Client) -> Quantity {
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), NS)
        .get("tenant-quota")
        .await
        .unwrap();
    quota.spec.unwrap().hard.unwrap()["requests.cpu"].clone()
}

async fn replicas(client: &Client) -> Option<i32> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), NS)
        .get("voice-runtime")
        .await
        .unwrap();
    deployment.spec.unwrap().replicas
}

#[tokio::test]
async fn a_new_tenant_gets_its_whole_stack_and_conditions() {
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme Inc", "plan": "starter"}))],
        WriteCounter::default(),
    )
    .await;
    let ctx = context(client.clone());
    reconcile_until_applied(&ctx, "acme").await;

    let namespace = Api::<Namespace>::all(client.clone()).get(NS).await.unwrap();
    assert_eq!(
        namespace.labels()["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_eq!(namespace.owner_references()[0].kind, "Tenant");
    Api::<LimitRange>::namespaced(client.clone(), NS)
        .get("tenant-limits")
        .await
        .unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), NS)
        .get("voice-runtime")
        .await
        .unwrap();
    Api::<Service>::namespaced(client.clone(), NS)
        .get("voice-runtime")
        .await
        .unwrap();
    let config = Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("switchboard-agent")
        .await
        .unwrap();
    assert!(config.data.unwrap()["agent.json"].contains("greeting"));
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap();
    // default-deny, gateway → runtime, monitoring → runtime metrics, DNS, runtime egress.
    assert_eq!(policies.items.len(), 5);
    assert_eq!(quota_cpu(&client).await, Quantity("2000m".into()));
    assert_eq!(replicas(&client).await, Some(1));

    let stored = get_tenant(&client, "acme").await;
    assert!(stored.finalizers().contains(&tenant::FINALIZER.to_owned()));
    let status = stored.status.unwrap();
    assert_eq!(status.namespace.as_deref(), Some(NS));
    assert_eq!(status.observed_generation, stored.metadata.generation);
    assert!(is_condition_true(&status.conditions, "NamespaceReady"));
    assert_eq!(
        find_condition(&status.conditions, "Ready").unwrap().reason,
        "RuntimeNotReady"
    );

    mark_runtime_available(&client, 1).await;
    reconcile(&ctx, "acme").await.unwrap();
    let status = get_tenant(&client, "acme").await.status.unwrap();
    assert!(is_condition_true(&status.conditions, "Ready"));
    assert!(is_condition_true(&status.conditions, "RuntimeReady"));
    let text = switchboard_telemetry::render_metrics(&ctx.metrics.registry).unwrap();
    assert!(
        text.contains(r#"switchboard_operator_tenants{condition="Ready",status="True"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_plan_change_resizes_the_quota() {
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme", "plan": "free"}))],
        WriteCounter::default(),
    )
    .await;
    let ctx = context(client.clone());
    reconcile_until_applied(&ctx, "acme").await;
    assert_eq!(quota_cpu(&client).await, Quantity("500m".into()));

    let tenants: Api<Tenant> = Api::all(client.clone());
    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"plan": "professional"}})),
        )
        .await
        .unwrap();
    reconcile(&ctx, "acme").await.unwrap();
    assert_eq!(quota_cpu(&client).await, Quantity("8000m".into()));
}

#[tokio::test]
async fn suspending_scales_the_runtime_to_zero() {
    let client = fake_api(
        vec![acme(
            json!({"displayName": "Acme", "plan": "professional", "runtime": {"replicas": 3}}),
        )],
        WriteCounter::default(),
    )
    .await;
    let ctx = context(client.clone());
    reconcile_until_applied(&ctx, "acme").await;
    assert_eq!(replicas(&client).await, Some(3));
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), NS);
    pdbs.get("voice-runtime")
        .await
        .expect("PDB with 3 replicas");

    Api::<Tenant>::all(client.clone())
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspended": true}})),
        )
        .await
        .unwrap();
    reconcile(&ctx, "acme").await.unwrap();
    assert_eq!(replicas(&client).await, Some(0));
    assert!(
        pdbs.get_opt("voice-runtime").await.unwrap().is_none(),
        "PDB removed when suspended"
    );
    let status = get_tenant(&client, "acme").await.status.unwrap();
    assert!(is_condition_true(&status.conditions, "Suspended"));
    assert_eq!(
        find_condition(&status.conditions, "Ready").unwrap().reason,
        "Suspended"
    );
}

#[tokio::test]
async fn deleted_and_edited_children_are_restored() {
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme"}))],
        WriteCounter::default(),
    )
    .await;
    let ctx = context(client.clone());
    reconcile_until_applied(&ctx, "acme").await;

    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), NS);
    policies
        .delete("default-deny", &DeleteParams::default())
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .delete("voice-runtime", &DeleteParams::default())
        .await
        .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), NS);
    quotas
        .patch(
            "tenant-quota",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"hard": {"requests.cpu": "64"}}})),
        )
        .await
        .unwrap();

    reconcile(&ctx, "acme").await.unwrap();
    policies
        .get("default-deny")
        .await
        .expect("network policy restored");
    deployments
        .get("voice-runtime")
        .await
        .expect("deployment restored");
    assert_eq!(
        quota_cpu(&client).await,
        Quantity("500m".into()),
        "hand edit corrected"
    );
}

/// The stack's objects without the fields the API server bumps on every write.
async fn stack_snapshot(client: &Client) -> Vec<serde_json::Value> {
    fn strip<K: serde::Serialize>(object: &K) -> serde_json::Value {
        let mut value = serde_json::to_value(object).unwrap();
        let meta = value["metadata"].as_object_mut().unwrap();
        for volatile in ["resourceVersion", "generation", "managedFields"] {
            meta.remove(volatile);
        }
        value
    }
    let mut snapshot = vec![
        strip(&Api::<Namespace>::all(client.clone()).get(NS).await.unwrap()),
        strip(
            &Api::<ResourceQuota>::namespaced(client.clone(), NS)
                .get("tenant-quota")
                .await
                .unwrap(),
        ),
        strip(
            &Api::<Deployment>::namespaced(client.clone(), NS)
                .get("voice-runtime")
                .await
                .unwrap(),
        ),
        strip(
            &Api::<ConfigMap>::namespaced(client.clone(), NS)
                .get("switchboard-agent")
                .await
                .unwrap(),
        ),
    ];
    for policy in Api::<NetworkPolicy>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        snapshot.push(strip(&policy));
    }
    snapshot
}

#[tokio::test]
async fn reconciling_an_unchanged_tenant_changes_nothing() {
    let status_writes = WriteCounter::default();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme"}))],
        status_writes.clone(),
    )
    .await;
    let ctx = context(client.clone());
    reconcile_until_applied(&ctx, "acme").await;
    mark_runtime_available(&client, 1).await;
    reconcile(&ctx, "acme").await.unwrap();

    let tenant_before = get_tenant(&client, "acme").await;
    let stack_before = stack_snapshot(&client).await;
    let writes_before = status_writes.get();
    reconcile(&ctx, "acme").await.unwrap();
    reconcile(&ctx, "acme").await.unwrap();

    assert_eq!(
        status_writes.get(),
        writes_before,
        "no status write for an unchanged tenant"
    );
    let tenant_after = get_tenant(&client, "acme").await;
    assert_eq!(tenant_after.status, tenant_before.status);
    assert_eq!(
        tenant_after.metadata.resource_version,
        tenant_before.metadata.resource_version
    );
    assert_eq!(stack_snapshot(&client).await, stack_before);
}

#[tokio::test]
async fn a_converged_tenant_costs_no_request() {
    let api = in_memory_api(
        vec![acme(json!({"displayName": "Acme", "plan": "enterprise"}))],
        Vec::new(),
        WriteCounter::default(),
    )
    .await;
    let ctx = context(api.client.clone());
    reconcile_until_applied(&ctx, "acme").await;
    mark_runtime_available(&api.client, 1).await;
    reconcile(&ctx, "acme").await.unwrap();
    let status = get_tenant(&api.client, "acme").await.status.unwrap();
    assert!(is_condition_true(&status.conditions, "Ready"));

    // The caches as the watches keep them (read without counting), then reconciles as a
    // resync or a stray event would run them.
    ctx.caches.relist(&api.uncounted_client()).await.unwrap();
    let converged = Api::<Tenant>::all(api.uncounted_client())
        .get("acme")
        .await
        .unwrap();
    let before = api.requests.snapshot();
    for _ in 0..3 {
        tenant::reconcile(Arc::new(converged.clone()), ctx.clone())
            .await
            .unwrap();
    }
    let sent = by_verb(&before, &api.requests.snapshot());
    assert!(
        sent.is_empty(),
        "a converged tenant is reconciled from the caches alone: {sent:?}"
    );
}

#[tokio::test]
async fn an_invalid_spec_becomes_a_condition_not_a_crash() {
    let long_name = "a".repeat(58);
    let client = fake_api(
        vec![support::tenant(
            &long_name,
            json!({"displayName": "Too long"}),
        )],
        WriteCounter::default(),
    )
    .await;
    let ctx = context(client.clone());
    reconcile(&ctx, &long_name).await.unwrap();
    let action = reconcile(&ctx, &long_name)
        .await
        .expect("no error for an invalid spec");
    assert_eq!(action, kube::runtime::controller::Action::await_change());

    let status = get_tenant(&client, &long_name).await.status.unwrap();
    let ready = find_condition(&status.conditions, "Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(ready.message.contains("metadata.name"), "{}", ready.message);
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        namespaces.items.is_empty(),
        "nothing applied for an invalid tenant"
    );
}

#[tokio::test]
async fn deleting_a_tenant_deletes_its_numbers_before_letting_go() {
    let mut doomed = acme(json!({"displayName": "Acme"}));
    doomed.metadata.finalizers = Some(vec![tenant::FINALIZER.to_owned()]);
    doomed.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    let number: PhoneNumber = serde_json::from_value(json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": {"name": "main", "namespace": NS},
        "spec": {"areaCode": "415"}
    }))
    .unwrap();
    let client = fake_api_with(vec![doomed], vec![number], WriteCounter::default()).await;
    let ctx = context(client.clone());
    let numbers: Api<PhoneNumber> = Api::namespaced(client.clone(), NS);

    let first = reconcile(&ctx, "acme").await;
    assert!(
        matches!(first, Err(Error::Waiting(_))),
        "waits for numbers: {first:?}"
    );
    assert!(
        numbers.get_opt("main").await.unwrap().is_none(),
        "number deletion requested"
    );
    assert!(
        Api::<Tenant>::all(client.clone())
            .get_opt("acme")
            .await
            .unwrap()
            .is_some(),
        "tenant held by finalizer"
    );

    reconcile(&ctx, "acme")
        .await
        .expect("finalizer removed once numbers are gone");
    assert!(
        Api::<Tenant>::all(client.clone())
            .get_opt("acme")
            .await
            .unwrap()
            .is_none()
    );
    let _ = Tenant::kind(&());
}

/// With the chart's grants configured, the reconcile binds the platform's tenant-namespace
/// ClusterRoles in the tenant's namespace (and nowhere else), and a second reconcile sends
/// nothing for them (the RoleBinding watch feeds the cache).
#[tokio::test]
async fn platform_components_get_secret_access_in_the_tenant_namespace_only() {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use switchboard_operator::OperatorConfig;
    use switchboard_operator::builders::access::TenantRoleBinding;

    let writes = WriteCounter::default();
    let client = fake_api(
        vec![acme(json!({"displayName": "Acme Inc", "plan": "free"}))],
        writes.clone(),
    )
    .await;
    let grant = |role: &str, account: &str| TenantRoleBinding {
        cluster_role: role.into(),
        service_account_namespace: "switchboard-system".into(),
        service_account: account.into(),
    };
    let config = OperatorConfig {
        tenant_role_bindings: vec![
            grant("sb-switchboard-operator-tenant", "sb-switchboard-operator"),
            grant("sb-switchboard-gateway-tenant", "sb-switchboard-gateway"),
        ],
        ..OperatorConfig::default()
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        config,
        Arc::new(switchboard_operator::controllers::metrics().unwrap()),
        kube::runtime::events::Reporter {
            controller: "switchboard-operator".into(),
            instance: Some("test".into()),
        },
    ));
    reconcile_until_applied(&ctx, "acme").await;

    let bindings = Api::<RoleBinding>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut found: Vec<(String, String, String)> = bindings
        .iter()
        .map(|b| {
            let subject = &b.subjects.as_ref().unwrap()[0];
            (
                b.namespace().unwrap_or_default(),
                b.role_ref.name.clone(),
                subject.name.clone(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                NS.into(),
                "sb-switchboard-gateway-tenant".into(),
                "sb-switchboard-gateway".into()
            ),
            (
                NS.into(),
                "sb-switchboard-operator-tenant".into(),
                "sb-switchboard-operator".into()
            ),
        ]
    );
    assert!(
        bindings
            .iter()
            .all(|b| b.role_ref.kind == "ClusterRole" && b.owner_references()[0].kind == "Tenant")
    );

    let before = writes.get();
    reconcile(&ctx, "acme").await.expect("reconcile at rest");
    assert_eq!(
        writes.get(),
        before,
        "a converged tenant's bindings are not applied again"
    );
}
