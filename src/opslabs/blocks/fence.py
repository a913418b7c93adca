"""The fence info string: a language, then words and key=value attributes for the checkers.

    ```sql dialect=mysql            a dialect for the SQL checker
    ```yaml fragment                part of a larger file: reported, not counted as validated
    ```text output                  what a command prints
    ```bash from=solution:2         the text is lab step 2's solution (single source)
    ```bash run=app after=3         executed in lab host `app` after step 3's solution
    ```groovy unchecked="needs a Jenkins controller"
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

FLAGS = {"fragment", "output"}
SHELLS = ("bash", "sh", "shell")  # languages the runner can run (run=HOST after=STEP)
KEYS = {"dialect", "from", "run", "after", "unchecked", "shape", "title"}


class FenceError(ValueError):
    pass


@dataclass(frozen=True)
class Fence:
    language: str
    flags: frozenset[str] = frozenset()
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def rendered_info(self) -> str:
        """The info string MkDocs and Material see: the language (and a title, which Material shows)."""
        title = self.attrs.get("title", "").replace('"', "'")  # a quote would end the attribute
        return self.language + (f' title="{title}"' if title else "")


def parse_info(info: str) -> Fence:
    try:
        words = shlex.split(info)
    except ValueError as err:
        raise FenceError(f"cannot read the fence's attributes ({err}); quote values with \"...\"") from None
    if not words:
        return Fence("")
    language, flags, attrs = words[0].lower(), set(), {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq:
            if word not in FLAGS:
                raise FenceError(f"unknown fence flag {word!r} (expected one of: {', '.join(sorted(FLAGS))})")
            flags.add(word)
        elif key not in KEYS:
            raise FenceError(f"unknown fence attribute {key!r} (expected one of: {', '.join(sorted(KEYS))})")
        elif not value:
            raise FenceError(f"fence attribute {key}= needs a value")
        else:
            attrs[key] = value
    if ("run" in attrs) != ("after" in attrs):
        raise FenceError("run=HOST and after=STEP go together: the block runs in that lab host after that step")
    return Fence(language, frozenset(flags), attrs)
