"""YAML files -> validated model. Every problem names file:line:col and the field path.

All problems of a run are collected and raised together as one ValidationFailed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from opslabs.catalog import AreaEntry, Catalog, Marks, TaskEntry, deepest_mark
from opslabs.errors import Problem, UserError, ValidationFailed
from opslabs.markdown_lint import lint_markdown
from opslabs.model import CHECK_KINDS, Area, Task
from opslabs.versions import FILE as VERSIONS_FILE, Versions
from opslabs.policy import DEFAULT_POLICY, Policy

AREA_FILE = "area.yaml"

# What one YAML file may cost, whoever wrote it: (environment variable, default). A lab
# file is at most about 25 KB, nests about ten levels and has a few hundred values.
LIMITS = {
    "bytes": ("OPSLABS_YAML_MAX_BYTES", 128 * 1024),
    "depth": ("OPSLABS_YAML_MAX_DEPTH", 64),
    "nodes": ("OPSLABS_YAML_MAX_NODES", 50_000),
}
MAX_DEPTH_CEILING = 200  # composing and building recurse about twice per level: stay clear of Python's 1000


def limit(name: str) -> int:
    variable, default = LIMITS[name]
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise UserError(f"{variable}={raw!r}: expected a positive whole number (default {default})")
    if name == "depth" and int(raw) > MAX_DEPTH_CEILING:
        raise UserError(f"{variable}={raw}: at most {MAX_DEPTH_CEILING} levels can be read safely")
    return int(raw)


class _Document:
    """A parsed YAML file: plain data plus the (line, col) of every key and item."""

    def __init__(self, path: Path, data: Any, marks: Marks, block_starts: dict[tuple, int]):
        self.path, self.data, self.marks = path, data, marks
        self.block_starts = block_starts  # field -> file line where a `|` block's text starts

    def text_problems(self, field: str, text: str) -> list[Problem]:
        """Markdown lint of one text field, located on the file's own lines where possible."""
        first = self.block_starts.get((field,))
        problems = []
        for offset, message in lint_markdown(text):
            if first is not None:
                problems.append(Problem(self.path, first + offset - 1, 1, field, message))
            else:
                problems.append(self.problem((field,), f"line {offset} of the text: {message}"))
        return problems

    def expand_versions(self, versions: Versions, problems: list[Problem]) -> None:
        """Substitute `[[uses:…]]`/`[[version:…]]` in every text value, in place, before validation:
        a guide and the workflow its lab runs take the same version from labs/versions.yaml."""

        def walk(node: Any, loc: tuple) -> Any:
            if isinstance(node, dict):
                return {key: walk(value, (*loc, key)) for key, value in node.items()}
            if isinstance(node, list):
                return [walk(value, (*loc, i)) for i, value in enumerate(node)]
            if not isinstance(node, str) or "[[" not in node:
                return node
            text, unknown = versions.expand(node)
            first = self.block_starts.get(loc)
            for offset, message in unknown:
                if first is not None:
                    problems.append(Problem(self.path, first + offset, 1, ".".join(map(str, loc)), message))
                else:
                    problems.append(self.problem(loc, message))
            return text

        self.data = walk(self.data, ())

    def problem(self, loc: tuple, message: str) -> Problem:
        line, col = deepest_mark(self.marks, loc)
        return Problem(self.path, line, col, ".".join(map(str, loc)), message)


def parse_yaml(path: Path, problems: list[Problem]) -> _Document | None:
    """Parse one file; on failure append a problem and return None."""
    max_bytes = limit("bytes")
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)  # never more than the limit into memory
        if len(raw) > max_bytes:
            problems.append(Problem(path, 1, 1, "", f"file larger than {max_bytes} bytes, the limit for one YAML file "
                                                    f"(set {LIMITS['bytes'][0]} to raise it)"))
            return None
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(Problem(path, 1, 1, "", "not a UTF-8 text file (expected YAML)"))
        return None
    except OSError as err:
        problems.append(Problem(path, 1, 1, "", f"cannot read file: {err.strerror}"))
        return None
    if "\x00" in text:
        problems.append(Problem(path, 1, 1, "", "binary content (expected YAML text)"))
        return None
    try:
        # Bounds first, on the event stream (iterative): composing recurses per level,
        # and building expands every alias again.
        fast = _parse_fast(path, text)
        too_costly, node = fast if fast is not None else (_scan_limits(path, text), None)
        if too_costly is not None:
            problems.append(too_costly)
            return None
        if fast is None:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = err.problem or "invalid YAML"
        if "\t" in reason or "'\\t'" in reason:
            reason = "a tab character cannot indent YAML; use spaces"
        problems.append(Problem(path, line, col, "", f"YAML syntax error: {reason}"))
        return None
    except yaml.YAMLError as err:
        problems.append(Problem(path, 1, 1, "", f"YAML error: {err}"))
        return None
    if node is None:
        problems.append(Problem(path, 1, 1, "", "empty file (expected a mapping of fields)"))
        return None
    if not isinstance(node, yaml.MappingNode):
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        problems.append(Problem(path, line, col, "", f"expected a mapping of fields at the top level, found a {_node_kind(node)}"))
        return None
    builder = _Builder(path, problems)
    data = builder.build(node)
    return _Document(path, data, builder.marks, builder.block_starts)


