"""Markdown mistakes that still render, but wrongly: caught before the site is built.

Python-Markdown (which MkDocs uses) needs list content indented by four spaces; with
three, a numbered procedure falls apart into separate lists that all start at 1.
"""

from __future__ import annotations

import re

FENCE = re.compile(r"^(\s*)(```+|~~~+)(.*)$")


def lint_markdown(text: str) -> list[tuple[int, str]]:
    """(line number within text, message) for each problem."""
    problems: list[tuple[int, str]] = []
    opened: tuple[int, str] | None = None  # (line, fence) of the open code block
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line.expandtabs(4))
        if not match:
            continue
        indent, ticks, info = match.groups()
        if opened is None:
            opened = (number, ticks)
            if not info.strip():
                problems.append((number, "code block without a language (write ```bash, ```yaml, ```text …)"))
            if len(indent) % 4:
                problems.append((number, f"code block indented by {len(indent)} spaces; content of a list item needs 4 (or 8, 12 …)"))
        elif ticks.startswith(opened[1]) and not info.strip():
            opened = None
    if opened is not None:
        problems.append((opened[0], "code block is never closed"))
    return problems
