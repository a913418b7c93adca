"""YAML blocks, judged by their shape: Kubernetes objects (kubernetes-validate, strict), custom
resources (schemas derived from their projects' CRDs), GitHub workflows and Compose files
(check-jsonschema's bundled schemas), Prometheus and Alertmanager files (promtool, amtool)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from opslabs.blocks.checkers.base import Checker, Finding, Item, Outcome, ToolMissing

KUBERNETES_VERSION = "1.37.0"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: `on:` in a workflow is the key "on", not True."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    """Application tags (CloudFormation's !Sub, MkDocs' !!python/name) are data here, never code."""
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_Yaml12Loader.add_multi_constructor("!", _tagged)
_Yaml12Loader.add_multi_constructor("tag:yaml.org,2002:python/", _tagged)


class TooCostly(Exception):
    """The block nests or expands (through aliases) beyond the limits that bound every YAML file."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def load_documents(text: str) -> list:
    from opslabs.load import _scan_limits

    # The file-level limits never see a code block's text: a "billion laughs" of a few
    # hundred bytes would otherwise be expanded by the schema checks and their messages.
    too_costly = _scan_limits(Path("block"), text)
    if too_costly is not None:
        raise TooCostly(too_costly.line, too_costly.message)
    return [doc for doc in yaml.load_all(text, Loader=_Yaml12Loader) if doc is not None]


def shape(doc: object) -> str:
    """What a YAML document is, from its keys."""
    if not isinstance(doc, dict):
        return "yaml"
    if "apiVersion" in doc and "kind" in doc:
        return "kubernetes"
    if "jobs" in doc and "on" in doc:
        return "github-workflow"
    if "runs" in doc and ("name" in doc or "inputs" in doc):
        return "github-action"
    if "services" in doc and isinstance(doc["services"], dict):
        return "compose"
    if "groups" in doc and isinstance(doc["groups"], list) and all(isinstance(g, dict) and "rules" in g for g in doc["groups"]):
        return "prometheus-rules"
    if "scrape_configs" in doc or ("rule_files" in doc and ("alerting" in doc or "global" in doc)):
        return "prometheus-config"
    if "rule_files" in doc and "tests" in doc:
        return "promtool-test"
    if "route" in doc and "receivers" in doc:
        return "alertmanager-config"
    return "yaml"