# libyaml parses 20 times faster than PyYAML's Python parser, with the same nodes, tags and marks;
# the slow parser reads an invalid file again, so a syntax error reads as it always did.
FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _parse_fast(path: Path, text: str) -> tuple[Problem | None, yaml.Node | None] | None:
    """(limit problem, node) parsed by libyaml; None without libyaml or when the text is not valid YAML."""
    if FAST_LOADER is None:
        return None
    try:
        too_costly = _scan_limits(path, text, FAST_LOADER)
        return too_costly, (None if too_costly is not None else yaml.compose(text, Loader=FAST_LOADER))
    except yaml.YAMLError:
        return None


def _scan_limits(path: Path, text: str, loader: type = yaml.SafeLoader) -> Problem | None:
    """A problem where the file nests deeper, or expands (through aliases) to more values,
    than the limits allow; None when it is within them. Aliases are counted by the size
    and height of what they stand for, so a "billion laughs" is refused without expanding it."""
    max_depth, max_nodes = limit("depth"), limit("nodes")
    sizes: dict[str, int] = {}  # anchor -> values it stands for
    heights: dict[str, int] = {}  # anchor -> levels of nesting it adds
    stack: list[list] = []  # open collections: [anchor, total at start, depth, deepest depth inside]
    total = 0

    def located(event: yaml.Event, message: str) -> Problem:
        return Problem(path, event.start_mark.line + 1, event.start_mark.column + 1, "", message)

    def too_deep(event: yaml.Event, depth: int, via: str) -> Problem:
        return located(event, f"{via}nests {depth} levels deep, more than the limit of {max_depth} "
                              f"(set {LIMITS['depth'][0]} to raise it)")

    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth = len(stack) + 1
            if depth > max_depth:
                return too_deep(event, depth, "this value ")
            stack.append([event.anchor, total, depth, depth])
            total += 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, start, depth, deepest = stack.pop()
            if anchor is not None:
                sizes[anchor], heights[anchor] = total - start, deepest - depth + 1
            if stack:
                stack[-1][3] = max(stack[-1][3], deepest)
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor], heights[event.anchor] = 1, 0
        elif isinstance(event, yaml.AliasEvent):
            if any(entry[0] == event.anchor for entry in stack):  # would make the value contain itself
                return located(event, f"the alias *{event.anchor} stands for a value that contains it "
                                      "(a value without end); write the repeated part out instead")
            total += sizes.get(event.anchor, 1)  # an undefined alias is reported by the composer
            depth = len(stack) + heights.get(event.anchor, 0)
            if depth > max_depth:
                return too_deep(event, depth, f"the alias *{event.anchor} ")
            if stack:
                stack[-1][3] = max(stack[-1][3], depth)
        if total > max_nodes:
            via = f"the alias *{event.anchor} makes " if isinstance(event, yaml.AliasEvent) else ""
            return located(event, f"{via}the file expand to more than {max_nodes} values, the limit "
                                  f"(set {LIMITS['nodes'][0]} to raise it)")
    return None


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "list"
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    return "single value"


# A NUL reaches a value only through an escape such as "\0" (raw NULs are refused as binary).
NUL_MESSAGE = ("contains a NUL character (from an escape such as \"\\0\"): no terminal can type it "
               "and no shell can run it, so no command, path or value may contain one")


