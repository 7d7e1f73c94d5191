//! Reconcile cost: `cargo bench -p switchboard-operator --bench reconcile [-- --tenants N]`.
//!
//! Reconciles N Tenants (default 1,000) against the in-memory Kubernetes API used by the
//! controller tests, twice each (the first pass adds the finalizer, the second applies the
//! 12-object stack and writes status), then once more as a steady-state resync. Prints total
//! time, CPU time per reconcile and peak memory (VmHWM) of the whole process, in-memory API
//! server included, so the figures are an upper bound on the operator's own cost.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::json;
use support::{WriteCounter, context, fake_api};
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

async fn reconcile_all(
    ctx: &Arc<switchboard_operator::controllers::Context>,
    names: &[String],
) -> (Duration, Duration) {
    let api: Api<Tenant> = Api::all(ctx.client.clone());
    let (wall, cpu) = (Instant::now(), cpu_time());
    for name in names {
        let current = api.get(name).await.expect("tenant");
        tenant::reconcile(Arc::new(current), ctx.clone())
            .await
            .expect("reconcile");
    }
    (wall.elapsed(), cpu_time() - cpu)
}

fn report(label: &str, count: usize, (wall, cpu): (Duration, Duration)) {
    println!(
        "{label:<28} {count:>5} reconciles  total {:>8.2} s  wall/reconcile {:>7.3} ms  cpu/reconcile {:>7.3} ms",
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / count as f64,
        cpu.as_secs_f64() * 1000.0 / count as f64,
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
    let client = fake_api(tenants, WriteCounter::default()).await;
    let ctx = context(client);

    let started = Instant::now();
    let finalizers = reconcile_all(&ctx, &names).await;
    let applies = reconcile_all(&ctx, &names).await;
    let resync = reconcile_all(&ctx, &names).await;
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