class YamlChecker(Checker):
    name = "YAML"
    version = f"k8s-{KUBERNETES_VERSION}-8"  # 5: YAML limits for blocks too; 6: recursive aliases; 7: lines by path; 8: label

    def judge(self, item: Item) -> Outcome:
        try:
            docs = load_documents(item.text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            return Outcome("YAML syntax", (Finding(mark.line + 1 if mark else 0, f"YAML syntax error: {getattr(err, 'problem', err)}"),))
        except TooCostly as err:
            return Outcome("YAML syntax", (Finding(err.line, str(err)),))
        if not docs:
            return Outcome("YAML syntax", (Finding(0, "an empty YAML block"),))
        shapes = {shape(doc) for doc in docs}
        wanted = item.attrs.get("shape")
        kind = wanted or (shapes.pop() if len(shapes) == 1 else "kubernetes" if shapes <= {"kubernetes", "yaml"} else "yaml")
        judge = JUDGES.get(kind)
        if judge is None:
            return Outcome("YAML syntax", (Finding(0, f"unknown shape={wanted!r} (expected one of: {', '.join(sorted(JUDGES))})"),))
        return judge(item.text, docs)


def _schema_errors(validator: jsonschema.protocols.Validator, doc: object) -> list[tuple[list, str]]:
    """[(path of the failing value, "path: message")] for the first five errors."""
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    messages = []
    for error in errors[:5]:
        # "is not valid under any of the given schemas" hides the real mistake in its context:
        # name the most relevant sub-error instead (e.g. 'runs_on' was unexpected)
        while error.context:
            error = jsonschema.exceptions.best_match(error.context)
        path = list(error.absolute_path)
        messages.append((path, f"{'.'.join(map(str, path)) or '(top level)'}: {error.message}"))
    return messages


def _line_of(text: str, doc_index: int, path: list, message: str) -> int:
    """The line (1-based in the block) where the failing value's key is written: the path is
    walked through the YAML nodes of that document, so a key written elsewhere too (a
    `name:` in metadata and in a container) is not mistaken for it; 0 when unknown."""
    try:
        nodes = [n for n in yaml.compose_all(text, Loader=_Yaml12Loader)
                 if n is not None and n.tag != "tag:yaml.org,2002:null"]  # as load_documents keeps them
    except yaml.YAMLError:
        return 0
    if not 0 <= doc_index < len(nodes):
        return 0
    node = nodes[doc_index]
    line = node.start_mark.line + 1
    unexpected = re.search(r"'([^']+)' (?:was|were) unexpected", message)
    for part in [*path, *([unexpected.group(1)] if unexpected else [])]:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


@lru_cache(maxsize=None)
def _vendored(name: str) -> jsonschema.protocols.Validator:
    """A schema that check-jsonschema bundles (GitHub workflows, Compose, GitHub actions)."""
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(f"{name}.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@lru_cache(maxsize=None)
def _custom(kind: str, api_version: str) -> jsonschema.protocols.Validator | None:
    group, _, version = api_version.rpartition("/")
    path = SCHEMAS / f"{kind.lower()}-{group}-{version}.json"
    if not path.exists():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def _kubernetes(text: str, docs: list) -> Outcome:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    findings: list[Finding] = []
    labels: set[str] = set()
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            findings.append(Finding(0, "every document of a Kubernetes block needs apiVersion and kind"))
            continue
        api_version, kind = str(doc["apiVersion"]), str(doc["kind"])
        custom = _custom(kind, api_version) if "." in api_version.split("/")[0] else None
        if custom is not None:
            labels.add(f"{api_version} {kind} schema")  # stored with its version, from its CRD or SchemaStore
            findings += [Finding(_line_of(text, index, path, m), f"{kind}: {m}") for path, m in _schema_errors(custom, doc)]
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            labels.add(f"Kubernetes {KUBERNETES_VERSION.rsplit('.', 1)[0]} schema")
        except SchemaNotFoundError:
            return Outcome("Kubernetes schema", unchecked=f"no schema for {kind} ({api_version}) in Kubernetes {KUBERNETES_VERSION} or among the stored CRD schemas")
        except jsonschema.ValidationError as err:
            labels.add(f"Kubernetes {KUBERNETES_VERSION.rsplit('.', 1)[0]} schema")
            where = ".".join(map(str, err.absolute_path)) or "(top level)"
            findings.append(Finding(_line_of(text, index, list(err.absolute_path), err.message), f"{kind}: {where}: {err.message}"))
    return Outcome(", ".join(sorted(labels)) or "Kubernetes schema", tuple(findings))


def _vendored_judge(schema: str, label: str):
    def judge(text: str, docs: list) -> Outcome:
        validator = _vendored(schema)
        return Outcome(label, tuple(Finding(_line_of(text, index, path, m), m)
                                    for index, doc in enumerate(docs) for path, m in _schema_errors(validator, doc)))
    return judge


def _syntax(text: str, docs: list) -> Outcome:
    return Outcome("YAML syntax")


def _prometheus(kind: str):
    def judge(text: str, docs: list) -> Outcome:
        from opslabs.blocks.checkers import prometheus

        try:
            return prometheus.check(kind, text)
        except ToolMissing as err:
            return Outcome(prometheus.LABELS[kind], unchecked=str(err))
    return judge


JUDGES = {
    "kubernetes": _kubernetes,
    "github-workflow": _vendored_judge("github-workflows", "GitHub workflow schema"),
    "github-action": _vendored_judge("github-actions", "GitHub action schema"),
    "compose": _vendored_judge("compose-spec", "Compose specification schema"),
    "prometheus-rules": _prometheus("prometheus-rules"),
    "prometheus-config": _prometheus("prometheus-config"),
    "promtool-test": _prometheus("promtool-test"),
    "alertmanager-config": _prometheus("alertmanager-config"),
    "yaml": _syntax,
}
