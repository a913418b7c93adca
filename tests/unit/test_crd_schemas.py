"""The vendored custom-resource schemas accept the knowledge base's manifests and reject typos.

No network and no Docker: schemas are read from the package, examples are inline copies of the
guides' code blocks (plus one scan of the real guides), and the converter runs on a tiny CRD.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from jsonschema.validators import validator_for

SCHEMAS = files("opslabs") / "blocks" / "schemas"
APPLICATION = "application-argoproj.io-v1alpha1.json"
HTTPROUTE = "httproute-gateway.networking.k8s.io-v1.json"
GATEWAY = "gateway-gateway.networking.k8s.io-v1.json"
KUSTOMIZATION = "kustomization-kustomize.config.k8s.io-v1beta1.json"
ALL = (APPLICATION, HTTPROUTE, GATEWAY, KUSTOMIZATION)


@functools.cache  # parsing and meta-checking the 170 KB Application schema once is enough
def validator(name: str):
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def errors(name: str, doc: dict) -> list[str]:
    """Each error as 'path: message', so assertions can name the offending field."""
    found = validator(name).iter_errors(doc)
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in _leaves(found))


def _leaves(errs):
    # anyOf/oneOf/allOf failures wrap the real cause; report the innermost errors.
    for e in errs:
        if e.context:
            yield from _leaves(e.context)
        else:
            yield e


# labs/cicd/argocd-application-auto-sync.yaml, step 1
APP_AUTO_SYNC = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
  finalizers:
    - resources-finalizer.argocd.argoproj.io
spec:
  project: default
  source:
    repoURL: https://github.com/acme/argocd-example-apps.git
    targetRevision: HEAD
    path: guestbook
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
      - CreateNamespace=true
      - PruneLast=true
    retry:
      limit: 5
      backoff:
        duration: 5s
        factor: 2
        maxDuration: 3m
  revisionHistoryLimit: 10
""")

# labs/cicd/area.yaml, worked example
APP_CICD_AREA = yaml.safe_load("""
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: hello-web
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/acme/hello-web-gitops.git
    targetRevision: main
    path: apps/hello-web/overlays/production
  destination:
    server: https://kubernetes.default.svc
    namespace: hello-web
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
    syncOptions:
      - CreateNamespace=true
""")

# labs/cloud-native/area.yaml, worked example
HTTPROUTE_CANARY = yaml.safe_load("""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: checkout
  namespace: shop
spec:
  parentRefs:
    - name: public
      namespace: gateway-system
  hostnames:
    - shop.example.com
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: /checkout
      backendRefs:
        - name: checkout-v1
          port: 8080
          weight: 90
        - name: checkout-v2
          port: 8080
          weight: 10
""")

