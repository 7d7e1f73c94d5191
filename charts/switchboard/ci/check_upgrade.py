#!/usr/bin/env python3
"""Upgrade test: the current chart over the objects the previous chart version rendered.

ci/upgrade/<version>-<name>.yaml holds what chart <version> rendered with its
ci/<name>-values.yaml (saved beside it as <version>-<name>-values.yaml), plus the CRDs it
installed from crds/. For each, this renders the current chart with the same values and
checks that `helm upgrade` from there works without hand steps and loses nothing:

1. the previous values are still accepted (values.schema.json),
2. every previous object is rendered again (same kind and name), unless listed in REMOVED,
3. no immutable field changes: Deployment and PodDisruptionBudget selectors, the roleRef of
   (Cluster)RoleBindings (Kubernetes rejects such an update; Helm would fail mid-upgrade),
4. the CRDs are now templates (so Helm upgrades them) annotated
   `helm.sh/resource-policy: keep`, with the same group, scope and names; every previously
   served version still served, the storage version unchanged, every property of the
   previous schema still present, and no property newly required where one existed: objects
   stored under the previous CRDs stay valid.

Usage: check_upgrade.py CHART_DIR
Prints one line per check and a closing `N passed, N failed` line; exit status 1 on failure.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import yaml

from render_chart import Checks, render

# Objects the current chart no longer renders on purpose: (kind, name) → why.
REMOVED: dict[tuple[str, str], str] = {}


def key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def properties(schema: dict[str, Any], path: str = "") -> dict[str, list[str]]:
    """Every property path of an OpenAPI schema → the `required` list at that level."""
    found: dict[str, list[str]] = {path: schema.get("required", [])}
    for name, sub in schema.get("properties", {}).items():
        found.update(properties(sub, f"{path}.{name}"))
    if "items" in schema:
        found.update(properties(schema["items"], f"{path}[]"))
    return found


def check_crd(c: Checks, tag: str, old: dict[str, Any], new: dict[str, Any] | None) -> None:
    name = old["metadata"]["name"]
    c.check(f"{tag}: CRD {name} is rendered by the chart (upgraded with it)", new is not None)
    if new is None:
        return
    c.check(f"{tag}: CRD {name} is kept by Helm (resource-policy keep)",
            new["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep")
    for field in ("group", "scope", "names"):
        c.check(f"{tag}: CRD {name} keeps its {field}", old["spec"][field] == new["spec"][field])
    old_versions = {v["name"]: v for v in old["spec"]["versions"]}
    new_versions = {v["name"]: v for v in new["spec"]["versions"]}
    storage = lambda vs: [n for n, v in vs.items() if v.get("storage")]  # noqa: E731
    c.check(f"{tag}: CRD {name} keeps its storage version", storage(old_versions) == storage(new_versions))
    for version, old_v in old_versions.items():
        new_v = new_versions.get(version)
        c.check(f"{tag}: CRD {name} {version} is still served",
                bool(old_v.get("served")) <= bool(new_v and new_v.get("served")))
        if not new_v:
            continue
        old_props = properties(old_v["schema"]["openAPIV3Schema"])
        new_props = properties(new_v["schema"]["openAPIV3Schema"])
        gone = sorted(set(old_props) - set(new_props))
        c.check(f"{tag}: CRD {name} {version} keeps every property", not gone, str(gone))
        newly_required = sorted(f"{p}.{r}" for p, req in new_props.items() if p in old_props
                                for r in set(req) - set(old_props[p]))
        c.check(f"{tag}: CRD {name} {version} requires nothing new of stored objects",
                not newly_required, str(newly_required))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    chart_dir = argv[1]
    c = Checks()
    upgrade_dir = pathlib.Path(chart_dir, "ci", "upgrade")
    for previous_file in sorted(upgrade_dir.glob("*.yaml")):
        if previous_file.name.endswith("-values.yaml"):
            continue
        tag = f"upgrade from {previous_file.stem}"
        values_file = previous_file.with_name(f"{previous_file.stem}-values.yaml")
        values = yaml.safe_load(values_file.read_text()) or {}
        previous = [d for d in yaml.safe_load_all(previous_file.read_text()) if isinstance(d, dict)]
        try:
            current = render(chart_dir, values)
        except Exception as e:  # noqa: BLE001 - report the Helm error and go on
            c.check(f"{tag}: previous values accepted and rendered", False, str(e))
            continue
        c.check(f"{tag}: previous values accepted and rendered", True)
        now = {key(d): d for d in current}
        for old in previous:
            new = now.get(key(old))
            kind, name = key(old)
            if kind == "CustomResourceDefinition":
                check_crd(c, tag, old, new)
                continue
            c.check(f"{tag}: {kind} {name} still rendered", new is not None or key(old) in REMOVED,
                    "removed without a reason in REMOVED")
            if new is None:
                continue
            if kind in ("Deployment", "PodDisruptionBudget"):
                c.check(f"{tag}: {kind} {name} keeps its (immutable) selector",
                        old["spec"].get("selector") == new["spec"].get("selector"))
            if kind in ("RoleBinding", "ClusterRoleBinding"):
                c.check(f"{tag}: {kind} {name} keeps its (immutable) roleRef",
                        old["roleRef"] == new["roleRef"])
    c.check("previous chart versions to upgrade from are present", c.passed > 0)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
