//! The operator binary as it runs, against the in-memory API server over HTTP: every metric
//! follows the Prometheus naming conventions, and every operator metric the chart's dashboard
//! and alert rules use (charts/switchboard/files/) is exported on its metrics port.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use serde_json::json;
use support::{WriteCounter, in_memory_api};
use switchboard_crds::Tenant;
use switchboard_telemetry::conventions::{http_get, missing, monitored, violations};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_operator_exports_what_the_chart_monitors() {
    let api = in_memory_api(Vec::new(), Vec::new(), WriteCounter::default()).await;
    let server = api.serve_http().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: http://{server}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\nusers:\n- name: test\n  user: {{}}\n"
        ),
    )
    .expect("kubeconfig");
    let metrics: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port");
    let log_path = dir.path().join("operator.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut operator = Running(
        Command::new(env!("CARGO_BIN_EXE_switchboard-operator"))
            .args(["run", "--leader-election=false", "--metrics-listen"])
            .arg(metrics.to_string())
            .env_clear()
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start switchboard-operator"),
    );
    let wanted = monitored(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/switchboard/files"),
        "operator",
    )
    .expect("chart monitoring files");
    assert!(
        wanted.len() >= 4,
        "the chart monitors the operator: {wanted:?}"
    );

    // A tenant to reconcile, so the per-condition gauge has a series.
    let tenants: Api<Tenant> = Api::all(api.uncounted_client());
    tenants
        .create(
            &PostParams::default(),
            &support::tenant("acme", json!({"displayName": "Acme", "plan": "free"})),
        )
        .await
        .expect("create tenant");

    let started = Instant::now();
    let mut exposition = String::new();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(Some(status)) = operator.0.try_wait() {
            panic!("operator exited with {status}: {}", read(&log_path));
        }
        let scraped = tokio::task::spawn_blocking(move || http_get(metrics, "/metrics"))
            .await
            .expect("scrape task");
        if let Ok((200, body)) = scraped {
            exposition = body;
            if missing(&wanted, &exposition).is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        missing(&wanted, &exposition),
        Vec::<String>::new(),
        "metrics the chart uses but the operator does not export (log: {}):\n{exposition}",
        read(&log_path)
    );
    assert_eq!(
        violations(&exposition),
        Vec::<String>::new(),
        "{exposition}"
    );
    println!("operator exports {} monitored metrics", wanted.len());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
