#!/usr/bin/env python3
"""Render the Switchboard chart offline with Helm's own engine and check its invariants.

Helm is used through `helm-python-sdk` (Helm v4's Go SDK behind a C ABI, from PyPI), so no
`helm` binary is needed. For every `ci/*-values.yaml` this:

1. validates the values against values.schema.json and renders the templates,
2. writes the manifests to OUT_DIR/<values name>.yaml (for kubernetes-validate),
3. checks what must hold in every configuration: restricted security contexts, no Secret
   objects and no secret values inlined, probes on every container, leader election with
   more than one operator replica, the RBAC contract (no Secret access at cluster scope),
   and monitoring (metrics on their own port, never routed by the Ingress or the public
   Service; the PrometheusRule and dashboard are the files under files/).

Then it checks that bad values are rejected (unknown keys, wrong enums, missing publicUrl).

Usage: render_chart.py CHART_DIR OUT_DIR
Prints one line per check and a closing `N passed, N failed` line; exit status 1 on failure.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any, Callable

import helm_python as helm
import yaml

# Environment variables whose values are secrets: they must come from secretKeyRef.
SECRET_ENV = {
    "DATABASE_URL", "JWT_SECRET", "MASTER_ENCRYPTION_KEY", "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET", "REDIS_URL", "SWITCHBOARD_INTERNAL_TOKEN", "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN", "TELNYX_API_KEY", "TELNYX_CONNECTION_ID", "TELNYX_PUBLIC_KEY",
}

RELEASE = "sb"
NAMESPACE = "switchboard-system"


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"ok   {label}")
        else:
            self.failed += 1
            print(f"FAIL {label}{': ' + detail if detail else ''}")


def render(chart_dir: str, values: dict[str, Any], release: str = RELEASE) -> list[dict[str, Any]]:
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        manifests = chart.render(values, name=release, namespace=NAMESPACE)
    docs: list[dict[str, Any]] = []
    for name in sorted(manifests):
        if name.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(manifests[name]) if isinstance(d, dict))
    return docs


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def check_workloads(c: Checks, tag: str, docs: list[dict[str, Any]]) -> None:
    for doc in (d for d in docs if d["kind"] == "Deployment"):
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        c.check(f"{tag}: {name} pod runs as non-root with seccomp RuntimeDefault",
                psc.get("runAsNonRoot") is True
                and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault")
        for ctr in containers(doc):
            sc = ctr.get("securityContext", {})
            c.check(f"{tag}: {name}/{ctr['name']} restricted container security context",
                    sc.get("allowPrivilegeEscalation") is False
                    and sc.get("readOnlyRootFilesystem") is True
                    and sc.get("capabilities", {}).get("drop") == ["ALL"])
            c.check(f"{tag}: {name}/{ctr['name']} has liveness and readiness probes",
                    "livenessProbe" in ctr and "readinessProbe" in ctr)
            c.check(f"{tag}: {name}/{ctr['name']} has resource requests",
                    bool(ctr.get("resources", {}).get("requests")))
            inlined = [e["name"] for e in ctr.get("env", [])
                       if e["name"] in SECRET_ENV and "value" in e]
            c.check(f"{tag}: {name}/{ctr['name']} takes secrets only from Secrets",
                    not inlined, f"inlined: {inlined}")
        if name.endswith("-operator"):
            env = {e["name"]: e.get("value") for e in containers(doc)[0].get("env", [])}
            replicas = doc["spec"].get("replicas", 1)
            c.check(f"{tag}: operator with {replicas} replicas elects a leader",
                    replicas <= 1 or env.get("SWITCHBOARD_LEADER_ELECTION") == "true")
            for var in ("POD_NAMESPACE", "POD_NAME", "SWITCHBOARD_GATEWAY_NAMESPACE",
                        "SWITCHBOARD_RUNTIME_IMAGE", "SWITCHBOARD_GATEWAY_PUBLIC_URL"):
                c.check(f"{tag}: operator sets {var}", var in env)
            c.check(f"{tag}: operator's gateway namespace is the release namespace",
                    env.get("SWITCHBOARD_GATEWAY_NAMESPACE") == NAMESPACE)
    c.check(f"{tag}: chart renders no Secret objects",
            not [d for d in docs if d["kind"] == "Secret"])
    # Operator and gateway derive tenant namespaces, runtime endpoints and effective plan
    # limits from the same settings (switchboard_crds::naming and ::plan).
    envs = {}
    for doc in (d for d in docs if d["kind"] == "Deployment"):
        for role in ("operator", "gateway"):
            if doc["metadata"]["name"].endswith(f"-{role}"):
                envs[role] = {e["name"]: e.get("value") for e in containers(doc)[0].get("env", [])}
    if len(envs) == 2:
        for var in ("SWITCHBOARD_NAMESPACE_PREFIX", "SWITCHBOARD_PLAN_LIMITS"):
            c.check(f"{tag}: operator and gateway get the same {var}",
                    envs["operator"].get(var) == envs["gateway"].get(var),
                    f"{envs['operator'].get(var)!r} != {envs['gateway'].get(var)!r}")


def rules_of(docs: list[dict[str, Any]], kind: str, suffix: str) -> list[dict[str, Any]]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"].endswith(suffix):
            return doc.get("rules", [])
    return []


def check_rbac(c: Checks, tag: str, docs: list[dict[str, Any]]) -> None:
    """Least privilege: no Secret access at cluster scope; Secrets only in tenant namespaces,
    by name, through ClusterRoles the operator binds per tenant namespace."""
    operator = rules_of(docs, "ClusterRole", "-operator")
    c.check(f"{tag}: operator ClusterRole has no wildcards",
            all("*" not in r.get("verbs", []) + r.get("resources", []) + r.get("apiGroups", [])
                for r in operator))
    c.check(f"{tag}: leases are not granted cluster-wide",
            not any("leases" in r.get("resources", []) for r in operator))
    roles = {d["metadata"]["name"]: d.get("rules", []) for d in docs if d["kind"] == "ClusterRole"}
    bound = {d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"}
    for name in sorted(bound):
        secrets = [r for r in roles.get(name, []) if "secrets" in r.get("resources", [])]
        c.check(f"{tag}: ClusterRole {name} (bound cluster-wide) grants no Secret access",
                not secrets, str(secrets))
    tenant_roles = sorted(n for n in roles if n.endswith("-tenant"))
    c.check(f"{tag}: tenant-namespace ClusterRoles exist ({tenant_roles})", bool(tenant_roles))
    for name in tenant_roles:
        c.check(f"{tag}: {name} is never bound cluster-wide", name not in bound)
        verbs = {v for r in roles[name] for v in r.get("verbs", [])}
        c.check(f"{tag}: {name} cannot list or watch", not verbs & {"list", "watch", "*"},
                str(verbs))
        for rule in roles[name]:
            c.check(f"{tag}: {name} rule {rule['verbs']} is by name (or create)",
                    rule["verbs"] == ["create"] or bool(rule.get("resourceNames"))
                    or name.endswith("-operator-tenant") and rule["verbs"] == ["get"])
    binders = [r for r in operator if "clusterroles" in r.get("resources", [])]
    c.check(f"{tag}: operator may bind exactly the tenant-namespace ClusterRoles",
            len(binders) == 1 and binders[0]["verbs"] == ["bind"]
            and sorted(binders[0].get("resourceNames", [])) == tenant_roles)
    operator_env = {}
    for doc in (d for d in docs if d["kind"] == "Deployment"
                and d["metadata"]["name"].endswith("-operator")):
        operator_env = {e["name"]: e.get("value") for e in containers(doc)[0].get("env", [])}
    grants = json.loads(operator_env.get("SWITCHBOARD_TENANT_ROLE_BINDINGS") or "[]")
    c.check(f"{tag}: operator binds each tenant-namespace ClusterRole",
            sorted(g["clusterRole"] for g in grants) == tenant_roles, str(grants))
    for verb, label in (("view", "get/list/watch"), ("edit", "create/update/patch/delete")):
        aggregated = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"].get(
            "labels", {}).get(f"rbac.authorization.k8s.io/aggregate-to-{verb}") == "true"]
        resources = {res for d in aggregated for r in d.get("rules", [])
                     for res in r.get("resources", [])}
        c.check(f"{tag}: aggregated to {verb} ({label}): phonenumbers and campaigns",
                {"phonenumbers", "campaigns"} <= resources, str(resources))


def check_images(c: Checks, tag: str, docs: list[dict[str, Any]], values: dict[str, Any]) -> None:
    """`<component>.digest` pins the image: `<registry>/<repository>:<tag>@<digest>`."""
    for doc in (d for d in docs if d["kind"] == "Deployment"):
        component = doc["metadata"]["name"].rsplit("-", 1)[-1]
        image = containers(doc)[0]["image"]
        digest = values.get(component, {}).get("digest")
        c.check(f"{tag}: {component} image {'pinned to its digest' if digest else 'by tag'}",
                image.endswith(f"@{digest}") if digest else "@" not in image, image)
        if component == "operator":
            env = {e["name"]: e.get("value") for e in containers(doc)[0].get("env", [])}
            runtime = env.get("SWITCHBOARD_RUNTIME_IMAGE", "")
            digest = values.get("tenants", {}).get("runtimeImage", {}).get("digest")
            c.check(f"{tag}: runtime image {'pinned to its digest' if digest else 'by tag'}",
                    runtime.endswith(f"@{digest}") if digest else "@" not in runtime, runtime)


def check_monitoring(c: Checks, tag: str, docs: list[dict[str, Any]], chart_dir: str) -> None:
    for doc in (d for d in docs if d["kind"] == "Ingress"):
        paths = [p["path"] for r in doc["spec"]["rules"] for p in r["http"]["paths"]]
        c.check(f"{tag}: Ingress publishes only the API, webhooks and media ({paths})",
                all(p in ("/api", "/media") or p.startswith(("/api/", "/media/")) for p in paths))
    for doc in (d for d in docs if d["kind"] == "Deployment"):
        ctr = containers(doc)[0]
        ports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}
        env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
        c.check(f"{tag}: {doc['metadata']['name']} serves metrics on a port of its own",
                "metrics" in ports and ports["metrics"] != ports.get("http")
                and env.get("SWITCHBOARD_METRICS_LISTEN") == f"0.0.0.0:{ports['metrics']}")
    for doc in (d for d in docs if d["kind"] == "Service"):
        targets = [p.get("targetPort") for p in doc["spec"]["ports"]]
        scraped = doc["metadata"].get("labels", {}).get("switchboard.dev/metrics") == "true"
        c.check(f"{tag}: Service {doc['metadata']['name']} "
                f"{'is metrics only' if scraped else 'exposes no metrics port'}",
                targets == ["metrics"] if scraped else "metrics" not in targets)
    for doc in (d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor")):
        endpoints = doc["spec"].get("endpoints", doc["spec"].get("podMetricsEndpoints", []))
        c.check(f"{tag}: {doc['kind']} {doc['metadata']['name']} scrapes the metrics port",
                bool(endpoints) and all(e["port"] == "metrics" for e in endpoints))
    files = pathlib.Path(chart_dir, "files")
    crds = {d["metadata"]["name"]: d for f in sorted((files / "crds").glob("*.yaml"))
            for d in yaml.safe_load_all(f.read_text())}
    rendered = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    if rendered:
        c.check(f"{tag}: CRD templates render files/crds/ unchanged",
                sorted(rendered) == sorted(crds)
                and all(rendered[n]["spec"] == crds[n]["spec"] for n in crds))
    for doc in (d for d in docs if d["kind"] == "PrometheusRule"):
        c.check(f"{tag}: PrometheusRule is files/prometheus-rules.yaml",
                doc["spec"] == yaml.safe_load((files / "prometheus-rules.yaml").read_text()))
    for doc in (d for d in docs if d["kind"] == "ConfigMap"
                and "switchboard.json" in d.get("data", {})):
        c.check(f"{tag}: dashboard ConfigMap is files/grafana-dashboard.json",
                json.loads(doc["data"]["switchboard.json"])
                == json.loads((files / "grafana-dashboard.json").read_text()))


def check_long_release_name(c: Checks, chart_dir: str) -> None:
    """Helm allows 53-character release names; every name must still be valid."""
    release = "a-very-long-release-name-for-switchboard-in-staging-x"[:53]
    docs = render(chart_dir, {"publicUrl": "https://voice.example.com",
                              "serviceMonitor": {"enabled": True}}, release=release)
    too_long = [d["metadata"]["name"] for d in docs
                if len(d["metadata"]["name"]) > (63 if d["kind"] == "Service" else 253)]
    c.check(f"{len(release)}-character release name gives valid object names", not too_long,
            f"too long: {too_long}")
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    c.check("object names stay unique after truncation", len(names) == len(set(names)))


def check_rejected(c: Checks, chart_dir: str) -> None:
    url = {"publicUrl": "https://voice.example.com"}
    bad = {
        "unknown key": {**url, "gateway": {"replicas": 3}},
        "inlined secret value": {**url, "secrets": {"jwt": {"name": "j", "key": "k", "value": "x"}}},
        "unknown log format": {**url, "logFormat": "xml"},
        "non-http publicUrl": {"publicUrl": "ftp://voice.example.com"},
        "missing publicUrl": {},
        "two operators without leader election": {**url, "operator": {"leaderElection": False}},
        "Ingress path / (would publish /internal/v1)": {**url, "gateway": {"ingress": {
            "enabled": True, "paths": ["/"]}}},
        "Ingress path /internal": {**url, "gateway": {"ingress": {
            "enabled": True, "paths": ["/api", "/internal/v1"]}}},
        "HPA min above max": {**url, "gateway": {"autoscaling": {
            "enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
    }
    for label, values in bad.items():
        try:
            render(chart_dir, values)
            c.check(f"rejects values: {label}", False, "rendered without error")
        except Exception:  # noqa: BLE001 - any Helm error is the expected outcome
            c.check(f"rejects values: {label}", True)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    chart_dir, out_dir = argv[1], pathlib.Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    c = Checks()
    lint = helm.lint(chart_dir, values={"publicUrl": "https://voice.example.com"}, strict=True)
    errors = [m for m in lint["messages"] if m["severity"] >= 2] + [
        {"error": e} for e in lint["errors"]]
    c.check("helm lint --strict", not errors, str(errors))
    for values_file in sorted(pathlib.Path(chart_dir, "ci").glob("*-values.yaml")):
        tag = values_file.stem
        values = yaml.safe_load(values_file.read_text()) or {}
        try:
            docs = render(chart_dir, values)
        except Exception as e:  # noqa: BLE001 - report the Helm error and go on
            c.check(f"{tag}: renders", False, str(e))
            continue
        c.check(f"{tag}: renders {len(docs)} objects", bool(docs))
        (out_dir / f"{tag}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
        check_workloads(c, tag, docs)
        check_rbac(c, tag, docs)
        check_monitoring(c, tag, docs, chart_dir)
        check_images(c, tag, docs, values)
    check_long_release_name(c, chart_dir)
    check_rejected(c, chart_dir)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
