//! The fixture of the CLI's end-to-end tests: the real gateway in process on SQLite, and the
//! real `switchboard` binary run against it with its own session file.

#![allow(dead_code)] // each test file uses part of it

use std::net::SocketAddr;
use std::path::Path;

use clap::Parser;
use serde_json::Value;
use switchboard_gateway::{AppState, Config};

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    config: Config,
}

/// The real gateway on SQLite in `dir`, listening on 127.0.0.1 with `extra` flags. Answers
/// its base URL, which is also its public URL.
pub async fn start_gateway(dir: &Path, extra: &[&str]) -> String {
    start_gateway_with(dir, extra, false).await
}

/// [`start_gateway`], buying numbers from an in-memory sandbox carrier when `sandbox` (as
/// `switchboard-gateway standalone` does).
pub async fn start_gateway_with(dir: &Path, extra: &[&str], sandbox: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let database = format!("sqlite://{}?mode=rwc", dir.join("gateway.db").display());
    let outbox = dir.join("outbox").display().to_string();
    let mut args = vec![
        "gateway",
        "--database-url",
        &database,
        "--jwt-secret",
        "cli-test-secret-cli-test-secret-0123456789",
        "--master-encryption-key",
        "2222222222222222222222222222222222222222222222222222222222222222",
        "--kubernetes",
        "false",
        "--dev-mode",
        "false",
        "--migrate-on-start",
        "true",
        "--public-url",
        &base,
        "--mail-outbox",
        &outbox,
        "--database-max-connections",
        "2",
    ];
    args.extend_from_slice(extra);
    let config = Wrapper::try_parse_from(args).unwrap().config;
    let mut state = AppState::from_config(config).await.unwrap();
    if sandbox {
        state.sandbox = Some(switchboard_carriers::SandboxCarrier::in_memory());
    }
    let app = switchboard_gateway::app(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    base
}

pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub async fn switchboard(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Run {
    let config = dir.join("config/switchboard/session.json");
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let stdin = stdin.map(str::to_owned);
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args(args)
            .env("SWITCHBOARD_CONFIG", config)
            .env_remove("SWITCHBOARD_URL")
            .env_remove("SWITCHBOARD_PASSWORD")
            .env_remove("SWITCHBOARD_TENANT")
            .env_remove("SWITCHBOARD_API_KEY")
            .env_remove("SWITCHBOARD_PUBLIC_URL")
            .env_remove("SWITCHBOARD_SANDBOX_AUTH_TOKEN")
            .envs(env)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    Run {
        status: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub fn session(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("config/switchboard/session.json")).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}
