//! The controllers as they run — watches, predicates, caches — against the in-memory API, with
//! kube-controller-manager simulated: tenants converge in a few reconciles and requests, and
//! once converged the operator sends nothing, however much the cluster updates statuses.

mod support;

use std::time::Duration;

use kube::api::Api;
use serde_json::json;
use support::{Churn, WriteCounter, by_verb, context, in_memory_api, is_write, simulate_cluster};
use switchboard_crds::conditions::is_condition_true;
use switchboard_crds::{PhoneNumber, Tenant};
use switchboard_operator::controllers::{phone_number, tenant};
use tokio_util::sync::CancellationToken;

const TENANTS: usize = 3;

fn reconciles(ctx: &switchboard_operator::controllers::Context, controller: &str) -> u64 {
    let text = switchboard_telemetry::render_metrics(&ctx.metrics.registry).unwrap();
    let prefix = format!("switchboard_operator_reconciles_total{{controller=\"{controller}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Waits until every Tenant is Ready and counts its one ready number (tenant t1).
async fn wait_converged(tenants: &Api<Tenant>) {
    for _ in 0..300 {
        let list = tenants.list(&Default::default()).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|t| {
                t.status.as_ref().is_some_and(|s| {
                    is_condition_true(&s.conditions, "Ready")
                        && s.observed_generation == t.metadata.generation
                        && s.phone_numbers == i32::from(t.metadata.name.as_deref() == Some("t1"))
                })
            })
            .count();
        if ready == TENANTS {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("tenants did not converge within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converged_tenants_cost_no_request_while_the_cluster_updates_statuses() {
    let plans = ["free", "starter", "enterprise"];
    let tenants = (0..TENANTS)
        .map(|i| {
            support::tenant(
                &format!("t{i}"),
                json!({"displayName": format!("Tenant {i}"), "plan": plans[i]}),
            )
        })
        .collect();
    let number = json!({
        "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
        "metadata": {"name": "main", "namespace": "tenant-t1"}, "spec": {}
    });
    let api = in_memory_api(tenants, vec![number], WriteCounter::default()).await;
    let simulator = simulate_cluster(
        &api,
        Churn {
            step: Duration::from_millis(50),
            rest_updates_per_second: 100,
        },
    );
    let ctx = context(api.client.clone());
    let shutdown = CancellationToken::new();
    let tenants_controller =
        tokio::spawn(tenant::run(ctx.clone(), shutdown.clone().cancelled_owned()));
    let numbers_controller = tokio::spawn(phone_number::run(
        ctx.clone(),
        shutdown.clone().cancelled_owned(),
    ));

    wait_converged(&Api::all(api.uncounted_client())).await;
    // Let the last watch echoes arrive before taking the figures.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let converged = api.requests.snapshot();
    let tenant_reconciles = reconciles(&ctx, "tenant");
    let number_reconciles = reconciles(&ctx, "phone-number");
    let spent: u64 = converged
        .iter()
        .filter(|((verb, _), _)| verb != "watch" && verb != "list")
        .map(|(_, n)| n)
        .sum();
    println!("to converge: {tenant_reconciles} tenant reconciles, {spent} requests: {converged:?}");
    assert!(
        tenant_reconciles <= 3 * TENANTS as u64,
        "{tenant_reconciles} tenant reconciles for {TENANTS} tenants"
    );
    assert!(
        spent <= 20 * TENANTS as u64 + 10,
        "{spent} requests for {TENANTS} tenants and one number: {converged:?}"
    );

    // At rest, while kube-controller-manager keeps updating Deployment and quota statuses.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rested = api.requests.snapshot();
    let at_rest = by_verb(&converged, &rested);
    assert!(
        at_rest.keys().all(|verb| !is_write(verb)),
        "writes at rest: {at_rest:?}"
    );
    assert!(at_rest.is_empty(), "requests at rest: {at_rest:?}");
    assert_eq!(
        reconciles(&ctx, "tenant"),
        tenant_reconciles,
        "no tenant reconcile at rest"
    );
    assert_eq!(
        reconciles(&ctx, "phone-number"),
        number_reconciles,
        "no number reconcile at rest"
    );
    let number = Api::<PhoneNumber>::namespaced(api.uncounted_client(), "tenant-t1")
        .get("main")
        .await
        .unwrap();
    assert!(is_condition_true(
        &number.status.unwrap().conditions,
        "Ready"
    ));

    shutdown.cancel();
    tenants_controller.await.unwrap();
    numbers_controller.await.unwrap();
    simulator.abort();
}
