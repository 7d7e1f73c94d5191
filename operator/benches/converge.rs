//! Convergence and rest: `cargo bench -p switchboard-operator --bench converge
//! [-- --tenants N --rest-seconds S --step-ms MS --rest-updates U]`.
//!
//! The real `switchboard-operator` binary (default settings, leader election off) runs in its
//! own process against the in-memory Kubernetes API of the controller tests, served over HTTP
//! by this process. This process also plays kube-controller-manager: every new Deployment is
//! observed and then becomes available `--step-ms` apart (two status writes), every
//! ResourceQuota gets its status, and all along `--rest-updates` status updates per second
//! change quota usage and Deployment conditions — what a real cluster does and what the
//! operator must not react to. Once the operator runs, N Tenants (default 1,000) are created
//! at once, as a GitOps sync would.
//!
//! Printed: time to converge (every Tenant Ready for its generation), tenant reconciles per
//! tenant, the operator's API requests per tenant by verb (counted by the API server; the
//! simulator's own writes are not counted), then requests per second over `--rest-seconds`
//! at rest; CPU time (the operator process's utime+stime, and its getrusage total after it
//! exits) and memory (VmRSS/VmHWM) of each process separately, so the operator's figures do
//! not include the in-memory API server holding every object.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use serde_json::json;
use support::{Churn, WriteCounter, by_verb, in_memory_api, is_write, simulate_cluster};
use switchboard_crds::Tenant;
use switchboard_crds::conditions::is_condition_true;

struct Args {
    tenants: usize,
    rest_seconds: u64,
    step_ms: u64,
    rest_updates: u32,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        argv.windows(2)
            .find(|w| w[0] == name)
            .and_then(|w| w[1].parse::<u64>().ok())
    };
    Args {
        tenants: value("--tenants").unwrap_or(1000) as usize,
        rest_seconds: value("--rest-seconds").unwrap_or(30),
        step_ms: value("--step-ms").unwrap_or(200),
        rest_updates: value("--rest-updates").unwrap_or(200) as u32,
    }
}

/// utime + stime of a live process, from /proc (what getrusage reports, 10 ms resolution).
fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / per_second)
}

/// CPU time of this process, or of its waited-for children.
fn rusage_cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let to_duration = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    to_duration(usage.ru_utime) + to_duration(usage.ru_stime)
}