# The Gateway that HTTPRoute attaches to (no guide shows one yet): routes from all namespaces.
GATEWAY_PUBLIC = yaml.safe_load("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: public
  namespace: gateway-system
spec:
  gatewayClassName: eg
  listeners:
    - name: https
      protocol: HTTPS
      port: 443
      hostname: "*.example.com"
      tls:
        mode: Terminate
        certificateRefs:
          - name: example-com-tls
      allowedRoutes:
        namespaces:
          from: All
""")

# labs/cicd/area.yaml, labs/environments/kustomize-environment-overlays.yaml (base, staging),
# labs/containers/kubernetes-deploy-web-app.yaml
KUSTOMIZATIONS = [
    yaml.safe_load(text)
    for text in (
        """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: hello-web
resources:
  - ../../base
images:
  - name: ghcr.io/acme/hello-web
    newTag: 3f9c2a1b7d4e
""",
        """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
labels:
  - pairs:
      app.kubernetes.io/part-of: shop
""",
        """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop-staging
resources:
  - ../../base
labels:
  - pairs:
      app.kubernetes.io/environment: staging
configMapGenerator:
  - name: shop-api-config
    envs:
      - app.env
images:
  - name: ghcr.io/acme/shop-api
    newTag: "1.42.0"
replicas:
  - name: shop-api
    count: 2
""",
        """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - namespace.yaml
  - deployment.yaml
  - service.yaml
  - pdb.yaml
""",
    )
]


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        (APPLICATION, APP_AUTO_SYNC),
        (APPLICATION, APP_CICD_AREA),
        (HTTPROUTE, HTTPROUTE_CANARY),
        (GATEWAY, GATEWAY_PUBLIC),
        *[(KUSTOMIZATION, k) for k in KUSTOMIZATIONS],
    ],
)
def test_guide_examples_are_valid(name, doc):
    assert errors(name, doc) == []


def tampered(doc: dict, path: str, value=None, rename: str | None = None) -> dict:
    """A deep copy with the key at dotted `path` renamed to `rename` or set to `value`."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if rename is not None:
        node[rename] = node.pop(last)
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    ("name", "doc", "expected"),
    [
        (APPLICATION, tampered(APP_AUTO_SYNC, "spec.syncPolicy.automated.prune", rename="prunee"),
         "spec.syncPolicy.automated: Additional properties are not allowed ('prunee' was unexpected)"),
        (APPLICATION, tampered(APP_CICD_AREA, "spec.source.repoURL", rename="repoUrl"),
         "spec.source: Additional properties are not allowed ('repoUrl' was unexpected)"),
        (APPLICATION, tampered(APP_CICD_AREA, "spec.project", rename="projet"),
         "spec: 'project' is a required property"),
        (APPLICATION, tampered(APP_CICD_AREA, "apiVersion", "argoproj.io/v1beta1"),
         "apiVersion: 'argoproj.io/v1alpha1' was expected"),
        (APPLICATION, tampered(APP_CICD_AREA, "metadata.name", rename="nmae"),
         "metadata: Additional properties are not allowed ('nmae' was unexpected)"),
        (HTTPROUTE, tampered(HTTPROUTE_CANARY, "spec.rules.0.backendRefs", rename="backendRef"),
         "spec.rules.0: Additional properties are not allowed ('backendRef' was unexpected)"),
        (HTTPROUTE, tampered(HTTPROUTE_CANARY, "spec.rules.0.backendRefs.0.weight", "90"),
         "spec.rules.0.backendRefs.0.weight: '90' is not of type 'integer'"),
        (HTTPROUTE, tampered(HTTPROUTE_CANARY, "spec.rules.0.matches.0.path.type", "Prefix"),
         "spec.rules.0.matches.0.path.type: 'Prefix' is not one of ['Exact', 'PathPrefix', 'RegularExpression']"),
        (HTTPROUTE, tampered(HTTPROUTE_CANARY, "kind", "HttpRoute"), "kind: 'HTTPRoute' was expected"),
        (GATEWAY, tampered(GATEWAY_PUBLIC, "spec.listeners.0.allowedRoutes", rename="allowedRoute"),
         "spec.listeners.0: Additional properties are not allowed ('allowedRoute' was unexpected)"),
        (GATEWAY, tampered(GATEWAY_PUBLIC, "spec.listeners.0.port", 70000),
         "spec.listeners.0.port: 70000 is greater than the maximum of 65535"),
        (KUSTOMIZATION, tampered(KUSTOMIZATIONS[0], "resources", rename="resource"),
         ": Additional properties are not allowed ('resource' was unexpected)"),
        (KUSTOMIZATION, tampered(KUSTOMIZATIONS[0], "images.0.newTag", rename="tag"),
         "images.0: Additional properties are not allowed ('tag' was unexpected)"),
        (KUSTOMIZATION, tampered(KUSTOMIZATIONS[0], "apiVersion", "kustomize.config.k8s.io/v1"),
         "apiVersion: 'kustomize.config.k8s.io/v1beta1' was expected"),
    ],
)
def test_tampered_examples_fail_at_the_field(name, doc, expected):
    assert expected in errors(name, doc)


def test_kind_and_api_version_are_required():
    doc = {k: v for k, v in HTTPROUTE_CANARY.items() if k != "apiVersion"}
    assert ": 'apiVersion' is a required property" in errors(HTTPROUTE, doc)
    doc = {k: v for k, v in KUSTOMIZATIONS[3].items() if k != "kind"}
    assert ": 'kind' is a required property" in errors(KUSTOMIZATION, doc)


def test_int_or_string_accepts_both_and_nothing_else():
    doc = copy.deepcopy(APP_CICD_AREA)
    replicas = doc["spec"]["source"]["kustomize"] = {"replicas": [{"name": "hello-web", "count": 3}]}
    assert errors(APPLICATION, doc) == []
    replicas["replicas"][0]["count"] = "3"
    assert errors(APPLICATION, doc) == []
    replicas["replicas"][0]["count"] = 3.5
    assert errors(APPLICATION, doc) != []