class _Builder:
    """Turns a composed YAML node tree into plain data, noting where every key and item is."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path, self.problems = path, problems
        self.marks: Marks = {(): (1, 1)}
        self.block_starts: dict[tuple, int] = {}

    def problem(self, node: yaml.Node, loc: tuple, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.path, mark.line + 1, mark.column + 1, ".".join(map(str, loc)), message))

    def build(self, node: yaml.Node, loc: tuple = ()) -> Any:
        self.marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        if node.style == "|":
            self.block_starts[loc] = node.start_mark.line + 2  # the line after the `|` indicator
        try:
            value = yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as err:  # unknown tags (!include), impossible dates
            reason = getattr(err, "problem", None) or str(err)
            self.problem(node, loc, f"cannot read this value: {reason}")
            return None
        if isinstance(value, str) and "\x00" in value:
            self.problem(node, loc, NUL_MESSAGE)
            return value.replace("\x00", "\\0")  # visible, and no second error for the same value
        return value

    def _mapping(self, node: yaml.MappingNode, loc: tuple) -> dict:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problem(key_node, loc, "YAML merge keys (<<) are not supported")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, loc, "a key must be plain text, not a list or mapping")
                continue
            if "\x00" in key_node.value:
                self.problem(key_node, loc, NUL_MESSAGE)
                continue
            child = (*loc, key_node.value)
            self.marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key_node.value in result:
                self.problem(key_node, child, "duplicate key")
            result[key_node.value] = self.build(value_node, child)
        return result


def _describe_error(err: dict, model_fields: set[str]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(model_fields))
        return f"unknown key (expected one of: {allowed})"
    if kind == "missing":
        return "required field is missing"
    if kind == "check_kind":
        return err["msg"]
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        if pattern.startswith("^[a-z0-9]+(-"):
            return f"expected an id of lowercase letters, digits and dashes, got {err['input']!r}"
        return f"expected text matching {pattern}, got {err['input']!r}"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind == "literal_error":
        return f"expected {err['ctx']['expected']}, got {err['input']!r}"
    expected = EXPECTED_TYPES.get(kind)
    if expected is None:
        message = err["msg"]
        expected = message[0].lower() + message[1:]
    return f"{expected}, got {_yaml_type(err['input'])} {_short(err['input'])}"


EXPECTED_TYPES = {
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}


def _yaml_type(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "a number", float: "a number", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _inner_model(annotation: Any) -> Any:
    """Follow list[...] / dict[..., X] / X | None to the model type inside."""
    from typing import get_args

    if annotation is None:
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _validate(doc: _Document, model: type[BaseModel], problems: list[Problem]) -> BaseModel | None:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _strip_union_tags(tuple(err["loc"]))
            allowed = _allowed_keys(model, doc.data, loc) if err["type"] == "extra_forbidden" else set()
            problems.append(doc.problem(loc, _describe_error(err, allowed)))
        return None


def _strip_union_tags(loc: tuple) -> tuple:
    """Pydantic puts the check's kind tag into the loc: (..., 'checks', 1, 'file', 'mode')."""
    return tuple(
        part for i, part in enumerate(loc)
        if not (i >= 2 and part in CHECK_KINDS and isinstance(loc[i - 1], int) and loc[i - 2] == "checks")
    )


def _allowed_keys(model: type[BaseModel], data: Any, loc: tuple) -> set[str]:
    """The keys accepted where an unknown key was found, by walking the data beside the models."""
    from typing import get_origin

    from opslabs.model import check_kind

    current: Any = model
    node: Any = data
    skip_key = False  # inside dict[str, Model] the next part is a free key (a host name)
    for part in loc[:-1]:
        node = node[part] if isinstance(node, (dict, list)) else None
        if isinstance(part, int) or skip_key:
            skip_key = False
            continue
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            return set()
        if part == "checks":
            current = "checks"
            continue
        skip_key = get_origin(field.annotation) is dict
        current = _inner_model(field.annotation)
    if current == "checks":
        kind = check_kind(node)
        return set(CHECK_KINDS[kind].model_fields) if kind else set()
    return set(current.model_fields) if current is not None else set()


