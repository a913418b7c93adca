"""The store: results merged under a lock by concurrent writers; workshop progress in SQLite;
a host's tmpfs validated at load time (issue 10)."""

import json
import multiprocessing
import textwrap
from pathlib import Path

import pytest

from opslabs.errors import ValidationFailed
from opslabs.load import load_catalog
from opslabs.store.progress import ProgressStore
from opslabs.store.results import merge_results, read_results


def _write_one(path: str, index: int) -> None:
    merge_results(Path(path), [{"id": f"lab-{index:02d}", "status": "failed" if index % 3 == 0 else "passed"}], {"generated": str(index)})


def test_concurrent_writer_processes_keep_every_record(tmp_path):
    path = tmp_path / ".opslabs" / "results.json"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.starmap(_write_one, [(str(path), i) for i in range(40)])
    document = json.loads(path.read_text())
    assert [lab["id"] for lab in document["labs"]] == [f"lab-{i:02d}" for i in range(40)]
    assert document["summary"] == {"passed": 26, "failed": 14, "skipped": 0}
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json", "results.json.lock"]


def test_a_rerun_replaces_its_record_and_keeps_extra_fields(tmp_path):
    path = tmp_path / "r.json"
    merge_results(path, [{"id": "a", "status": "failed", "hash": "1"}, {"id": "b", "status": "passed"}], {})
    merge_results(path, [{"id": "a", "status": "passed", "hash": "2", "commit": "abc"}], {})
    found = read_results(path)
    assert found["a"] == {"id": "a", "status": "passed", "hash": "2", "commit": "abc"}
    assert found["b"]["status"] == "passed"


def test_records_can_be_keyed_by_another_field(tmp_path):
    path = tmp_path / "r.json"
    by_hash = lambda record: record["hash"]  # noqa: E731
    merge_results(path, [{"id": "a", "hash": "h1", "status": "passed"}], {}, key=by_hash)
    merge_results(path, [{"id": "a", "hash": "h2", "status": "failed"}], {}, key=by_hash)
    assert sorted(read_results(path, key=by_hash)) == ["h1", "h2"]


def test_workshop_progress_outlives_the_process_and_is_forgotten_on_stop(tmp_path):
    db = tmp_path / "state" / "opslabs.db"
    ProgressStore(db).begin("run1", "lab-a")
    ProgressStore(db).mark_done("run1", 2)
    ProgressStore(db).mark_done("run1", 1)
    ProgressStore(db).mark_done("run1", 2)
    assert ProgressStore(db).done("run1") == [1, 2]
    assert ProgressStore(db).run("run1").lab == "lab-a"
    ProgressStore(db).forget(["run1"])
    assert ProgressStore(db).done("run1") == [] and ProgressStore(db).run("run1") is None


def test_the_progress_store_location_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPSLABS_STATE_DIR", str(tmp_path / "s"))
    assert ProgressStore().path == tmp_path / "s" / "opslabs.db"
    monkeypatch.delenv("OPSLABS_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert ProgressStore().path == tmp_path / "x" / "opslabs" / "opslabs.db"


TASK = textwrap.dedent("""\
    id: serve
    title: Serve
    summary: s
    level: beginner
    guide: g
    lab:
      duration: 5m
      objectives: [o]
      hosts:
        box:
          tmpfs: {TMPFS}
      steps:
        - title: t
          solution: [{host: box, run: "true"}]
          checks: [{host: box, file: /tmp/x}]
    """)


def _kb(tmp_path: Path, tmpfs: str) -> Path:
    root = tmp_path / "labs"
    (root / "web").mkdir(parents=True)
    (root / "web" / "area.yaml").write_text("id: web\ntitle: Web\norder: 1\nsummary: s\noverview: o\n")
    (root / "web" / "serve.yaml").write_text(TASK.replace("{TMPFS}", tmpfs))
    return root


def test_a_declared_tmpfs_loads(tmp_path):
    catalog = load_catalog(_kb(tmp_path, "{/data: 16m}"))
    assert catalog.find_lab("serve").task.lab.hosts["box"].tmpfs == {"/data": "16m"}


@pytest.mark.parametrize("tmpfs, said", [
    ("{/data: 2g}", "a tmpfs may hold at most 1g, not 2g"),
    ("{/etc: 1m}", "a tmpfs cannot hide the system directory /etc"),
    ("{/: 1m}", "a tmpfs cannot hide the system directory /"),
    ("{/data: lots}", "expected text matching"),
    ("{/a: 1m, /b: 1m, /c: 1m, /d: 1m, /e: 1m}", "at most 4"),
])
def test_a_bad_tmpfs_is_refused_with_its_line(tmp_path, tmpfs, said):
    with pytest.raises(ValidationFailed) as caught:
        load_catalog(_kb(tmp_path, tmpfs))
    text = str(caught.value)
    assert "serve.yaml:11:" in text and "tmpfs" in text and said in text, text