/// VmRSS and VmHWM of a process, in MiB.
fn memory_mib(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_operator(api: std::net::SocketAddr, metrics_port: u16, dir: &std::path::Path) -> Child {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: bench\nclusters:\n- name: bench\n  cluster:\n    server: http://{api}\ncontexts:\n- name: bench\n  context:\n    cluster: bench\n    user: bench\nusers:\n- name: bench\n  user: {{}}\n"
        ),
    )
    .expect("kubeconfig");
    let log = std::fs::File::create(dir.join("operator.log")).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_switchboard-operator"))
        .args([
            "run",
            "--leader-election=false",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .env_remove("SWITCHBOARD_INTERNAL_TOKEN")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start switchboard-operator (built by cargo bench)")
}

/// `switchboard_operator_reconciles_total` by controller, from the operator's /metrics.
async fn reconciles(metrics_port: u16) -> BTreeMap<String, u64> {
    let text = match reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("switchboard_operator_reconciles_total{controller=\"")?;
            let (controller, value) = rest.split_once("\"} ")?;
            Some((controller.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

async fn ready_tenants(tenants: &Api<Tenant>) -> usize {
    let Ok(list) = tenants.list(&Default::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|t| {
            t.status.as_ref().is_some_and(|s| {
                is_condition_true(&s.conditions, "Ready")
                    && s.observed_generation == t.metadata.generation
            })
        })
        .count()
}

fn per(n: u64, tenants: usize) -> f64 {
    n as f64 / tenants as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let n = args.tenants;
    let api = in_memory_api(Vec::new(), Vec::new(), WriteCounter::default()).await;
    let address = api.serve_http().await;
    let simulator = simulate_cluster(
        &api,
        Churn {
            step: Duration::from_millis(args.step_ms),
            rest_updates_per_second: args.rest_updates,
        },
    );
    let dir = std::env::temp_dir().join(format!("switchboard-converge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let metrics_port = free_port();
    let mut operator = start_operator(address, metrics_port, &dir);
    let pid = operator.id();

    // The operator is up once its three controllers watch Tenants.
    let started = Instant::now();
    while api
        .requests
        .snapshot()
        .get(&("watch".to_owned(), "tenants".to_owned()))
        .copied()
        .unwrap_or(0)
        < 3
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "operator did not start; see {}",
            dir.join("operator.log").display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (startup_cpu, startup_requests) = (process_cpu(pid), api.requests.snapshot());

    let tenants: Api<Tenant> = Api::all(api.uncounted_client());
    let plans = ["free", "starter", "professional", "enterprise"];
    let applied = Instant::now();
    for i in 0..n {
        let tenant = support::tenant(
            &format!("t{i:05}"),
            json!({"displayName": format!("Tenant {i}"), "plan": plans[i % 4]}),
        );
        tenants
            .create(&PostParams::default(), &tenant)
            .await
            .expect("create tenant");
    }
    loop {
        let ready = ready_tenants(&tenants).await;
        if ready == n {
            break;
        }
        assert!(
            applied.elapsed() < Duration::from_secs(3600),
            "{ready}/{n} tenants ready after an hour"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let converge_wall = applied.elapsed();
    // The last watch echoes and Events of the final reconciles.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let converged = api.requests.snapshot();
    let converge_cpu = process_cpu(pid) - startup_cpu;
    let converge_reconciles = reconciles(metrics_port).await;
    let (_, converged_hwm) = memory_mib(&pid.to_string());

    let rest_started = Instant::now();
    let rest_cpu_before = process_cpu(pid);
    tokio::time::sleep(Duration::from_secs(args.rest_seconds)).await;
    let rest_wall = rest_started.elapsed();
    let rested = api.requests.snapshot();
    let rest_cpu = process_cpu(pid) - rest_cpu_before;
    let rest_reconciles = reconciles(metrics_port).await;
    let (operator_rss, operator_hwm) = memory_mib(&pid.to_string());
    let (api_rss, api_hwm) = memory_mib("self");

    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let _ = operator.wait();
    let operator_cpu_total = rusage_cpu(libc::RUSAGE_CHILDREN);
    simulator.abort();

    let converge = by_verb(&startup_requests, &converged);
    let converge_total: u64 = converge
        .iter()
        .filter(|(verb, _)| *verb != "watch")
        .map(|(_, n)| n)
        .sum();
    let at_rest = by_verb(&converged, &rested);
    let rest_total: u64 = at_rest.values().sum();
    let rest_writes: u64 = at_rest
        .iter()
        .filter(|(verb, _)| is_write(verb))
        .map(|(_, n)| n)
        .sum();
    let tenant_reconciles = converge_reconciles.get("tenant").copied().unwrap_or(0);
    let rest_tenant_reconciles =
        rest_reconciles.get("tenant").copied().unwrap_or(0) - tenant_reconciles;

    println!(
        "tenants {n}: converged in {:.1} s (created at once; rollout steps {} ms, {} status updates/s of churn)",
        converge_wall.as_secs_f64(),
        args.step_ms,
        args.rest_updates
    );
    println!(
        "  tenant reconciles per tenant   {:.2}  (all controllers: {converge_reconciles:?})",
        per(tenant_reconciles, n)
    );
    println!(
        "  API requests per tenant        {:.2}  by verb: {}",
        per(converge_total, n),
        converge
            .iter()
            .map(|(verb, c)| format!("{verb} {:.2}", per(*c, n)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  at rest ({:.0} s)               {:.2} requests/s, {rest_writes} writes, {rest_tenant_reconciles} tenant reconciles  {at_rest:?}",
        rest_wall.as_secs_f64(),
        rest_total as f64 / rest_wall.as_secs_f64(),
    );
    println!(
        "  operator CPU                   {:.2} ms per tenant to converge, {:.1} ms/s at rest, {:.2} s in all (getrusage)",
        converge_cpu.as_secs_f64() * 1000.0 / n as f64,
        rest_cpu.as_secs_f64() * 1000.0 / rest_wall.as_secs_f64(),
        operator_cpu_total.as_secs_f64()
    );
    println!(
        "  operator memory                {operator_rss:.1} MiB RSS at rest, {operator_hwm:.1} MiB peak ({converged_hwm:.1} MiB peak at convergence)"
    );
    println!(
        "  in-memory API + simulator      {api_rss:.1} MiB RSS, {api_hwm:.1} MiB peak, {:.2} s CPU (separate process, not in the operator's figures)",
        rusage_cpu(libc::RUSAGE_SELF).as_secs_f64()
    );
    println!(
        "tenants={n} converge_s={:.1} reconciles_per_tenant={:.2} requests_per_tenant={:.2} rest_requests_per_s={:.2} rest_writes={rest_writes} operator_cpu_ms_per_tenant={:.2} operator_peak_rss_mib={operator_hwm:.1}",
        converge_wall.as_secs_f64(),
        per(tenant_reconciles, n),
        per(converge_total, n),
        rest_total as f64 / rest_wall.as_secs_f64(),
        converge_cpu.as_secs_f64() * 1000.0 / n as f64,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
