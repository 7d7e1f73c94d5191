#!/usr/bin/env python3
"""Validate Switchboard custom resources against the generated CRD schemas.

kubernetes-validate checks built-in kinds only; this checks Tenant, PhoneNumber and
Campaign documents the way the API server would at admission:

1. structural defaults from the schema are applied (as the API server does before
   validating),
2. the OpenAPI v3 schema is checked with JSON Schema, rejecting unknown fields
   (kubectl's --validate=strict),
3. the CEL rules (x-kubernetes-validations) are evaluated, except transition rules
   that need `oldSelf` (they only apply to updates),
4. cluster-scoped kinds must not carry a namespace, namespaced kinds must.

Before the real files it runs a self-test: documents that are known to be invalid must be
rejected, so that a validator that silently accepts everything fails loudly.

Usage: validate_crs.py CRD_DIR FILE...
Exit status 0 when every custom resource is valid; 1 otherwise.
"""

from __future__ import annotations

import copy
import pathlib
import sys
from typing import Any, Iterator

import celpy
import jsonschema
import yaml


def load_docs(path: pathlib.Path) -> Iterator[dict[str, Any]]:
    with path.open() as f:
        for doc in yaml.safe_load_all(f):
            if isinstance(doc, dict):
                yield doc


class CrdIndex:
    """The served schemas of the CRDs in a directory, by (apiVersion, kind)."""

    def __init__(self, crd_dir: pathlib.Path):
        self.entries: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for path in sorted(crd_dir.glob("*.yaml")):
            for crd in load_docs(path):
                if crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    if not version.get("served", False):
                        continue
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schema = version["schema"]["openAPIV3Schema"]
                    self.entries[key] = (schema, spec["scope"])
        if not self.entries:
            raise SystemExit(f"no CustomResourceDefinitions found in {crd_dir}")

    def lookup(self, doc: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        return self.entries.get((doc.get("apiVersion", ""), doc.get("kind", "")))


def to_json_schema(node: dict[str, Any]) -> dict[str, Any]:
    """Translate a Kubernetes structural schema into JSON Schema (draft 2020-12)."""
    out: dict[str, Any] = {}
    for key in ("type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength",
                "minItems", "maxItems", "required", "format"):
        if key in node:
            out[key] = node[key]
    if out.get("format") not in (None, "date-time"):
        # int32/int64/double/byte are Kubernetes formats with no JSON Schema meaning.
        out.pop("format")
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(node["additionalProperties"])
    elif "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        # The API server prunes unknown fields; strict clients reject them. Be strict.
        out["additionalProperties"] = False
    if "items" in node:
        out["items"] = to_json_schema(node["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            out[key] = [to_json_schema(s) for s in node[key]]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Fill absent object properties that declare a default, recursively."""
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                value[name] = apply_defaults(value[name], prop)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in schema.get("properties", {}):
                    value[name] = apply_defaults(value[name], extra)
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def cel_errors(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """Evaluate every x-kubernetes-validations rule that applies to `value`."""
    env = celpy.Environment()
    for rule in schema.get("x-kubernetes-validations", []):
        expression = rule["rule"]
        if "oldSelf" in expression:
            continue  # transition rule: only meaningful on update
        program = env.program(env.compile(expression))
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and str(result) != "True":
            yield f"{path or '<root>'}: {rule.get('message', expression)} (rule: {expression})"
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                yield from cel_errors(value[name], prop, f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from cel_errors(item, schema["items"], f"{path}[{i}]")


def validate_cr(doc: dict[str, Any], schema: dict[str, Any], scope: str) -> list[str]:
    """All problems of one custom resource (empty when valid)."""
    errors: list[str] = []
    metadata = doc.get("metadata") or {}
    if not metadata.get("name"):
        errors.append("metadata.name is missing")
    has_namespace = bool(metadata.get("namespace"))
    if scope == "Cluster" and has_namespace:
        errors.append("cluster-scoped kind must not set metadata.namespace")
    if scope == "Namespaced" and not has_namespace:
        errors.append("namespaced kind should set metadata.namespace")

    defaulted = apply_defaults(copy.deepcopy(doc), schema)
    body = {k: v for k, v in defaulted.items() if k not in ("apiVersion", "kind", "metadata")}
    body_schema = to_json_schema(
        {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items()
                                  if k not in ("apiVersion", "kind", "metadata")}})
    validator = jsonschema.Draft202012Validator(body_schema)
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "<root>"
        errors.append(f"{where}: {error.message}")
    if not errors:
        errors.extend(cel_errors(defaulted, schema, ""))
    return errors


def self_test(index: CrdIndex) -> list[str]:
    """Documents that must be rejected; returns the ones that were wrongly accepted."""
    bad = {
        "unknown field": {"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
                          "metadata": {"name": "t"}, "spec": {"displayName": "T", "colour": "red"}},
        "unknown plan": {"apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
                         "metadata": {"name": "t"}, "spec": {"displayName": "T", "plan": "gold"}},
        "tenant name too long (CEL)": {
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "a" * 51}, "spec": {"displayName": "T"}},
        "areaCode and number (CEL)": {
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
            "metadata": {"name": "n", "namespace": "tenant-t"},
            "spec": {"areaCode": "415", "number": "+14155550100"}},
        "number not E.164": {
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "PhoneNumber",
            "metadata": {"name": "n", "namespace": "tenant-t"}, "spec": {"number": "0415555"}},
        "no contacts source (CEL)": {
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Campaign",
            "metadata": {"name": "c", "namespace": "tenant-t"},
            "spec": {"fromNumber": "n", "contacts": {}}},
        "namespace on a cluster-scoped kind": {
            "apiVersion": "voice.switchboard.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "t", "namespace": "default"}, "spec": {"displayName": "T"}},
    }
    accepted = []
    for name, doc in bad.items():
        found = index.lookup(doc)
        if found is None or not validate_cr(doc, *found):
            accepted.append(name)
    return accepted


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    index = CrdIndex(pathlib.Path(argv[1]))
    wrongly_accepted = self_test(index)
    if wrongly_accepted:
        print(f"FAIL self-test: invalid documents accepted: {', '.join(wrongly_accepted)}")
        return 1
    checked = failed = 0
    for name in argv[2:]:
        for doc in load_docs(pathlib.Path(name)):
            found = index.lookup(doc)
            if found is None:
                continue
            checked += 1
            label = f"{name}: {doc['kind']}/{(doc.get('metadata') or {}).get('name')}"
            errors = validate_cr(doc, *found)
            if errors:
                failed += 1
                for error in errors:
                    print(f"FAIL {label}: {error}")
            else:
                print(f"ok   {label}")
    print(f"{checked - failed} passed, {failed} failed")
    return 1 if failed or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
