"""Checker results by content hash: an unchanged block is not checked twice."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

DEFAULT_CACHE = Path(".opslabs/cache/blocks.json")


def key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


class Cache:
    def __init__(self, path: Path | None = DEFAULT_CACHE):
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
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".blocks-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(kept, handle)
        os.replace(tmp, self.path)
