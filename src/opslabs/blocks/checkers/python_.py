"""Python: the compiler, then pyflakes (undefined names, unused imports, …)."""

from __future__ import annotations

from opslabs.blocks.checkers.base import Checker, Finding, Item, Outcome


class PythonChecker(Checker):
    name = "pyflakes"
    version = "4.1.0-1"

    def judge(self, item: Item) -> Outcome:
        from pyflakes import api, reporter

        found: list[Finding] = []

        class Collect(reporter.Reporter):
            def __init__(self):
                pass

            def unexpectedError(self, filename, message):
                found.append(Finding(0, str(message)))

            def syntaxError(self, filename, message, lineno, offset, text):
                found.append(Finding(lineno or 0, f"syntax error: {message}"))

            def flake(self, message):
                found.append(Finding(message.lineno, message.message % message.message_args))

        api.check(item.text, "block.py", Collect())
        return Outcome(self.name, tuple(found))
