"""One SQLite write transaction on a database file, shared by the progress store and the workshop state."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from opslabs.errors import UserError


@contextmanager
def transaction(path: Path, what: str, prepare: Callable[[sqlite3.Connection], None] | None = None,
                hint: str = "") -> Iterator[sqlite3.Connection]:
    """A connection to `path` inside BEGIN IMMEDIATE: committed when the block ends, rolled back if it raises.

    Foreign keys are on. `prepare` runs first, outside the transaction (schema, journal mode).
    Concurrent writers wait up to 30 s for each other instead of failing. Any SQLite error,
    opening included, becomes a UserError naming `what` and `path` (`hint` follows an open error)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
    except (OSError, sqlite3.Error) as err:
        raise UserError(f"cannot open {what} {path}: {err}{hint}") from None
    try:
        db.execute("PRAGMA foreign_keys = ON")
        if prepare:
            prepare(db)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as err:
        raise UserError(f"{what} {path} failed: {err}") from None
    finally:
        db.close()
