"""The results file: what the last verification found, per lab.

Several writers may finish at once (two `opslabs verify` runs, xdist shards, a hook),
so a write is a read-merge-write under an exclusive lock on a lock file beside the
results file, and the new document replaces the old one atomically (a reader never
sees half a file). Records are plain dicts: extra fields (a content hash, the commit,
the date) are kept as they are; `key` says which field identifies a record.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_RESULTS = Path(".opslabs/results.json")
STATUSES = ("passed", "failed", "skipped")
Record = dict[str, Any]


def record_id(record: Record) -> str:
    """Today a result is keyed by its lab id; a later store may key it by a content hash."""
    return record["id"]


def read_results(path: Path, key: Callable[[Record], str] = record_id) -> dict[str, Record]:
    """{key: result}; an absent or unreadable file means nothing was verified yet."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    labs = data.get("labs", []) if isinstance(data, dict) else []
    found = {}
    for lab in labs:
        try:
            found[key(lab)] = lab
        except (KeyError, TypeError):
            continue  # a record without its key cannot be merged: dropped
    return found


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock held by one writer of `path` at a time (flock on `path`.lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge_results(path: Path, labs: list[Record], meta: dict[str, Any], key: Callable[[Record], str] = record_id) -> dict[str, Any]:
    """Add or replace `labs` in the results file, keeping every other record; returns the document.

    The summary counts the merged records, so it stays true whoever wrote last."""
    path = Path(path)
    with locked(path):
        merged = read_results(path, key)
        for lab in labs:
            merged[key(lab)] = lab
        records = sorted(merged.values(), key=key)
        summary = {status: sum(1 for r in records if r.get("status") == status) for status in STATUSES}
        document = {**meta, "summary": summary, "labs": records}
        write_atomically(path, json.dumps(document, indent=2) + "\n")
    return document


def write_atomically(path: Path, text: str) -> None:
    """Replace a file in one step: a reader never sees half of it, a crash leaves no temporary file."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
