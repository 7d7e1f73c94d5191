//! The gateway binary as it runs: `/metrics` is on the metrics port only (the public port
//! answers 404: the metrics name every tenant), every metric follows the Prometheus naming
//! conventions, and every gateway metric the chart's dashboard and alert rules use
//! (charts/switchboard/files/) is exported.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_telemetry::conventions::{http_get, missing, monitored, violations};

/// A port that was free a moment ago (the child process binds it).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_running_gateway_exports_what_the_chart_monitors_on_its_metrics_port_only() {
    let data = tempfile::tempdir().expect("temp dir");
    let (public, metrics) = (free_port(), free_port());
    let log = std::fs::File::create(data.path().join("gateway.log")).expect("log file");
    let mut gateway = Running(
        Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"))
            .arg("serve")
            .env_clear()
            .env(
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", data.path().join("gw.db").display()),
            )
            .env("SWITCHBOARD_LISTEN", public.to_string())
            .env("SWITCHBOARD_METRICS_LISTEN", metrics.to_string())
            .env("SWITCHBOARD_KUBERNETES", "false")
            .env("SWITCHBOARD_MAIL_OUTBOX", data.path().join("mail"))
            .env("JWT_SECRET", "metric-names-test-secret-0123456789abcdef")
            .env(
                "MASTER_ENCRYPTION_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start switchboard-gateway"),
    );
    let log = data.path().join("gateway.log");
    let wanted = monitored(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/switchboard/files"),
        "gateway",
    )
    .expect("chart monitoring files");
    assert!(
        wanted.len() >= 10,
        "the chart monitors the gateway: {wanted:?}"
    );

    // Up once the public port answers; the request also gives the HTTP metrics a series.
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = http_get(public, "/healthz") {
            break;
        }
        if let Ok(Some(status)) = gateway.0.try_wait() {
            panic!("gateway exited with {status}: {}", read(&log));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gateway did not start: {}",
            read(&log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let (status, body) = http_get(public, "/metrics").expect("public port");
    assert_eq!(status, 404, "the public port serves /metrics: {body}");
    let (status, _) = http_get(public, "/internal/v1/metrics").expect("public port");
    assert_ne!(status, 200);

    // The database figures come from a worker's first refresh: wait for them.
    let mut exposition = String::new();
    while started.elapsed() < Duration::from_secs(60) {
        let (status, body) = http_get(metrics, "/metrics").expect("metrics port");
        assert_eq!(status, 200, "{body}");
        exposition = body;
        if missing(&wanted, &exposition).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        missing(&wanted, &exposition),
        Vec::<String>::new(),
        "metrics the chart uses but the gateway does not export:\n{exposition}"
    );
    assert_eq!(
        violations(&exposition),
        Vec::<String>::new(),
        "{exposition}"
    );
    // Health is served on both ports (probes may use either).
    assert_eq!(http_get(metrics, "/healthz").expect("metrics port").0, 200);
    println!("gateway exports {} monitored metrics", wanted.len());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
