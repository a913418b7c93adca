#!/usr/bin/env python3
"""Turn a Kubernetes CustomResourceDefinition into standalone, strict JSON Schemas.

One file per CRD version, named <kind-lowercase>-<group>-<version>.json, that validates a
whole manifest offline: apiVersion and kind are constants, metadata is an ObjectMeta, and
every object that lists `properties` rejects unknown keys (like `kubernetes-validate
--strict`) unless the CRD keeps it open with x-kubernetes-preserve-unknown-fields.

    .venv/bin/python scripts/crd-to-schema.py CRD.yaml --source-url URL [--source-version V]
        [--version v1] [--out-dir src/opslabs/blocks/schemas]

A resource without a CRD (Kustomize's Kustomization) comes from an upstream JSON Schema
instead; --json-schema wraps it so apiVersion and kind are pinned the same way:

    .venv/bin/python scripts/crd-to-schema.py kustomization.json --json-schema \
        --api-version kustomize.config.k8s.io/v1beta1 --kind Kustomization \
        --source-url URL --source-version COMMIT

Upstream descriptions are dropped (they make up most of a CRD's size); --keep-descriptions keeps them.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "opslabs" / "blocks" / "schemas"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
GENERATOR = "scripts/crd-to-schema.py"

# Keywords whose value is a map of name -> schema, a single schema, or a list of schemas.
SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
SCHEMA_SINGLE = ("items", "additionalProperties", "not", "contains", "propertyNames")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")

# ObjectMeta fields a manifest may set (k8s.io/apimachinery ObjectMeta). Kept strict so that a
# misspelled `metadata.lables` is caught, as the API server's strict field validation would.
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "selfLink": {"type": "string"},
    },
    "additionalProperties": False,
}


class ConversionError(Exception):
    pass


def convert_node(node: Any, keep_descriptions: bool) -> Any:
    """Translate one OpenAPI v3 (structural) schema node into JSON Schema, recursively."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: convert_node(sub, keep_descriptions) for name, sub in value.items()}
        elif key in SCHEMA_SINGLE and isinstance(value, dict):
            out[key] = convert_node(value, keep_descriptions)
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [convert_node(sub, keep_descriptions) for sub in value]
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue  # handled below or not expressible (CEL rules, list/map types)
        elif key == "description" and not keep_descriptions:
            continue
        else:
            out[key] = copy.deepcopy(value)

    if node.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    open_object = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in out and "additionalProperties" not in out and not open_object:
        out["additionalProperties"] = False
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def manifest_schema(
    body: dict[str, Any], api_version: str, kind: str, title: str, comment: str
) -> dict[str, Any]:
    """Pin apiVersion/kind, make metadata an ObjectMeta, and require the three of them."""
    schema: dict[str, Any] = {"$schema": DRAFT_2020_12, "$comment": comment, "title": title}
    schema.update(body)
    props = dict(schema.get("properties", {}))
    props["apiVersion"] = {"type": "string", "const": api_version}
    props["kind"] = {"type": "string", "const": kind}
    props["metadata"] = copy.deepcopy(OBJECT_META)
    schema["properties"] = props
    schema["type"] = "object"
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    schema["additionalProperties"] = False
    return schema


def crd_versions(crd: dict[str, Any], wanted: list[str] | None) -> list[dict[str, Any]]:
    versions = crd.get("spec", {}).get("versions") or []
    if not versions:
        raise ConversionError("CRD has no spec.versions")
    if wanted:
        by_name = {v.get("name"): v for v in versions}
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise ConversionError(f"CRD has no version {', '.join(missing)}; it has {', '.join(by_name)}")
        return [by_name[w] for w in wanted]
    return [v for v in versions if v.get("storage")]


def convert_crd(
    crd: dict[str, Any], wanted: list[str] | None, source: str, keep_descriptions: bool
) -> dict[str, dict[str, Any]]:
    if crd.get("kind") != "CustomResourceDefinition":
        raise ConversionError(f"expected kind CustomResourceDefinition, got {crd.get('kind')!r}")
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    results: dict[str, dict[str, Any]] = {}
    for version in crd_versions(crd, wanted):
        name = version["name"]
        openapi = (version.get("schema") or {}).get("openAPIV3Schema")
        if not openapi:
            raise ConversionError(f"version {name} has no schema.openAPIV3Schema")
        body = convert_node(openapi, keep_descriptions)
        body.pop("description", None)  # the top-level prose is replaced by title/$comment
        comment = f"Generated by {GENERATOR} from {source}; do not edit by hand."
        schema = manifest_schema(body, f"{group}/{name}", kind, f"{kind} ({group}/{name})", comment)
        results[f"{kind.lower()}-{group}-{name}.json"] = schema
    return results


