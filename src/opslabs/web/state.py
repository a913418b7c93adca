"""The workshop server's state in SQLite: its secrets, its learners and their labs.

It lives in the same database file as the learners' step progress (opslabs.store.progress,
keyed by run id), so stopping the server, or losing it, loses no progress: the containers go,
the rows stay, and a returning learner's lab is recreated from them.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from opslabs.errors import UserError
from opslabs.store.sqlite import transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS web_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_learners (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL,
    joined REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_labs (
    learner     TEXT NOT NULL REFERENCES web_learners(id) ON DELETE CASCADE,
    lab         TEXT NOT NULL,
    run_id      TEXT NOT NULL UNIQUE,  -- the io.opslabs.run label, and the progress store's key
    engine      TEXT NOT NULL DEFAULT '',  -- where it runs ('' = the default engine)
    status      TEXT NOT NULL,         -- running | stopped
    note        TEXT NOT NULL DEFAULT '',  -- why it stopped, told to the learner
    last_active REAL NOT NULL,
    last_check  TEXT NOT NULL DEFAULT '',  -- JSON: step, passed, at
    PRIMARY KEY (learner, lab)
);
"""

NAME_MAX = 60


@dataclass(frozen=True)
class Learner:
    id: str
    name: str
    joined: float


@dataclass(frozen=True)
class LearnerLab:
    learner: str
    lab: str
    run_id: str
    engine: str
    status: str
    note: str
    last_active: float
    last_check: dict

    @property
    def running(self) -> bool:
        return self.status == "running"


def clean_name(name: str) -> str:
    """A learner's display name: printable, one line, at most NAME_MAX characters."""
    name = " ".join("".join(ch for ch in name if ch.isprintable()).split())
    if not name:
        raise UserError("enter your name")
    if len(name) > NAME_MAX:
        raise UserError(f"a name has at most {NAME_MAX} characters")
    return name


class WebState:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._ready = False

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, "the workshop state", self._prepare)

    def _prepare(self, db: sqlite3.Connection) -> None:
        if not self._ready:
            # Readers go on while one request writes (the room's pages poll while checks record).
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(SCHEMA)
            self._ready = True

    # --- settings: kept across restarts so cookies, the code and the token stay valid ---

    def setting(self, key: str, make) -> str:
        with self._db() as db:
            row = db.execute("SELECT value FROM web_settings WHERE key = ?", (key,)).fetchone()
            if row:
                return row[0]
            value = make()
            db.execute("INSERT INTO web_settings VALUES (?, ?)", (key, value))
            return value

    def secrets(self) -> dict[str, str]:
        """The cookie signing key, the workshop code learners type, the trainer's token, and
        this workshop's id (the prefix of its containers' owner label)."""
        return {
            "secret_key": self.setting("secret_key", lambda: secrets.token_urlsafe(32)),
            "code": self.setting("code", lambda: "-".join(secrets.token_hex(2) for _ in range(2))),
            "trainer_token": self.setting("trainer_token", lambda: secrets.token_urlsafe(18)),
            "workshop_id": self.setting("workshop_id", lambda: secrets.token_hex(3)),
        }

    # --- learners ---

    def add_learner(self, name: str) -> Learner:
        learner = Learner(secrets.token_hex(6), clean_name(name), time.time())
        with self._db() as db:
            db.execute("INSERT INTO web_learners VALUES (?, ?, ?)", (learner.id, learner.name, learner.joined))
        return learner

    def learner(self, learner_id: str) -> Learner | None:
        with self._db() as db:
            row = db.execute("SELECT id, name, joined FROM web_learners WHERE id = ?", (learner_id,)).fetchone()
        return Learner(*row) if row else None

    def learners(self) -> list[Learner]:
        with self._db() as db:
            return [Learner(*row) for row in db.execute("SELECT id, name, joined FROM web_learners ORDER BY joined")]

    # --- labs ---

    @staticmethod
    def _lab(row) -> LearnerLab:
        return LearnerLab(*row[:7], json.loads(row[7]) if row[7] else {})

    _COLUMNS = "learner, lab, run_id, engine, status, note, last_active, last_check"

    def lab(self, learner: str, lab: str) -> LearnerLab | None:
        with self._db() as db:
            row = db.execute(f"SELECT {self._COLUMNS} FROM web_labs WHERE learner = ? AND lab = ?", (learner, lab)).fetchone()
        return self._lab(row) if row else None

    def labs(self, learner: str | None = None, status: str | None = None) -> list[LearnerLab]:
        query, args = f"SELECT {self._COLUMNS} FROM web_labs WHERE 1", []
        if learner is not None:
            query, args = query + " AND learner = ?", [*args, learner]
        if status is not None:
            query, args = query + " AND status = ?", [*args, status]
        with self._db() as db:
            return [self._lab(row) for row in db.execute(query + " ORDER BY last_active DESC", args)]

    def lab_of_run(self, run_id: str) -> LearnerLab | None:
        with self._db() as db:
            row = db.execute(f"SELECT {self._COLUMNS} FROM web_labs WHERE run_id = ?", (run_id,)).fetchone()
        return self._lab(row) if row else None

    def ensure_lab(self, learner: str, lab: str, run_id: str) -> LearnerLab:
        """The learner's row for this lab, created stopped with a new run id the first time."""
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO web_labs (learner, lab, run_id, status, last_active) VALUES (?, ?, ?, 'stopped', ?)",
                       (learner, lab, run_id, time.time()))
        found = self.lab(learner, lab)
        assert found is not None
        return found

    def set_status(self, learner: str, lab: str, status: str, note: str = "", engine: str | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE web_labs SET status = ?, note = ?, last_active = ? WHERE learner = ? AND lab = ?",
                       (status, note, time.time(), learner, lab))
            if engine is not None:
                db.execute("UPDATE web_labs SET engine = ? WHERE learner = ? AND lab = ?", (engine, learner, lab))

    def touch(self, learner: str, lab: str, when: float | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE web_labs SET last_active = ? WHERE learner = ? AND lab = ?", (when or time.time(), learner, lab))

    def record_check(self, learner: str, lab: str, step: int, passed: bool) -> None:
        value = json.dumps({"step": step, "passed": passed, "at": time.time()})
        with self._db() as db:
            db.execute("UPDATE web_labs SET last_check = ?, last_active = ? WHERE learner = ? AND lab = ?",
                       (value, time.time(), learner, lab))

    def stop_all(self, note: str) -> int:
        """Mark every running lab stopped (the server stopped or restarted)."""
        with self._db() as db:
            return db.execute("UPDATE web_labs SET status = 'stopped', note = ? WHERE status = 'running'", (note,)).rowcount
