//! Two operator replicas share one Lease: only one runs its controllers, and the leader
//! releases the Lease when it shuts down.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchboard_operator::leader::{LeaseSettings, run_as_leader};
use tokio_util::sync::CancellationToken;

fn settings(identity: &str) -> LeaseSettings {
    LeaseSettings {
        name: "switchboard-operator".into(),
        namespace: "switchboard-system".into(),
        identity: identity.into(),
        duration_seconds: 2,
        grace_seconds: 1,
    }
}

/// A replica: runs "controllers" (marks itself active) while it leads, until `stop` fires.
fn replica(
    client: kube::Client,
    identity: &'static str,
    active: Arc<AtomicUsize>,
    max_active: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(&'static str, bool)> {
    tokio::spawn(async move {
        let led = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let work = {
            let (active, max_active, stop, led) = (
                active.clone(),
                max_active.clone(),
                stop.clone(),
                led.clone(),
            );
            async move {
                led.store(true, Ordering::SeqCst);
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                max_active.fetch_max(now, Ordering::SeqCst);
                stop.cancelled().await;
                active.fetch_sub(1, Ordering::SeqCst);
            }
        };
        run_as_leader(client, settings(identity), stop, work)
            .await
            .expect("leader election");
        (identity, led.load(Ordering::SeqCst))
    })
}

#[tokio::test]
async fn only_one_replica_leads_and_it_releases_the_lease_on_shutdown() {
    let client = support::fake_api(vec![], support::WriteCounter::default()).await;
    let active = Arc::new(AtomicUsize::new(0));
    let max_active = Arc::new(AtomicUsize::new(0));
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    let a = replica(
        client.clone(),
        "replica-a",
        active.clone(),
        max_active.clone(),
        stop_a.clone(),
    );
    let b = replica(
        client.clone(),
        "replica-b",
        active.clone(),
        max_active.clone(),
        stop_b.clone(),
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        active.load(Ordering::SeqCst),
        1,
        "exactly one replica leads"
    );

    // Stop both; the one that led must release the Lease on its way out, so a standby can take
    // over at once instead of waiting for the lease to expire. (Take-over itself is
    // kube-lease-manager's job; kube-fake-client's server-side-apply ownership emulation does
    // not let a second field manager re-acquire a released Lease, so it is not asserted here.)
    stop_a.cancel();
    stop_b.cancel();
    let (_, a_led) = tokio::time::timeout(Duration::from_secs(10), a)
        .await
        .expect("a stops")
        .unwrap();
    let (_, b_led) = tokio::time::timeout(Duration::from_secs(10), b)
        .await
        .expect("b stops")
        .unwrap();
    assert!(
        a_led ^ b_led,
        "exactly one replica ran its controllers (a={a_led}, b={b_led})"
    );
    assert_eq!(
        max_active.load(Ordering::SeqCst),
        1,
        "never two leaders at once"
    );
    let lease: k8s_openapi::api::coordination::v1::Lease =
        kube::Api::namespaced(client.clone(), "switchboard-system")
            .get("switchboard-operator")
            .await
            .unwrap();
    let holder = lease.spec.and_then(|s| s.holder_identity);
    assert_eq!(holder, None, "the leader released the lease on shutdown");
}
