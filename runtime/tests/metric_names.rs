//! The runtime binary as it runs: `/metrics` is on the metrics port only (the media port
//! answers 404), every metric follows the Prometheus naming conventions, and every runtime
//! metric the chart's dashboard and alert rules use (charts/switchboard/files/) is exported.

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
fn the_running_runtime_exports_what_the_chart_monitors_on_its_metrics_port_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (media, metrics) = (free_port(), free_port());
    let log_path = dir.path().join("runtime.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut runtime = Running(
        Command::new(env!("CARGO_BIN_EXE_switchboard-runtime"))
            .env_clear()
            .env("SWITCHBOARD_LISTEN", media.to_string())
            .env("SWITCHBOARD_METRICS_LISTEN", metrics.to_string())
            .env("SWITCHBOARD_TENANT", "acme")
            .env("SWITCHBOARD_AGENT_CONFIG_DIR", dir.path().join("agent"))
            .env("SWITCHBOARD_PROVIDER_KEYS_DIR", dir.path().join("keys"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start switchboard-runtime"),
    );
    let wanted = monitored(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/switchboard/files"),
        "runtime",
    )
    .expect("chart monitoring files");
    assert!(
        wanted.len() >= 6,
        "the chart monitors the runtime: {wanted:?}"
    );

    let started = Instant::now();
    let exposition = loop {
        if let Ok((200, body)) = http_get(metrics, "/metrics") {
            break body;
        }
        if let Ok(Some(status)) = runtime.0.try_wait() {
            panic!("runtime exited with {status}: {}", read(&log_path));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "runtime did not start: {}",
            read(&log_path)
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    let (status, body) = http_get(media, "/metrics").expect("media port");
    assert_eq!(status, 404, "the media port serves /metrics: {body}");
    assert_eq!(http_get(media, "/readyz").expect("media port").0, 200);
    assert_eq!(
        missing(&wanted, &exposition),
        Vec::<String>::new(),
        "metrics the chart uses but the runtime does not export:\n{exposition}"
    );
    assert_eq!(
        violations(&exposition),
        Vec::<String>::new(),
        "{exposition}"
    );
    // Every series is labelled with the tenant (dashboards and alerts group by it).
    assert!(
        exposition
            .lines()
            .filter(|line| line.starts_with("switchboard_runtime_"))
            .all(|line| line.contains("tenant=\"acme\"")),
        "{exposition}"
    );
    println!("runtime exports {} monitored metrics", wanted.len());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
