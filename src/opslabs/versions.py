"""One place for the versions guides share: `labs/versions.yaml`, referenced from guide text.

A guide writes `[[uses:actions/checkout]]` for `actions/checkout@v5` and `[[version:trivy]]`
for `0.68.1`; the loader substitutes them (line for line), so two guides cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PLACEHOLDER = re.compile(r"\[\[(uses|version):([A-Za-z0-9_.\-/]+)\]\]")
# What starts one, written well or not: a malformed one would reach the page as written.
OPENING = re.compile(r"\[\[\s*(uses|version)\s*:")
FILE = "versions.yaml"


@dataclass(frozen=True)
class Versions:
    actions: dict[str, str] = field(default_factory=dict)  # owner/action -> major (v5)
    tools: dict[str, str] = field(default_factory=dict)  # tool -> version

    def expand(self, text: str) -> tuple[str, list[tuple[int, str]]]:
        """Substitute every placeholder; returns the text and [(line offset, problem)] for unknown names."""
        problems: list[tuple[int, str]] = []

        def substitute(match: re.Match) -> str:
            kind, name = match.groups()
            table = self.actions if kind == "uses" else self.tools
            if name not in table:
                line = text.count("\n", 0, match.start())
                known = ", ".join(sorted(table)) or "none"
                problems.append((line, f"[[{kind}:{name}]]: {name!r} is not in {FILE} under "
                                       f"{'actions' if kind == 'uses' else 'tools'} (known: {known})"))
                return match.group(0)
            return f"{name}@{table[name]}" if kind == "uses" else table[name]

        expanded = PLACEHOLDER.sub(substitute, text)
        wellformed = {match.start() for match in PLACEHOLDER.finditer(text)}
        for match in OPENING.finditer(text):
            if match.start() not in wellformed:
                written = text[match.start():].split("\n", 1)[0][:40]
                problems.append((text.count("\n", 0, match.start()),
                                 f"{written!r}: a placeholder is written [[{match.group(1)}:NAME]], NAME of letters, "
                                 f"digits and . _ - / with no spaces, closed by ]]"))
        return expanded, problems
