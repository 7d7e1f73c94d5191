#!/usr/bin/env python3
"""Check that examples/ builds with kustomize and that the GitOps examples split it right.

* `kubectl kustomize examples/` must build and contain every object of the example files.
* The two Flux Kustomizations in flux-kustomization.yaml are replayed as kustomize overlays
  with their `patches`: the first must yield exactly the cluster-scoped Tenants, the second
  exactly the rest, so each object has one owner and the namespace exists before its objects.
* The two Argo CD Applications' `directory.include` globs must cover the same split.

Usage: check_kustomize.py EXAMPLES_DIR   (needs kubectl on PATH)
"""

from __future__ import annotations

import fnmatch
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import yaml


def ids(docs: list[dict[str, Any]]) -> set[str]:
    return {f"{d['kind']}/{d['metadata'].get('namespace', '')}/{d['metadata']['name']}"
            for d in docs}


def build(path: pathlib.Path) -> list[dict[str, Any]]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if isinstance(d, dict)]


def expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end():]
    return [p for alt in match.group(1).split(",") for p in expand_braces(head + alt + tail)]


def main(argv: list[str]) -> int:
    examples = pathlib.Path(argv[1]).resolve()
    failures: list[str] = []
    kustomization = yaml.safe_load((examples / "kustomization.yaml").read_text())
    files: dict[str, list[dict[str, Any]]] = {
        name: [d for d in yaml.safe_load_all((examples / name).read_text()) if isinstance(d, dict)]
        for name in kustomization["resources"]
    }
    expected = set().union(*(ids(docs) for docs in files.values()))
    everything = build(examples)
    if ids(everything) != expected:
        failures.append(f"kustomize build differs from the files: {ids(everything) ^ expected}")
    tenants = {i for i in expected if i.startswith("Tenant/")}
    rest = expected - tenants

    flux = [d for d in yaml.safe_load_all((examples / "flux-kustomization.yaml").read_text())
            if isinstance(d, dict) and d["kind"] == "Kustomization"]
    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(tmp, "base")
        shutil.copytree(examples, base)
        got = []
        for i, ks in enumerate(flux):
            overlay = pathlib.Path(tmp, f"overlay{i}")
            overlay.mkdir()
            (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": ["../base"], "patches": ks["spec"].get("patches", [])}))
            got.append(ids(build(overlay)))
    if got != [tenants, rest]:
        failures.append(f"Flux split is {got}, expected [{tenants}, {rest}]")
    if not flux[1]["spec"].get("dependsOn"):
        failures.append("the second Flux Kustomization must depend on the first")

    apps = [d for d in yaml.safe_load_all((examples / "argocd-application.yaml").read_text())
            if isinstance(d, dict) and d["kind"] == "Application"]
    argo = []
    for app in apps:
        patterns = expand_braces(app["spec"]["source"]["directory"]["include"])
        chosen = [n for n in files if any(fnmatch.fnmatch(n, p) for p in patterns)]
        argo.append(set().union(*(ids(files[n]) for n in chosen)) if chosen else set())
    if argo != [tenants, rest]:
        failures.append(f"Argo CD split is {argo}, expected [{tenants}, {rest}]")

    for failure in failures:
        print(f"FAIL {failure}")
    passed = 4 - len(failures)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
