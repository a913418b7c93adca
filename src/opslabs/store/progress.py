"""Workshop progress in SQLite, on the machine that runs opslabs.

One database per user (the browser workshop of a later issue shares it): a lab that is
running has a row per run (its run id, the label its containers carry), and a row per
step the learner finished. Progress outlives any container of the lab, so a host that
was removed can be recreated and the finished steps replayed.

Location: $OPSLABS_STATE_DIR/opslabs.db, else $XDG_STATE_HOME/opslabs/opslabs.db,
else ~/.local/state/opslabs/opslabs.db.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from opslabs import engine
from opslabs.store.sqlite import transaction

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS workshop_runs (
    run_id  TEXT PRIMARY KEY,      -- the io.opslabs.run label of the lab's containers
    lab     TEXT NOT NULL,
    engine  TEXT NOT NULL,         -- DOCKER_HOST, or "default"
    started TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workshop_steps (
    run_id  TEXT NOT NULL REFERENCES workshop_runs(run_id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,      -- 1-based
    done_at TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
);
"""


def _prepare(db: sqlite3.Connection) -> None:
    if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        db.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")


def default_path() -> Path:
    if os.environ.get("OPSLABS_STATE_DIR"):
        return Path(os.environ["OPSLABS_STATE_DIR"]) / "opslabs.db"
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "opslabs" / "opslabs.db"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def engine_name() -> str:
    return engine.current_url() or "default"  # the engine of this context (engine.using), else DOCKER_HOST


@dataclass(frozen=True)
class Run:
    run_id: str
    lab: str
    engine: str
    started: str


class ProgressStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else default_path()

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, "the workshop progress store", _prepare,
                           hint=" (set OPSLABS_STATE_DIR to a writable folder)")

    def begin(self, run_id: str, lab: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO workshop_runs VALUES (?, ?, ?, ?)", (run_id, lab, engine_name(), _now()))
            db.execute("DELETE FROM workshop_steps WHERE run_id = ?", (run_id,))

    def run(self, run_id: str) -> Run | None:
        with self._db() as db:
            row = db.execute("SELECT run_id, lab, engine, started FROM workshop_runs WHERE run_id = ?", (run_id,)).fetchone()
        return Run(*row) if row else None

    def done(self, run_id: str) -> list[int]:
        with self._db() as db:
            return [step for (step,) in db.execute("SELECT step FROM workshop_steps WHERE run_id = ? ORDER BY step", (run_id,))]

    def mark_done(self, run_id: str, step: int) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO workshop_steps VALUES (?, ?, ?)", (run_id, step, _now()))

    def forget(self, run_ids: list[str]) -> None:
        with self._db() as db:
            db.executemany("DELETE FROM workshop_runs WHERE run_id = ?", [(r,) for r in run_ids])