def wrap_json_schema(upstream: dict[str, Any], api_version: str, kind: str, source: str) -> dict[str, Any]:
    """Pin apiVersion/kind on an upstream JSON Schema without touching its own rules.

    The upstream root is usually a bare $ref, next to which draft-07 ignores other keywords,
    so the pins go into an allOf beside it.
    """
    schema = copy.deepcopy(upstream)
    # The result is no longer the upstream document, so it must not claim the upstream $id.
    schema.pop("$id", None)
    root = {k: schema.pop(k) for k in list(schema) if k not in ("$schema", "definitions", "$defs")}
    pins = {
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"type": "string", "const": api_version},
            "kind": {"type": "string", "const": kind},
        },
    }
    header = {
        "$schema": schema.pop("$schema", DRAFT_2020_12),
        "$comment": f"Generated by {GENERATOR} from {source}; do not edit by hand.",
        "title": f"{kind} ({api_version})",
        "allOf": [root, pins],
    }
    return {**header, **schema}


def self_check(schema: dict[str, Any], name: str) -> None:
    """Fail now, not in the checker, if the schema is invalid or a pattern is not a Python regex."""
    try:
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for
    except ImportError:  # the conversion itself does not need jsonschema
        print("note: jsonschema not installed, schema not self-checked", file=sys.stderr)
        return
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise ConversionError(f"{name}: invalid JSON Schema at {where}: {exc.message}") from None

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConversionError(f"{name}: {path}: pattern {pattern!r} is not a Python regex: {exc}")
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(schema, "#")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="CRD YAML file (or upstream JSON Schema with --json-schema)")
    parser.add_argument("--source-url", required=True, help="where the input came from (pinned to a tag or commit)")
    parser.add_argument("--source-version", help="upstream release/commit; default: the CRD's bundle-version annotation")
    parser.add_argument("--version", action="append", dest="versions", help="CRD version to convert (repeatable; default: the storage version)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep-descriptions", action="store_true")
    parser.add_argument("--json-schema", action="store_true", help="input is a JSON Schema, not a CRD")
    parser.add_argument("--api-version", help="with --json-schema: the apiVersion to pin")
    parser.add_argument("--kind", help="with --json-schema: the kind to pin")
    args = parser.parse_args(argv)

    try:
        raw = args.input.read_bytes()
    except OSError as exc:
        print(f"error: {args.input}: {exc.strerror}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(raw).hexdigest()
    try:
        if args.json_schema:
            if not (args.api_version and args.kind and args.source_version):
                raise ConversionError("--json-schema needs --api-version, --kind and --source-version")
            source = f"{args.source_url} ({args.source_version}, sha256 {digest})"
            upstream = json.loads(raw)
            group, _, version = args.api_version.rpartition("/")
            name = f"{args.kind.lower()}-{group}-{version}.json"
            results = {name: wrap_json_schema(upstream, args.api_version, args.kind, source)}
        else:
            docs = [d for d in yaml.safe_load_all(raw) if d]
            crds = [d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
            if len(crds) != 1:
                raise ConversionError(f"expected one CustomResourceDefinition, found {len(crds)}")
            crd = crds[0]
            version = args.source_version or (crd.get("metadata", {}).get("annotations") or {}).get(
                "gateway.networking.k8s.io/bundle-version"
            )
            if not version:
                raise ConversionError("no --source-version and no bundle-version annotation in the CRD")
            source = f"{args.source_url} ({version}, sha256 {digest})"
            results = convert_crd(crd, args.versions, source, args.keep_descriptions)
        for name, schema in results.items():
            self_check(schema, name)
    except (ConversionError, yaml.YAMLError, json.JSONDecodeError, KeyError) as exc:
        print(f"error: {args.input}: {exc}", file=sys.stderr)
        return 1

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, schema in results.items():
        path = args.out_dir / name
        path.write_text(json.dumps(schema, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path}  {path.stat().st_size} bytes  (input sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
