"""The shared SQLite transaction: committed on success, rolled back on an exception, errors told as UserError."""

import sqlite3

import pytest

from opslabs.errors import UserError
from opslabs.store.sqlite import transaction


def _schema(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")


def _rows(path) -> list[str]:
    with transaction(path, "the test db", _schema) as db:
        return [k for (k,) in db.execute("SELECT k FROM t ORDER BY k")]


def test_a_committed_row_is_seen_by_the_next_connection(tmp_path):
    path = tmp_path / "sub" / "t.db"  # the folder is made
    with transaction(path, "the test db", _schema) as db:
        db.execute("INSERT INTO t VALUES ('a')")
    assert _rows(path) == ["a"]


def test_an_exception_in_the_block_rolls_back_and_propagates(tmp_path):
    path = tmp_path / "t.db"
    with pytest.raises(RuntimeError, match="boom"):
        with transaction(path, "the test db", _schema) as db:
            db.execute("INSERT INTO t VALUES ('a')")
            raise RuntimeError("boom")
    assert _rows(path) == []


def test_foreign_keys_are_enforced_and_sqlite_errors_become_user_errors(tmp_path):
    path = tmp_path / "t.db"

    def schema(db):
        db.executescript("CREATE TABLE IF NOT EXISTS p (id TEXT PRIMARY KEY);"
                         "CREATE TABLE IF NOT EXISTS c (p TEXT NOT NULL REFERENCES p(id));")

    with pytest.raises(UserError, match=r"^the test db .*t\.db failed: FOREIGN KEY constraint failed$"):
        with transaction(path, "the test db", schema) as db:
            db.execute("INSERT INTO c VALUES ('missing')")


def test_an_unopenable_path_is_a_user_error_with_the_hint(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"^cannot open the test db .*file/t\.db: .* \(a hint\)$"):
        with transaction(tmp_path / "file" / "t.db", "the test db", hint=" (a hint)"):
            pass
