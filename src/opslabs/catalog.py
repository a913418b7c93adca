"""The loaded knowledge base: areas and tasks with where each came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from opslabs.model import Area, Task
from opslabs.versions import Versions

# A location inside a YAML file: field path -> (line, column), both 1-based.
Marks = dict[tuple, tuple[int, int]]


def deepest_mark(marks: Marks, loc: tuple) -> tuple[int, int]:
    """Best (line, column) for a field path: that of the deepest prefix that has a mark."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return (1, 1)


@dataclass(frozen=True)
class TaskEntry:
    task: Task
    area_id: str
    path: Path
    marks: Marks = field(default_factory=dict, repr=False, compare=False)
    text_start: int | None = None  # file line where the guide's text begins (a `|` block)

    @property
    def id(self) -> str:
        return self.task.id

    def line_of(self, *loc: str | int) -> int:
        return deepest_mark(self.marks, loc)[0]


@dataclass(frozen=True)
class AreaEntry:
    area: Area
    path: Path
    tasks: tuple[TaskEntry, ...]
    text_start: int | None = None  # file line where the overview's text begins
    marks: Marks = field(default_factory=dict, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.area.id


@dataclass(frozen=True)
class Catalog:
    root: Path
    areas: tuple[AreaEntry, ...]
    versions: Versions = Versions()

    def tasks(self) -> list[TaskEntry]:
        return [task for area in self.areas for task in area.tasks]

    def labs(self) -> list[TaskEntry]:
        return [task for task in self.tasks() if task.task.lab is not None]

    def area(self, area_id: str) -> AreaEntry:
        return next(a for a in self.areas if a.id == area_id)

    def find_lab(self, lab_id: str) -> TaskEntry | None:
        return next((t for t in self.labs() if t.id == lab_id), None)
