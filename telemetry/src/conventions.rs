//! Prometheus naming conventions, checked against what a binary really exports.
//!
//! The rules (from <https://prometheus.io/docs/practices/naming/>) that dashboards and alert
//! rules rely on: a counter ends in `_total`; a gauge does not (it would read as a counter in
//! `rate()`); a histogram or summary names its unit (`_seconds`, `_bytes`). The metric-names
//! tests of the gateway, the operator and the runtime scrape each running binary's metrics
//! port, check these rules with [`violations`] and check with [`missing`] that every
//! `switchboard_…` name the chart's Grafana dashboard and PrometheusRule use is exported.

use std::collections::{BTreeMap, BTreeSet};

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
        if !preceded_by_word {
            names.insert(text[start..end].to_owned());
        }
        at = end;
    }
    names
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
  dashboard: "switchboard-overview", legend: switchboard_calls_total"#;
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
