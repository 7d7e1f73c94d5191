//! Reconcile cost: `cargo bench -p switchboard-operator --bench reconcile [-- --tenants N]`.
//!
//! Reconciles N Tenants (default 1,000) against the in-memory Kubernetes API used by the
//! controller tests, twice each (the first pass adds the finalizer, the second applies the
//! 12-object stack and writes status), then once more as a steady-state resync. No watch runs
//! here: the reconciles keep the caches themselves (each apply is written through), so the
//! resync shows what an unchanged tenant costs. Prints total time, CPU time and API requests
//! per reconcile and peak memory (VmHWM) of the whole process, in-memory API server included,
//! so the figures are an upper bound on the operator's own cost. `--bench converge` runs the
//! operator as it runs (watches, cluster churn, its own process).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::json;
use support::{Requests, WriteCounter, context, in_memory_api};
use switchboard_crds::Tenant;
use switchboard_operator::controllers::tenant;

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let to_duration = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    to_duration(usage.ru_utime) + to_duration(usage.ru_stime)
}

fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn tenant_count() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|w| w[0] == "--tenants")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(1000)
}

/// Reconciles every tenant once; returns wall time, CPU time and the operator's requests.
async fn reconcile_all(
    ctx: &Arc<switchboard_operator::controllers::Context>,
    tenants: &Api<Tenant>,
    requests: &Requests,
    names: &[String],
) -> (Duration, Duration, u64) {
    let mut spent = Duration::ZERO;
    let mut cpu_spent = Duration::ZERO;
    let before = requests.total();
    for name in names {
        // Read outside the timing, as the controller gets the object from its watch.
        let current = tenants.get(name).await.expect("tenant");
        let (wall, cpu) = (Instant::now(), cpu_time());
        tenant::reconcile(Arc::new(current), ctx.clone())
            .await
            .expect("reconcile");
        spent += wall.elapsed();
        cpu_spent += cpu_time() - cpu;
    }
    (spent, cpu_spent, requests.total() - before)
}

fn report(label: &str, count: usize, (wall, cpu, requests): (Duration, Duration, u64)) {
    println!(
        "{label:<28} {count:>5} reconciles  total {:>8.2} s  wall/reconcile {:>7.3} ms  cpu/reconcile {:>7.3} ms  requests/reconcile {:>5.2}",
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / count as f64,
        cpu.as_secs_f64() * 1000.0 / count as f64,
        requests as f64 / count as f64,
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; ignore everything but --tenants.
    let n = tenant_count();
    let plans = ["free", "starter", "professional", "enterprise"];
    let tenants: Vec<Tenant> = (0..n)
        .map(|i| {
            support::tenant(
                &format!("t{i:05}"),
                json!({"displayName": format!("Tenant {i}"), "plan": plans[i % 4]}),
            )
        })
        .collect();
    let names: Vec<String> = tenants
        .iter()
        .map(|t| t.metadata.name.clone().unwrap_or_default())
        .collect();
    let api = in_memory_api(tenants, Vec::new(), WriteCounter::default()).await;
    let ctx = context(api.client.clone());
    let tenants = Api::all(api.uncounted_client());

    let started = Instant::now();
    let finalizers = reconcile_all(&ctx, &tenants, &api.requests, &names).await;
    let applies = reconcile_all(&ctx, &tenants, &api.requests, &names).await;
    let resync = reconcile_all(&ctx, &tenants, &api.requests, &names).await;
    report("pass 1: add finalizer", n, finalizers);
    report("pass 2: apply stack+status", n, applies);
    report("pass 3: unchanged resync", n, resync);
    let total = started.elapsed();
    println!(
        "tenants={n} total_s={:.2} cpu_ms_per_apply={:.3} peak_rss_mib={:.1}",
        total.as_secs_f64(),
        applies.1.as_secs_f64() * 1000.0 / n as f64,
        peak_memory_kib() as f64 / 1024.0
    );
}
