#!/usr/bin/env bash
# Validate every plain manifest of the repository without a cluster:
#   1. the CRDs (charts/switchboard/files/crds/, which templates/crds.yaml installs and
#      upgrades) and examples/ with kubernetes-validate --strict,
#   2. the custom resources in examples/ against the generated CRD schemas (validate_crs.py),
#   3. the Helm chart rendered with each ci/*-values.yaml by Helm's own engine, its
#      invariants (render_chart.py), and the rendered objects with kubernetes-validate --strict,
#   4. the upgrade from the previous chart version's rendered objects (check_upgrade.py),
#   5. the monitoring files (files/prometheus-rules.yaml, files/grafana-dashboard.json) with
#      promtool (validate_monitoring.py),
#   6. docker-compose.yml against the Compose specification and .github/workflows/*.yml
#      against the GitHub workflow schema (check-jsonschema's bundled schemas, offline),
#   7. when kubectl is installed, that examples/ builds with kustomize and that the Flux
#      example splits it into the Tenant and the objects of its namespace.
#
# promtool comes from Debian's `prometheus` package, unpacked under target/ (not installed:
# no Prometheus service is set up); `promtool` on PATH is used when there is one.
#
# Tools come from PyPI into a virtualenv under target/ (pinned; reused between runs):
# kubernetes-validate (Kubernetes JSON schemas), helm-python-sdk (Helm's Go SDK, so no
# helm binary download), cel-python (CEL rules of the CRDs), check-jsonschema (the Compose
# specification and GitHub workflow schemas it ships).
#
# Usage: charts/switchboard/ci/validate.sh        (from anywhere; needs python3 >= 3.10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
CHART="$ROOT/charts/switchboard"
CI_DIR="$CHART/ci"
VENV="${SWITCHBOARD_VALIDATE_VENV:-$ROOT/target/manifest-validate-venv}"
# Kubernetes version the manifests are validated against (k8s-openapi's feature v1_33).
KUBE_VERSION="${SWITCHBOARD_KUBE_VERSION:-1.33.0}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
step() { printf '\n== %s\n' "$*"; }
record() { if [ "$1" -eq 0 ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); echo "FAIL: $2"; fi; }

step "tools"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  'kubernetes-validate==1.37.0' 'helm-python-sdk==0.2.2' 'cel-python==0.5.0' 'PyYAML>=6' \
  'check-jsonschema==0.39.0'
PY="$VENV/bin/python"
KV="$VENV/bin/kubernetes-validate"
"$KV" --version

step "CRDs"
CRD_DIR="$CHART/files/crds"
if ! compgen -G "$CRD_DIR/*.yaml" > /dev/null; then
  # The operator's issue commits the generated CRDs; until then, generate them here.
  echo "no CRDs committed under $CRD_DIR; generating them from the Rust types"
  CRD_DIR="$WORK/crds"
  mkdir -p "$CRD_DIR"
  (cd "$ROOT" && cargo run -q -p switchboard-operator -- crds) > "$CRD_DIR/all.yaml"
fi
set +e
"$KV" --strict --quiet -k "$KUBE_VERSION" "$CRD_DIR"/*.yaml
record $? "CRDs are not valid CustomResourceDefinitions"
set -e

step "examples: built-in kinds (custom kinds are checked in the next step)"
set +e
"$KV" --strict --quiet --no-warn -k "$KUBE_VERSION" "$ROOT"/examples/*.yaml
record $? "examples contain invalid Kubernetes objects"

step "examples: custom resources against the CRD schemas"
"$PY" "$CI_DIR/validate_crs.py" "$CRD_DIR" "$ROOT"/examples/*.yaml
record $? "examples do not match the CRD schemas"

step "operator: objects rendered for examples/tenant.yaml (switchboard-operator render)"
(cd "$ROOT" && cargo run -q -p switchboard-operator -- render -f examples/tenant.yaml) > "$WORK/tenant-stack.yaml"
record $? "switchboard-operator render failed"
"$KV" --strict --quiet --no-warn -k "$KUBE_VERSION" "$WORK/tenant-stack.yaml"
record $? "switchboard-operator render output contains invalid Kubernetes objects"

step "chart: render and check invariants"
"$PY" "$CI_DIR/render_chart.py" "$CHART" "$WORK/rendered"
record $? "chart rendering or invariants"

step "chart: upgrade from the previous chart version's rendered objects"
(cd "$CI_DIR" && "$PY" check_upgrade.py "$CHART")
record $? "upgrade from the previous chart version"

step "chart: rendered objects"
"$KV" --strict --quiet --no-warn -k "$KUBE_VERSION" "$WORK"/rendered/*.yaml
record $? "rendered chart contains invalid Kubernetes objects"
set -e

step "monitoring: alert rules and dashboard (promtool)"
PROMTOOL="$(command -v promtool || true)"
if [ -z "$PROMTOOL" ]; then
  PROMTOOL_DIR="$ROOT/target/promtool"
  PROMTOOL="$PROMTOOL_DIR/usr/bin/promtool"
  if [ ! -x "$PROMTOOL" ]; then
    (
      cd "$WORK"
      apt-get download prometheus > /dev/null 2>&1 \
        || { apt-get update -qq && apt-get download prometheus > /dev/null 2>&1; }
      dpkg -x prometheus_*.deb "$PROMTOOL_DIR"
    )
  fi
fi
"$PROMTOOL" --version | head -n1
set +e
"$PY" "$CI_DIR/validate_monitoring.py" "$CHART" "$PROMTOOL" "$WORK/monitoring"
record $? "monitoring rules or dashboard"
set -e

step "shipping: docker-compose.yml and the release workflow (schemas bundled with check-jsonschema)"
CJS="$VENV/bin/check-jsonschema"
set +e
"$CJS" --builtin-schema vendor.compose-spec "$ROOT/docker-compose.yml"
record $? "docker-compose.yml does not follow the Compose specification"
"$CJS" --builtin-schema vendor.github-workflows "$ROOT"/.github/workflows/*.yml
record $? "a GitHub workflow does not follow the workflow schema"
set -e

step "examples: kustomize builds"
if command -v kubectl > /dev/null 2>&1; then
  set +e
  "$PY" "$CI_DIR/check_kustomize.py" "$ROOT/examples"
  record $? "kustomize build of examples/"
  set -e
else
  echo "kubectl not installed: skipped"
fi

printf '\nmanifests: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" -eq 0 ]
