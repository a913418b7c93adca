"""The results file: what the last verification found, per lab.

Several writers may finish at once (two `opslabs verify` runs, xdist shards, a hook),
so a write is a read-merge-write under an exclusive lock on a lock file beside the
results file, and the new document replaces the old one atomically (a reader never
sees half a file). Records are plain dicts: extra fields are kept as they are; `key` says
which field identifies a record (the lab id).

Each lab's record carries `key` (its content hash, store/keys.py), `status`, `duration`,
`verified_at` (when it ran, UTC) and `commit` (the content repository's HEAD, or null).
`opslabs verify --changed` reruns only labs whose key has no passing record (store/plan.py).

Between CI runs the store travels with the published site: the site build copies this file
to `opslabs-results.json` (PUBLISHED_NAME), and the next run merges it back in first
(`opslabs verify --baseline URL`, or `opslabs results merge URL`): per lab, the record
verified last wins.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from opslabs.errors import UserError

DEFAULT_RESULTS = Path(".opslabs/results.json")
STATUSES = ("passed", "failed", "skipped")
PUBLISHED_NAME = "opslabs-results.json"  # the results file's name in a built site
MAX_SOURCE_BYTES = 64 << 20
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


def merge_results(path: Path, labs: list[Record], meta: dict[str, Any] | None, key: Callable[[Record], str] = record_id,
                  newer_only: bool = False) -> dict[str, Any]:
    """Add or replace `labs` in the results file, keeping every other record; returns the document.

    `meta` (None: the file's own) becomes the top-level fields. With `newer_only` a record
    replaces a stored one only when it was verified later (merging a baseline or a shard's file).
    The summary counts the merged records, so it stays true whoever wrote last."""
    path = Path(path)
    with locked(path):
        if meta is None:
            meta = {k: v for k, v in _read_document(path).items() if k not in ("summary", "labs")}
        merged = read_results(path, key)
        for lab in labs:
            old = merged.get(key(lab))
            if not newer_only or old is None or verified_at(lab) > verified_at(old):
                merged[key(lab)] = lab
        records = sorted(merged.values(), key=key)
        summary = {status: sum(1 for r in records if r.get("status") == status) for status in STATUSES}
        document = {**meta, "summary": summary, "labs": records}
        write_atomically(path, json.dumps(document, indent=2) + "\n")
    return document


def verified_at(record: Record) -> str:
    """When a record's run finished (ISO 8601, UTC: compares as text); older files say `finished`."""
    return str(record.get("verified_at") or record.get("finished") or "")


def _read_document(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class SourceUnavailable(UserError):
    """A baseline results file that could not be read: nothing is taken from it."""


def read_source(source: str) -> list[Record]:
    """The lab records of a results file at a path or an http(s) URL (a published site's
    opslabs-results.json). Raises SourceUnavailable saying why."""
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=30) as response:  # noqa: S310 (http(s) only)
                raw = response.read(MAX_SOURCE_BYTES + 1)
        elif "://" in source:
            raise SourceUnavailable(f"{source}: expected a path or an http(s) URL")
        else:
            raw = Path(source).read_bytes()[:MAX_SOURCE_BYTES + 1]
    except urllib.error.HTTPError as err:
        raise SourceUnavailable(f"{source}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise SourceUnavailable(f"{source}: cannot be reached ({err.reason})") from None
    except (OSError, ValueError) as err:
        raise SourceUnavailable(f"{source}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if len(raw) > MAX_SOURCE_BYTES:
        raise SourceUnavailable(f"{source}: larger than {MAX_SOURCE_BYTES >> 20} MB, not a results file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise SourceUnavailable(f"{source}: not a results file (invalid JSON: {err})") from None
    labs = data.get("labs") if isinstance(data, dict) else None
    if not isinstance(labs, list):
        raise SourceUnavailable(f"{source}: not a results file (expected an object with a `labs` list)")
    return [lab for lab in labs if isinstance(lab, dict) and isinstance(lab.get("id"), str)]


def merge_sources(path: Path, sources: list[str]) -> list[tuple[str, int | str]]:
    """Merge the records of each source into the results file at `path`, the newer record per
    lab winning. Returns [(source, records read)] or [(source, why it was unavailable)]."""
    outcome: list[tuple[str, int | str]] = []
    for source in sources:
        try:
            records = read_source(source)
        except SourceUnavailable as err:
            outcome.append((source, str(err)))
            continue
        merge_results(path, records, None, newer_only=True)
        outcome.append((source, len(records)))
    return outcome


def published_results(path: Path) -> str | None:
    """The results file as a built site carries it (PUBLISHED_NAME), so the next CI run can
    take it as its baseline; None when nothing was verified yet (or the file is unreadable)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError):
        return None
    return text if isinstance(data, dict) and isinstance(data.get("labs"), list) else None


def publish_results(path: Path, out_dir: Path) -> Path | None:
    """Put the results file into the pages folder as PUBLISHED_NAME, for site generators that run
    no plugin (Zensical copies it like any file); None when there is nothing to publish."""
    text = published_results(path)
    if text is None:
        return None
    target = Path(out_dir) / PUBLISHED_NAME
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, text)
    return target


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
