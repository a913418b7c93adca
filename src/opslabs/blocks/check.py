"""Judge every block: executed (the lab runs it), validated (a real tool accepts it), fragment,
or unchecked with the reason. Tool findings become located problems for `opslabs validate`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from opslabs.blocks.cache import Cache, checker_inputs, key
from opslabs.blocks.checkers.base import Checker, Finding, Item, Outcome, ToolMissing
from opslabs.blocks.checkers.registry import NOT_CODE, checker_for
from opslabs.blocks.checkers.shell import lint as shell_lint
from opslabs.blocks.extract import Block, extract
from opslabs.blocks.fence import SHELLS
from opslabs.catalog import Catalog
from opslabs.errors import Problem

STATUSES = ("executed", "validated", "fragment", "unchecked", "failed")


@dataclass
class Judged:
    block: Block
    status: str = "unchecked"
    checker: str = ""
    reason: str = ""  # why a block is unchecked or a fragment; for executed blocks, where it runs
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        b = self.block
        from opslabs.blocks.present import text_hash

        return {"page": b.page, "file": str(b.file), "line": b.line, "index": b.index, "language": b.language,
                "sha": text_hash(b.text),
                "status": self.status, "checker": self.checker, "reason": self.reason, "origin": b.origin,
                "findings": [{"line": f.line, "message": f.message} for f in self.findings]}


def executed_by(block: Block, lab_runs: bool) -> str:
    """Where CI runs this block's text unmodified, or "" when it does not."""
    if not lab_runs:
        return ""
    if block.host and block.after:
        return f"runs in lab host {block.host} after step {block.after}, whose checks then judge its effect"
    if block.origin and ", file " not in block.origin:
        return f"the lab runs it ({block.origin}) and checks its effect"
    return ""


def judge_all(catalog: Catalog, cache: Cache | None = None, problems: list[Problem] | None = None) -> list[Judged]:
    from opslabs.runner import skip_reason

    cache = cache or Cache(None)
    problems = [] if problems is None else problems
    blocks = extract(catalog, problems)
    runs = {f"{t.area_id}/{t.id}": t.task.lab is not None and skip_reason(t.task.lab) is None for t in catalog.tasks()}
    judged = [Judged(b) for b in blocks]
    pending: dict[Checker, list[Judged]] = {}  # checker -> the blocks it must judge
    for j in judged:
        fence = j.block.fence
        if "fragment" in fence.flags:
            j.status, j.reason = "fragment", "a fragment of a larger file"
            continue
        if "output" in fence.flags:
            j.status, j.reason = "unchecked", "output of a command, shown as an example"
            continue
        if "unchecked" in fence.attrs:
            j.status, j.reason = "unchecked", fence.attrs["unchecked"]
            continue
        checker = checker_for(fence.language)
        if checker is None:
            if fence.language in NOT_CODE:
                j.status, j.reason = "unchecked", NOT_CODE[fence.language]
            else:
                problems.append(Problem(j.block.file, j.block.line, j.block.indent + 1, "guide",
                                        f"no checker for ```{fence.language}: add unchecked=\"why it cannot be checked here\" to the fence"))
                j.status, j.reason = "unchecked", f"no checker for {fence.language}"
            continue
        pending.setdefault(checker, []).append(j)
    inputs = checker_inputs()
    for checker, group in pending.items():
        keys = [key(inputs, checker.name, checker.version, j.block.language, json.dumps(j.block.fence.attrs, sort_keys=True), j.block.text) for j in group]
        outcomes: dict[int, Outcome] = {}
        missing = []
        for i, k in enumerate(keys):
            hit = cache.get(k)
            if hit is not None:
                outcomes[i] = Outcome.from_dict(hit)
            else:
                missing.append(i)
        if missing:
            try:
                fresh = checker.judge_many([Item(group[i].block.text, group[i].block.language, group[i].block.fence.attrs) for i in missing])
            except ToolMissing as err:
                fresh = [Outcome(checker.name, unchecked=str(err)) for _ in missing]
            for i, outcome in zip(missing, fresh):
                outcomes[i] = outcome
                if not outcome.unchecked:  # a missing tool is not a verdict worth keeping
                    cache.put(keys[i], outcome.as_dict())
        for i, j in enumerate(group):
            outcome = outcomes[i]
            j.checker, j.findings = outcome.checker, list(outcome.findings)
            if outcome.unchecked:
                j.status, j.reason = "unchecked", outcome.unchecked
            else:
                ran = executed_by(j.block, runs.get(j.block.page, False))
                j.status, j.reason = ("executed", ran) if ran else ("validated", "")
    _lint_joined(judged, cache, inputs)
    for j in judged:
        if j.findings:
            j.status = "failed"
        for finding in j.findings:
            inside = j.block.text and finding.line and not j.block.origin and j.block.exact
            line = j.block.line + finding.line if inside else j.block.line
            where = f" (from {j.block.origin}, line {finding.line})" if j.block.origin and finding.line else \
                f" (line {finding.line} of the block)" if not j.block.exact and finding.line else ""
            problems.append(Problem(j.block.file, line, j.block.indent + 1, "guide" if "/" in j.block.page else "overview",
                                    f"```{j.block.language} block {j.block.index}{where}: {j.checker}: {finding.message}"))
    return judged


def _lint_joined(judged: list[Judged], cache: Cache, inputs: str) -> None:
    """A page's shell blocks run in one terminal, in order: lint them joined for names set in one
    block and used in another (the per-block lint leaves those out)."""
    pages: dict[str, list[Judged]] = {}
    for j in judged:
        if j.block.language in SHELLS and j.status in ("validated", "executed"):
            pages.setdefault(j.block.page, []).append(j)
    todo = []
    for page, group in pages.items():
        text = "\n".join(j.block.text for j in group)
        k = key(inputs, "shellcheck-joined", "2", text)
        hit = cache.get(k)
        if hit is None:
            todo.append((page, group, text, k))
        else:
            _assign(group, [Finding(f["line"], f["message"]) for f in hit["findings"]])
    if todo:
        try:
            results = shell_lint([(text, "bash") for _page, _group, text, _k in todo], include="SC2154")
        except ToolMissing:
            return  # shellcheck cannot run: every shell block is already reported unchecked with the reason
        for (page, group, text, k), found in zip(todo, results):
            cache.put(k, {"findings": [{"line": f.line, "message": f.message} for f in found]})
            _assign(group, found)


def _assign(group: list[Judged], findings: list[Finding]) -> None:
    starts, line = [], 1
    for j in group:
        starts.append(line)
        line += j.block.text.count("\n") + 1
    for finding in findings:
        index = max(i for i, start in enumerate(starts) if start <= max(finding.line, 1))
        group[index].findings.append(Finding(finding.line - starts[index] + 1, finding.message + " (across the page's blocks)"))
