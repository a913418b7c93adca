"""Which checker judges a block: by its language, then (inside the checker) by its shape."""

from __future__ import annotations

from opslabs.blocks.checkers.base import Checker
from opslabs.blocks.checkers.data import (
    HclChecker, IniChecker, JavaScriptChecker, JsonChecker, MarkdownChecker, NginxChecker, TomlChecker,
)
from opslabs.blocks.checkers.dockerfile import Hadolint
from opslabs.blocks.checkers.python_ import PythonChecker
from opslabs.blocks.checkers.shell import ShellCheck
from opslabs.blocks.checkers.sql import SqlChecker
from opslabs.blocks.checkers.yaml_ import YamlChecker

_SHELL, _YAML = ShellCheck(), YamlChecker()
CHECKERS: dict[str, Checker] = {
    "bash": _SHELL, "sh": _SHELL, "shell": _SHELL,
    "yaml": _YAML, "yml": _YAML,
    "json": JsonChecker(),
    "python": PythonChecker(), "py": PythonChecker(),
    "sql": SqlChecker(),
    "hcl": HclChecker(), "terraform": HclChecker(),
    "dockerfile": Hadolint(),
    "nginx": NginxChecker(),
    "ini": IniChecker(), "properties": IniChecker(),
    "toml": TomlChecker(),
    "markdown": MarkdownChecker(), "md": MarkdownChecker(),
    "javascript": JavaScriptChecker(), "js": JavaScriptChecker(),
}
# Languages that are not code: a block in one of them is reported unchecked, with this reason.
NOT_CODE = {"text": "plain text, nothing to run or parse"}


def checker_for(language: str) -> Checker | None:
    return CHECKERS.get(language)