def _cross_check(task: Task, doc: _Document, problems: list[Problem], policy: Policy | None) -> None:
    """Rules beyond single fields: the guide's Markdown, every host a step names is declared,
    and no host asks for more of the machine than the operator's policy allows."""
    problems += doc.text_problems("guide", task.guide)
    if task.lab is None:
        return
    for name, host in task.lab.hosts.items() if policy is not None else ():
        for field, message in policy.check_host(host.privileged, host.cap_add, host.memory, host.pids):
            loc = ("lab", "hosts", name, *(int(p) if p.isdigit() else p for p in field.split(".")))
            problems.append(doc.problem(loc, message))
    hosts = set(task.lab.hosts)
    declared = ", ".join(sorted(hosts))
    for s, step in enumerate(task.lab.steps):
        for c, command in enumerate(step.solution):
            if command.host not in hosts:
                problems.append(doc.problem(("lab", "steps", s, "solution", c, "host"), f"host {command.host!r} is not declared in lab.hosts (declared: {declared})"))
        for c, check in enumerate(step.checks):
            if check.host not in hosts:
                problems.append(doc.problem(("lab", "steps", s, "checks", c, "host"), f"host {check.host!r} is not declared in lab.hosts (declared: {declared})"))


def load_versions(path: Path, problems: list[Problem]) -> Versions:
    """`labs/versions.yaml`: {actions: {owner/action: vN}, tools: {name: version}}; absent means empty."""
    if not path.exists():
        return Versions()
    doc = parse_yaml(path, problems)
    if doc is None:
        return Versions()
    tables: dict[str, dict[str, str]] = {}
    for key, value in doc.data.items():
        if key not in ("actions", "tools"):
            problems.append(doc.problem((key,), "unknown key (expected one of: actions, tools)"))
        elif not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            problems.append(doc.problem((key,), "expected a mapping of names to version text (quote numbers: \"1.14\")"))
        else:
            tables[key] = value
    return Versions(tables.get("actions", {}), tables.get("tools", {}))


def load_catalog(root: Path, policy: Policy | None = DEFAULT_POLICY) -> Catalog:
    """Load `root/<area>/area.yaml` and `root/<area>/<task>.yaml`; raise ValidationFailed with every problem.

    `policy` bounds what a lab's hosts may ask (privileges, capabilities, memory, pids);
    None skips that for callers that never start a container (rendering, a running lab's checks)."""
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        raise ValidationFailed([Problem(root, 1, 1, "", "knowledge base folder not found (point --labs at it)")])
    areas: list[AreaEntry] = []
    versions = load_versions(root / VERSIONS_FILE, problems)
    task_ids: dict[str, Path] = {}
    area_ids: dict[str, Path] = {}
    for area_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        area_path = area_dir / AREA_FILE
        if not area_path.exists():
            problems.append(Problem(area_path, 1, 1, "", f"missing {AREA_FILE}: every folder under {root} is an area"))
            continue
        doc = parse_yaml(area_path, problems)
        if doc:
            doc.expand_versions(versions, problems)
        area = _validate(doc, Area, problems) if doc else None
        if area is not None:
            problems += doc.text_problems("overview", area.overview)
        if area is not None and area.id != area_dir.name:
            problems.append(doc.problem(("id",), f"must equal the folder name {area_dir.name!r}, got {area.id!r}"))
        if area is not None:
            if area.id in area_ids:
                problems.append(doc.problem(("id",), f"duplicate area id, also used by {area_ids[area.id]}"))
            area_ids[area.id] = area_path
        tasks: list[TaskEntry] = []
        for task_path in sorted(p for p in area_dir.iterdir() if p.suffix in (".yaml", ".yml")):
            if task_path.name == AREA_FILE:
                continue
            tdoc = parse_yaml(task_path, problems)
            if tdoc:
                tdoc.expand_versions(versions, problems)
            task = _validate(tdoc, Task, problems) if tdoc else None
            if task is None:
                continue
            if task.id != task_path.stem:
                problems.append(tdoc.problem(("id",), f"must equal the file name {task_path.stem!r}, got {task.id!r}"))
            if task.id in task_ids:
                problems.append(tdoc.problem(("id",), f"duplicate task id, also used by {task_ids[task.id]}"))
            task_ids[task.id] = task_path
            _cross_check(task, tdoc, problems, policy)
            tasks.append(TaskEntry(task, area_dir.name, task_path, tdoc.marks, tdoc.block_starts.get(("guide",))))
        if area is not None:
            tasks.sort(key=lambda t: (t.task.order, t.task.title.lower()))
            areas.append(AreaEntry(area, area_path, tuple(tasks), doc.block_starts.get(("overview",)), doc.marks))
    if problems:
        raise ValidationFailed(problems)
    areas.sort(key=lambda a: (a.area.order, a.area.title.lower()))
    return Catalog(root, tuple(areas), versions)
