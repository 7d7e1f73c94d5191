#!/usr/bin/env python3
"""Validate the chart's monitoring files with promtool (from Debian's `prometheus` package).

1. files/prometheus-rules.yaml: `promtool check rules` (syntax, PromQL, templates) and
   `promtool test rules ci/prometheus-rules.test.yaml` (each alert fires on trouble, stays
   quiet otherwise); the alerts the operating guide lists are all there.
2. files/grafana-dashboard.json: a Grafana dashboard (uid, unique panel ids, panels inside the
   24-column grid without overlaps, every query on the `${datasource}` variable), and every
   panel's PromQL parses: the queries (Grafana variables replaced by sample values) are
   written as recording rules and checked by `promtool check rules`.

That every metric named in both files is exported by the binaries is checked by the Rust
metric-names tests, which scrape each running binary (cargo test).

Usage: validate_monitoring.py CHART_DIR PROMTOOL WORK_DIR
Prints one line per check and a closing `N passed, N failed` line; exit status 1 on failure.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import yaml

ALERTS = {
    "SwitchboardRuntimeSaturated", "SwitchboardRuntimeRefusingCalls",
    "SwitchboardProviderErrorRate", "SwitchboardWebhookSignatureFailures",
    "SwitchboardOutboxBacklog", "SwitchboardGatewayErrors", "SwitchboardDialerHolds",
    "SwitchboardDialerFailures", "SwitchboardReconcileErrors", "SwitchboardTenantsNotReady",
}
# Sample values of the dashboard's variables, so its queries are plain PromQL.
VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*", "$runtime_namespace": ".*",
             "$tenant": ".*"}

passed = failed = 0


def check(label: str, ok: bool, detail: str = "") -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {label}")
    else:
        failed += 1
        print(f"FAIL {label}{': ' + detail if detail else ''}")


def promtool(tool: str, *args: str) -> tuple[bool, str]:
    run = subprocess.run([tool, *args], capture_output=True, text=True)
    return run.returncode == 0, (run.stdout + run.stderr).strip()


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    chart, tool, work = pathlib.Path(argv[1]), argv[2], pathlib.Path(argv[3])
    work.mkdir(parents=True, exist_ok=True)
    rules_file = chart / "files" / "prometheus-rules.yaml"

    ok, out = promtool(tool, "check", "rules", str(rules_file))
    check("promtool check rules files/prometheus-rules.yaml", ok, out)
    ok, out = promtool(tool, "test", "rules", str(chart / "ci" / "prometheus-rules.test.yaml"))
    check("promtool test rules ci/prometheus-rules.test.yaml", ok, out)
    rules = yaml.safe_load(rules_file.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    check("every documented alert is defined", ALERTS <= alerts, str(ALERTS - alerts))
    for group in rules["groups"]:
        for rule in (r for r in group["rules"] if "alert" in r):
            check(f"alert {rule['alert']} has severity, summary and description",
                  rule.get("labels", {}).get("severity") in ("info", "warning", "critical")
                  and {"summary", "description"} <= set(rule.get("annotations", {})))

    dashboard = json.loads((chart / "files" / "grafana-dashboard.json").read_text())
    check("dashboard has a uid and a title", bool(dashboard.get("uid") and dashboard.get("title")))
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    check("dashboard panel ids are unique", len(ids) == len(set(ids)))
    cells: set[tuple[int, int]] = set()
    overlap = False
    for panel in panels:
        g = panel["gridPos"]
        check(f"panel {panel['title']!r} fits the 24-column grid", g["x"] + g["w"] <= 24)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                overlap |= (x, y) in cells
                cells.add((x, y))
    check("dashboard panels do not overlap", not overlap)
    recording = []
    for panel in (p for p in panels if p["type"] != "row"):
        targets = panel.get("targets", [])
        check(f"panel {panel['title']!r} queries the ${{datasource}} variable",
              bool(targets) and panel["datasource"]["uid"] == "${datasource}"
              and all(t["datasource"]["uid"] == "${datasource}" for t in targets))
        for target in targets:
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            leftover = re.findall(r"\$\w+", expr)
            check(f"panel {panel['title']!r} {target['refId']}: only known variables",
                  not leftover, str(leftover))
            recording.append({"record": f"dashboard:panel{panel['id']}:{target['refId']}",
                              "expr": expr})
    generated = work / "dashboard-queries.rules.yaml"
    generated.write_text(yaml.safe_dump({"groups": [{"name": "dashboard",
                                                      "rules": recording}]}))
    ok, out = promtool(tool, "check", "rules", str(generated))
    check(f"promtool parses the dashboard's {len(recording)} queries", ok, out)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
