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
    assert "--changed: 1 of 2 lab(s) to run (gitflow-release); 1 keep their passing result" in changed.stdout
    assert "gitflow-release.yaml::step1" in changed.stdout and "nginx-load-balancer.yaml::" not in changed.stdout
    after = records_as_written(results)
    assert after["nginx-load-balancer"] == before["nginx-load-balancer"]  # untouched, byte for byte
    assert after["gitflow-release"] != before["gitflow-release"]
    new, old = json.loads(after["gitflow-release"]), json.loads(before["gitflow-release"])
    assert new["status"] == "passed" and new["key"] != old["key"] and new["verified_at"] >= old["verified_at"]

    with capsys.disabled():
        print(f"\n[verify --changed] full warm verify of 2 labs: {full_seconds:.1f} s; --changed with nothing changed: "
              f"{idle_seconds:.1f} s; --changed after touching gitflow-release: {changed_seconds:.1f} s")


def run_on_a_terminal(args: list[str], cwd: Path, env: dict) -> tuple[int, str]:
    """Run opslabs with its output on a pseudo-terminal (120 columns); returns (exit code, screen bytes as text)."""
    import fcntl
    import os
    import struct
    import subprocess
    import sys
    import termios
    import threading

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "opslabs", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process and its children are gone
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    code = proc.wait(timeout=600)
    reader.join(timeout=30)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_progress_is_live_on_a_terminal_and_plain_in_ci_with_two_labs_in_parallel(kb, tmp_path):
    import os
    import re

    args = ["--labs", str(kb), "verify", "-j", "2", *TWO.values(), "--results", str(tmp_path / "r.json")]
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "OPSLABS_PLAIN")} | {"TERM": "xterm"}
    code, screen = run_on_a_terminal(args, tmp_path, env)
    assert code == 0, screen[-3000:]
    assert "\x1b[2K" in screen  # rows redrawn in place
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    # What stays on each screen line: the text after the last erase-line or carriage return.
    lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", re.split(r"\x1b\[2K|\r", chunk.rstrip("\r"))[-1]).rstrip()
             for chunk in screen.split("\n")]
    from opslabs.load import load_catalog

    catalog = load_catalog(kb)
    steps = {lab: len(catalog.find_lab(lab).task.lab.steps) for lab in TWO.values()}  # the labs may gain or lose steps
    for lab, count in steps.items():
        assert re.search(rf"{lab} +step [0-9]+/{count}: ", text), (lab, text[-2000:])
    # pytest's lines for the two labs, printed above the rows, each whole (never cut by a redraw)
    for area, lab in TWO.items():
        for step in range(1, steps[lab] + 1):
            assert any(re.fullmatch(rf"\[gw[01]\] \[ *[0-9]+%\] PASSED \S*labs/{area}/{lab}\.yaml::step{step}", line) for line in lines), \
                (lab, step, lines[-60:])
    assert "labs: 2 passed, 0 failed, 0 skipped" in text

    code, plain = run_on_a_terminal(args, tmp_path, env | {"CI": "true"})
    assert code == 0, plain[-3000:]
    assert "\x1b[2K" not in plain and "\x1b[1A" not in plain  # CI: nothing redrawn, plain lines only
    assert "labs: 2 passed, 0 failed, 0 skipped" in plain
