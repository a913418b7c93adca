"""One error root. A UserError is printed without a traceback; the CLI maps it to exit 1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class OpslabsError(Exception):
    """Anything opslabs raises on purpose."""


class UserError(OpslabsError):
    """Bad input or an unusable environment: the message tells the user what to do."""


@dataclass(frozen=True, order=True)
class Problem:
    path: Path
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ValidationFailed(UserError):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        count = len(self.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__("\n".join([*map(str, self.problems), summary]))


class EngineUnavailable(UserError):
    """No Docker engine answers (and none could be started)."""


class ImageUnavailable(UserError):
    """A lab's base image is neither local, nor pullable, nor bootstrappable."""
