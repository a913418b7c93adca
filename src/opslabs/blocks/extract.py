"""Every fenced block of every guide and area overview, with its line in the YAML file.

A block whose fence says `from=…` shows a piece of its task's lab instead of text of its
own, so the page shows exactly what `opslabs verify` runs (one source for guide and lab).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

from opslabs.blocks.fence import SHELLS, Fence, FenceError, parse_info
from opslabs.catalog import AreaEntry, Catalog, TaskEntry, deepest_mark
from opslabs.errors import Problem
from opslabs.model import CommandCheck, Lab

_MD = MarkdownIt("commonmark")
FROM = re.compile(r"^(?:(solution|check):(\d+)(?:\.(\d+))?|(setup|start):([a-z0-9-]+)|file:([a-z0-9-]+):(/\S+))$")


@dataclass(frozen=True)
class Block:
    page: str  # "area" or "area/task"
    file: Path
    line: int  # the fence's opening line in the YAML file
    index: int  # 1-based, in page order
    fence: Fence
    text: str  # exactly what the page shows
    origin: str = ""  # for from= blocks: which part of the lab the text is
    body_lines: tuple[int, int] = (0, 0)  # the fence's first and last line in the field's text (0-based)
    indent: int = 0
    host: str = ""  # for from= blocks that run in a lab host, and for run= blocks
    after: int = 0  # run= blocks: the step they run after
    extra: dict = field(default_factory=dict, compare=False)
    # False when the field is not a `|` block (a quoted text): its lines are not the file's,
    # so `line` is the field's key and a finding names its line inside the block in words.
    exact: bool = True

    @property
    def language(self) -> str:
        return self.fence.language

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def fences(text: str) -> list[tuple[int, int, str, str, int]]:
    """(first line, end line exclusive, info, content, indent) of each fence, 0-based in `text`."""
    found = []
    lines = text.split("\n")
    for token in _MD.parse(text):
        if token.type == "fence" and token.map:
            start, end = token.map
            indent = len(lines[start]) - len(lines[start].lstrip(" "))
            found.append((start, end, token.info, token.content, indent))
    return found


def resolve_from(spec: str, lab: Lab | None) -> tuple[str, str, str]:
    """(text, origin, host) of a `from=` reference; ValueError says what is wrong."""
    if lab is None:
        raise ValueError("from= needs the task to have a lab")
    match = FROM.match(spec)
    if not match:
        raise ValueError(f"from={spec!r}: expected solution:STEP[.N], check:STEP.N, setup:HOST, start:HOST or file:HOST:/PATH")
    kind, step_no, item_no, boot, boot_host, file_host, file_path = match.groups()
    if kind:
        step_i = int(step_no)
        if not 1 <= step_i <= len(lab.steps):
            raise ValueError(f"from={spec}: the lab has steps 1 to {len(lab.steps)}")
        step = lab.steps[step_i - 1]
        items = step.solution if kind == "solution" else step.checks
        if item_no is None:
            if kind == "check":
                raise ValueError(f"from={spec}: name the check, e.g. check:{step_i}.1")
            hosts = {item.host for item in items}
            if len(hosts) > 1:
                raise ValueError(f"from={spec}: step {step_i}'s solution runs on several hosts ({', '.join(sorted(hosts))}); name one command, e.g. solution:{step_i}.1")
            return "\n".join(item.run.rstrip("\n") for item in items), f"lab step {step_i}, solution", items[0].host
        item_i = int(item_no)
        if not 1 <= item_i <= len(items):
            raise ValueError(f"from={spec}: step {step_i} has {len(items)} {kind} item(s)")
        item = items[item_i - 1]
        if kind == "solution":
            return item.run.rstrip("\n"), f"lab step {step_i}, solution command {item_i}", item.host
        if not isinstance(item, CommandCheck):
            raise ValueError(f"from={spec}: check {item_i} of step {step_i} is not a command check")
        return item.command.rstrip("\n"), f"lab step {step_i}, check {item_i}", item.host
    if boot:
        host = lab.hosts.get(boot_host)
        if host is None:
            raise ValueError(f"from={spec}: no host {boot_host!r} (hosts: {', '.join(lab.hosts)})")
        commands = host.setup if boot == "setup" else host.start
        if not commands:
            raise ValueError(f"from={spec}: host {boot_host!r} has no {boot} commands")
        return "\n".join(c.rstrip("\n") for c in commands), f"lab host {boot_host}, {boot}", boot_host
    host = lab.hosts.get(file_host)
    if host is None:
        raise ValueError(f"from={spec}: no host {file_host!r} (hosts: {', '.join(lab.hosts)})")
    for f in host.files:
        if f.path == file_path:
            return f.content.rstrip("\n"), f"lab host {file_host}, file {file_path}", file_host
    raise ValueError(f"from={spec}: host {file_host!r} has no file {file_path} (files: {', '.join(f.path for f in host.files) or 'none'})")


def run_problem(fence: Fence) -> str:
    """Why `run=` cannot apply to this block ("" when it can): the runner hands the text to bash
    as the page shows it, and skips from= blocks (the lab already runs them where they belong),
    so anything else marked run= would be reported executed without having run."""
    if "run" not in fence.attrs:
        return ""
    if "from" in fence.attrs:
        return "run= and from= exclude each other: a from= block is the lab's own text, which the lab runs where it belongs"
    if fence.language not in SHELLS:
        return f"run= runs a block in a lab host's shell: it needs a shell block ({', '.join(SHELLS)}), not {fence.language}"
    if fence.flags or "unchecked" in fence.attrs:
        what = ", ".join(sorted(fence.flags)) or "unchecked="
        return f"run= and {what} exclude each other: a block that runs is checked by the lab"
    return ""


def blocks_of(text: str, page: str, file: Path, text_start: int | None, lab: Lab | None,
              problems: list[Problem], field_name: str, field_line: int = 1) -> list[Block]:
    found: list[Block] = []
    for i, (start, end, info, content, indent) in enumerate(fences(text), start=1):
        line = text_start + start if text_start is not None else field_line
        try:
            fence = parse_info(info)
        except FenceError as err:
            problems.append(Problem(file, line, indent + 1, field_name, str(err)))
            continue
        if not fence.language:
            problems.append(Problem(file, line, indent + 1, field_name, "a code block needs a language (```bash, ```yaml, ```text …)"))
            continue
        runnable = run_problem(fence)
        if runnable:
            problems.append(Problem(file, line, indent + 1, field_name, runnable))
            continue
        origin, host, after = "", fence.attrs.get("run", ""), 0
        body = content.rstrip("\n")
        if "from" in fence.attrs:
            if body.strip():
                problems.append(Problem(file, line, indent + 1, field_name, "a block with from= shows the lab's text: leave its body empty"))
                continue
            try:
                body, origin, host = resolve_from(fence.attrs["from"], lab)
            except ValueError as err:
                problems.append(Problem(file, line, indent + 1, field_name, str(err)))
                continue
        if "run" in fence.attrs:
            try:
                after = int(fence.attrs["after"])
            except ValueError:
                after = 0
            if lab is None:
                problems.append(Problem(file, line, indent + 1, field_name, "run= needs the task to have a lab"))
                continue
            if host not in lab.hosts:
                problems.append(Problem(file, line, indent + 1, field_name, f"run={host}: not a host of the lab (hosts: {', '.join(lab.hosts)})"))
                continue
            if not 1 <= after <= len(lab.steps):
                problems.append(Problem(file, line, indent + 1, field_name, f"after={fence.attrs['after']}: expected a step number from 1 to {len(lab.steps)}"))
                continue
        found.append(Block(page, file, line, i, fence, body, origin, (start, end - 1), indent, host, after,
                           exact=text_start is not None))
    return found


def extract(catalog: Catalog, problems: list[Problem] | None = None) -> list[Block]:
    """Every block of the knowledge base in page order; bad fences become located problems."""
    problems = [] if problems is None else problems
    found: list[Block] = []
    for area in catalog.areas:
        found += blocks_of_area(area, problems)
        for entry in area.tasks:
            found += blocks_of_task(entry, problems)
    return found


def blocks_of_area(area: AreaEntry, problems: list[Problem]) -> list[Block]:
    return blocks_of(area.area.overview, area.id, area.path, area.text_start, None, problems, "overview",
                     deepest_mark(area.marks, ("overview",))[0])


def blocks_of_task(entry: TaskEntry, problems: list[Problem]) -> list[Block]:
    return blocks_of(entry.task.guide, f"{entry.area_id}/{entry.id}", entry.path, entry.text_start,
                     entry.task.lab, problems, "guide", deepest_mark(entry.marks, ("guide",))[0])
