//! Prometheus naming conventions, checked against what a binary really exports.
//!
//! The rules (from <https://prometheus.io/docs/practices/naming/>) that dashboards and alert
//! rules rely on: a counter ends in `_total`; a gauge does not (it would read as a counter in
//! `rate()`); a histogram or summary names its unit (`_seconds`, `_bytes`). The metric-names
//! tests of the gateway, the operator and the runtime scrape each running binary's metrics
//! port, check these rules with [`violations`] and check with [`missing`] that every
//! `switchboard_…` name the chart's Grafana dashboard and PrometheusRule use is exported.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// Prefix of every Switchboard metric.
pub const PREFIX: &str = "switchboard_";

/// Units a histogram or summary may be measured in (base units only).
const UNITS: &[&str] = &["_seconds", "_bytes"];

/// Metric families of a text exposition (`# TYPE name kind` lines): name → kind
/// (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
pub fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// Every convention broken by a `switchboard_…` family of `exposition`, one message each.
pub fn violations(exposition: &str) -> Vec<String> {
    families(exposition)
        .iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .filter_map(|(name, kind)| violation(name, kind))
        .collect()
}

fn violation(name: &str, kind: &str) -> Option<String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_chars {
        return Some(format!("{name}: use lower-case snake_case"));
    }
    let total = name.ends_with("_total");
    match kind {
        "counter" if !total => Some(format!("{name}: a counter must end in _total")),
        "gauge" if total => Some(format!("{name}: a gauge must not end in _total")),
        "histogram" | "summary" if !UNITS.iter().any(|unit| name.ends_with(unit)) => Some(format!(
            "{name}: a {kind} must name its unit ({})",
            UNITS.join(", ")
        )),
        "untyped" => Some(format!("{name}: give the metric a type")),
        _ => None,
    }
}

/// The `switchboard_…` metric names a dashboard, rule file or PromQL text refers to.
pub fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find(PREFIX) {
        let start = at + found;
        let preceded_by_word = start > 0
            && (bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b'-');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| start + n);
        // A Rust path such as `switchboard_telemetry::conventions` in a comment is no metric.
        if !preceded_by_word && !text[end..].starts_with("::") {
            names.insert(text[start..end].to_owned());
        }
        at = end;
    }
    names
}

/// The binary that exports a `switchboard_…` metric, by its prefix: `runtime`
/// (`switchboard_runtime_…`), `operator` (`switchboard_operator_…`) or `gateway` (the rest).
pub fn exporter(name: &str) -> &'static str {
    if name.starts_with("switchboard_runtime_") {
        "runtime"
    } else if name.starts_with("switchboard_operator_") {
        "operator"
    } else {
        "gateway"
    }
}

/// The metric names the monitoring files in `dir` (`*.json` dashboards, `*.yaml` rule files:
/// the chart's `files/`) use that `exporter` exports, by [`exporter`].
pub fn monitored(dir: &Path, exporter_name: &str) -> std::io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let monitoring_file = path
            .extension()
            .is_some_and(|ext| ext == "json" || ext == "yaml");
        if monitoring_file {
            names.extend(
                referenced(&std::fs::read_to_string(&path)?)
                    .into_iter()
                    .filter(|name| exporter(name) == exporter_name),
            );
        }
    }
    Ok(names)
}

/// `GET path` over plain HTTP/1.0, as a scraper sends it: the status code and the body.
///
/// Blocking and dependency-free on purpose: the metric-names tests run it against a binary
/// started as a child process, from crates that have no HTTP client among their dependencies.
pub fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(invalid)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(invalid)?;
    Ok((status, body.to_owned()))
}

/// The names of `wanted` that `exposition` does not export. A histogram's series
/// (`_bucket`, `_sum`, `_count`) count as exported when the histogram is.
pub fn missing(wanted: &BTreeSet<String>, exposition: &str) -> Vec<String> {
    let families = families(exposition);
    let exported = |name: &str| {
        families.contains_key(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix).is_some_and(|base| {
                    matches!(
                        families.get(base).map(String::as_str),
                        Some("histogram" | "summary")
                    )
                })
            })
    };
    wanted
        .iter()
        .filter(|name| !exported(name))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "\
# HELP switchboard_calls_total Calls.
# TYPE switchboard_calls_total counter
switchboard_calls_total 3
# TYPE switchboard_tenants_total gauge
switchboard_tenants_total 2
# TYPE switchboard_dialer_holds counter
switchboard_dialer_holds 1
# TYPE switchboard_latency histogram
# TYPE switchboard_stage_seconds histogram
# TYPE process_open_fds gauge
";

    #[test]
    fn each_broken_convention_is_named() {
        let found = violations(EXPOSITION);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found
                .iter()
                .any(|v| v.starts_with("switchboard_tenants_total: a gauge"))
        );
        assert!(
            found
                .iter()
                .any(|v| v.starts_with("switchboard_dialer_holds: a counter"))
        );
        assert!(
            found
                .iter()
                .any(|v| v.starts_with("switchboard_latency: a histogram"))
        );
    }

    #[test]
    fn referenced_names_come_from_expressions_only() {
        let text = r#"expr: sum(rate(switchboard_stage_seconds_bucket{tenant="a"}[5m])) / x_switchboard_no
  dashboard: "switchboard-overview", legend: switchboard_calls_total # switchboard_telemetry::x"#;
        let names = referenced(text);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            [
                "switchboard_calls_total",
                "switchboard_stage_seconds_bucket"
            ]
        );
    }

    #[test]
    fn each_metric_has_one_exporter() {
        assert_eq!(exporter("switchboard_runtime_calls_total"), "runtime");
        assert_eq!(exporter("switchboard_operator_tenants"), "operator");
        assert_eq!(exporter("switchboard_tenants"), "gateway");
        assert_eq!(exporter("switchboard_gateway_outbox_pending"), "gateway");
    }

    #[test]
    fn histogram_series_count_as_exported() {
        let wanted: BTreeSet<String> = [
            "switchboard_stage_seconds_bucket",
            "switchboard_calls_total",
            "switchboard_calls_total_sum",
            "switchboard_absent_total",
        ]
        .map(str::to_owned)
        .into();
        assert_eq!(
            missing(&wanted, EXPOSITION),
            ["switchboard_absent_total", "switchboard_calls_total_sum"]
        );
    }
}
