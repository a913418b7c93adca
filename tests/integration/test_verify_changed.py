"""`opslabs verify --changed` (issue 12): after one lab's YAML is touched, exactly that lab runs
again; the other keeps its record byte for byte. Two fast labs of this knowledge base, copied."""

import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import opslabs, read_json

REPO_LABS = Path(__file__).resolve().parents[2] / "labs"
TWO = {"networking": "nginx-load-balancer", "source-control": "gitflow-release"}


@pytest.fixture(scope="module")
def kb(tmp_path_factory) -> Path:
    """A knowledge base of just the two labs (and the versions they may use)."""
    root = tmp_path_factory.mktemp("changed") / "labs"
    for area, lab in TWO.items():
        (root / area).mkdir(parents=True)
        shutil.copy(REPO_LABS / area / "area.yaml", root / area / "area.yaml")
        shutil.copy(REPO_LABS / area / f"{lab}.yaml", root / area / f"{lab}.yaml")
    if (REPO_LABS / "versions.yaml").exists():
        shutil.copy(REPO_LABS / "versions.yaml", root / "versions.yaml")
    return root


def records_as_written(path: Path) -> dict[str, str]:
    """Each lab's record exactly as the results file holds it (its text, not just its value)."""
    text = path.read_text()
    labs = json.loads(text)["labs"]
    return {lab["id"]: json.dumps(lab, indent=2) for lab in labs}


def timed(*args, **kwargs):
    started = time.monotonic()
    proc = opslabs(*args, **kwargs)
    return proc, time.monotonic() - started


def test_changed_reruns_exactly_the_touched_lab_and_keeps_the_other_record(kb, tmp_path, capsys):
    results = tmp_path / "results.json"
    labs = list(TWO.values())
    # Warm the setup layers first (a run that may build them), so the two runs timed below compare alike.
    warm, _ = timed("verify", *labs, "--results", str(tmp_path / "warm.json"), labs=kb, cwd=tmp_path)
    assert warm.returncode == 0, warm.stdout[-3000:] + warm.stderr[-2000:]

    full, full_seconds = timed("verify", *labs, "--results", str(results), labs=kb, cwd=tmp_path)
    assert full.returncode == 0, full.stdout[-3000:] + full.stderr[-2000:]
    first = read_json(results)
    by_id = {lab["id"]: lab for lab in first["labs"]}
    assert {lab: by_id[lab]["status"] for lab in labs} == {lab: "passed" for lab in labs}
    for lab in labs:
        assert len(by_id[lab]["key"]) == 64 and by_id[lab]["verified_at"].startswith("20")
        assert "commit" in by_id[lab] and by_id[lab]["commit"] is None  # a temporary copy is no repository
    before = records_as_written(results)

    # Nothing changed: nothing runs.
    idle, idle_seconds = timed("verify", "--changed", *labs, "--results", str(results), labs=kb, cwd=tmp_path)
    assert idle.returncode == 0, idle.stdout[-3000:]
    assert "--changed: 0 of 2 lab(s) to run" in idle.stdout and "nothing to run" in idle.stdout
    assert records_as_written(results) == before

    touched = kb / "source-control" / "gitflow-release.yaml"
    touched.write_text(touched.read_text() + "# touched\n")
    changed, changed_seconds = timed("verify", "--changed", *labs, "--results", str(results), labs=kb, cwd=tmp_path)
    assert changed.returncode == 0, changed.stdout[-3000:] + changed.stderr[-2000:]
    assert "--changed: 1 of 2 lab(s) to run; 1 keep their passing result" in changed.stdout
    assert "gitflow-release.yaml::step1" in changed.stdout and "nginx-load-balancer.yaml::" not in changed.stdout
    after = records_as_written(results)
    assert after["nginx-load-balancer"] == before["nginx-load-balancer"]  # untouched, byte for byte
    assert after["gitflow-release"] != before["gitflow-release"]
    new, old = json.loads(after["gitflow-release"]), json.loads(before["gitflow-release"])
    assert new["status"] == "passed" and new["key"] != old["key"] and new["verified_at"] >= old["verified_at"]

    with capsys.disabled():
        print(f"\n[verify --changed] full warm verify of 2 labs: {full_seconds:.1f} s; --changed with nothing changed: "
              f"{idle_seconds:.1f} s; --changed after touching gitflow-release: {changed_seconds:.1f} s")