def test_preserve_unknown_fields_objects_stay_open():
    # helm.valuesObject is free-form in the CRD; its siblings are not.
    doc = copy.deepcopy(APP_CICD_AREA)
    doc["spec"]["source"]["helm"] = {"valuesObject": {"anything": {"nested": [1, 2]}}}
    assert errors(APPLICATION, doc) == []
    doc["spec"]["source"]["helm"]["valuesObjekt"] = {}
    assert errors(APPLICATION, doc) == [
        "spec.source.helm: Additional properties are not allowed ('valuesObjekt' was unexpected)"
    ]


def test_every_schema_records_its_source_and_is_listed_in_sources_md():
    sources = (SCHEMAS / "SOURCES.md").read_text(encoding="utf-8")
    shipped = sorted(p.name for p in SCHEMAS.iterdir() if p.name.endswith(".json"))
    assert shipped == sorted(ALL)
    for name in shipped:
        comment = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))["$comment"]
        assert re.search(r"from https://\S+ \(\S+, sha256 [0-9a-f]{64}\)", comment), name
        assert f"`{name}`" in sources, f"{name} is not described in SOURCES.md"


KINDS = {
    ("argoproj.io/v1alpha1", "Application"): APPLICATION,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTPROUTE,
    ("gateway.networking.k8s.io/v1", "Gateway"): GATEWAY,
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): KUSTOMIZATION,
}


def test_every_such_manifest_in_the_knowledge_base_is_valid(repo: Path):
    """Read through the block extractor, so `from=` blocks count with the lab text they show."""
    from opslabs.blocks.extract import extract
    from opslabs.load import load_catalog

    checked, problems = 0, []
    for block in extract(load_catalog(repo / "labs")):
        if block.language != "yaml":
            continue
        try:
            docs = [d for d in yaml.safe_load_all(block.text) if isinstance(d, dict)]
        except yaml.YAMLError:
            continue  # not a manifest; the YAML block checker reports syntax errors
        for doc in docs:
            name = KINDS.get((doc.get("apiVersion"), doc.get("kind")))
            if name:
                checked += 1
                problems += [f"{block.where}: {e}" for e in errors(name, doc)]
    assert problems == []
    assert checked >= 7, "the guides' Application, HTTPRoute and Kustomization blocks were not found"


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
  annotations:
    gateway.networking.k8s.io/bundle-version: v9.9.9
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1beta1
      served: true
      storage: false
      schema:
        openAPIV3Schema: {type: object}
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          description: A widget.
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [size]
              x-kubernetes-validations:
                - rule: self.size > 0
              properties:
                size:
                  x-kubernetes-int-or-string: true
                  description: Pods or a percentage.
                description: {type: string, nullable: true}
                extra:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties:
                    known: {type: string}
                labels:
                  type: object
                  additionalProperties: {type: string}
"""


def test_converter_turns_a_crd_into_a_strict_manifest_schema(repo: Path, tmp_path: Path):
    crd = tmp_path / "crd.yaml"
    crd.write_text(CRD, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(repo / "scripts" / "crd-to-schema.py"), str(crd),
         "--source-url", "https://example.com/crd.yaml", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["widget-example.com-v1.json"]
    schema = json.loads((tmp_path / "widget-example.com-v1.json").read_text())
    assert "https://example.com/crd.yaml (v9.9.9, sha256 " in schema["$comment"]
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert "x-kubernetes-validations" not in spec
    assert spec["properties"]["size"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    # A field literally named "description" survives; description keywords do not.
    assert spec["properties"]["description"] == {"type": ["string", "null"]}
    assert "additionalProperties" not in spec["properties"]["extra"]
    assert spec["properties"]["labels"]["additionalProperties"] == {"type": "string"}

    check = validator_for(schema)(schema)
    good = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": "50%", "description": None, "extra": {"free": 1}}}
    assert list(check.iter_errors(good)) == []
    for bad in (
        {**good, "apiVersion": "example.com/v1beta1"},
        {**good, "spec": {"size": 1, "sise": 2}},
        {**good, "metadata": {"name": "w", "lables": {}}},
        {k: v for k, v in good.items() if k != "metadata"},
    ):
        assert list(check.iter_errors(bad)) != [], bad


def test_converter_names_the_problem_instead_of_a_traceback(repo: Path, tmp_path: Path):
    crd = tmp_path / "crd.yaml"
    crd.write_text(CRD, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(repo / "scripts" / "crd-to-schema.py"), str(crd), "--version", "v2",
         "--source-url", "https://example.com/crd.yaml", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 1
    assert run.stderr.strip() == f"error: {crd}: CRD has no version v2; it has v1beta1, v1"
    assert "Traceback" not in run.stderr
