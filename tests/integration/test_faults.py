"""Faults in the middle of a run (issue 10): concurrent result writers, an engine that stops,
a disk that fills up, learner commands that kill processes."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from opslabs import engine

from conftest import FIXTURES, LABS, leftovers, opslabs, read_json

FAULTS = FIXTURES / "faults" / "labs"


def test_two_verify_runs_at_once_keep_both_results(tmp_path):
    """Both runs read the (empty) file when they start and write when they end: before the
    store merged under a lock, the last writer dropped the other run's lab."""
    results = tmp_path / "shared.json"
    runs = [subprocess.Popen([sys.executable, "-m", "opslabs", "--labs", str(LABS), "verify", lab, "-q", "--results", str(results)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for lab in ("two-part", "slow-step")]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    document = read_json(results)
    assert {lab["id"]: lab["status"] for lab in document["labs"]} == {"slow-step": "passed", "two-part": "passed"}
    assert document["summary"] == {"passed": 2, "failed": 0, "skipped": 0}
    assert not list(tmp_path.glob("*.tmp"))  # no half-written file left beside it


def test_many_concurrent_writers_lose_nothing(tmp_path):
    from opslabs.store.results import merge_results, read_results

    path = tmp_path / "r.json"
    threads = [threading.Thread(target=merge_results, args=(path, [{"id": f"lab-{i}", "status": "passed", "hash": str(i)}], {"generated": "now"}))
               for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = read_results(path)
    assert sorted(found) == sorted(f"lab-{i}" for i in range(20))
    assert found["lab-7"]["hash"] == "7"  # extra fields are kept as they are


@pytest.fixture(scope="module")
def faults_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("faults") / "r.json"
    proc = opslabs("verify", "runaway-sleep", "shell-killer", "disk-full", "-j", "2", "--results", str(results), labs=FAULTS)
    return proc, {lab["id"]: lab for lab in read_json(results)["labs"]}


def test_pkill_sleep_leaves_the_host_running(faults_run):
    """The old keep-alive was a `sleep` under --init: `pkill -x sleep` ended the container."""
    proc, labs = faults_run
    assert labs["runaway-sleep"]["status"] == "passed", proc.stdout[-3000:]
    assert [s["status"] for s in labs["runaway-sleep"]["steps"]] == ["passed", "passed"]


def test_a_solution_that_kills_its_shell_is_reported_as_killed(faults_run):
    proc, labs = faults_run
    assert labs["shell-killer"]["status"] == "failed"
    message = labs["shell-killer"]["steps"][0]["message"]
    assert "the solution on host 'box' ended its shell: the shell on" in message
    assert "was killed by signal 15 (SIGTERM)" in message
    assert "did the command call `exit`" not in message


def test_a_full_disk_fails_the_step_saying_so(faults_run):
    proc, labs = faults_run
    message = labs["disk-full"]["steps"][0]["message"]
    assert labs["disk-full"]["status"] == "failed"
    assert "exited with 1: host 'box' ran out of disk space (/data (16m tmpfs) is full)" in message
    assert "No space left on device" in message


def test_fault_labs_leave_nothing_behind(faults_run):
    for lab in ("runaway-sleep", "shell-killer", "disk-full"):
        assert leftovers({"lab": lab}) == ([], [])


def test_the_engine_stopping_mid_lab_gives_one_sentence_and_the_next_run_works(second_engine, tmp_path):
    env = second_engine.env()
    results = tmp_path / "r.json"
    command = [sys.executable, "-m", "opslabs", "--labs", str(FAULTS), "verify", "engine-stops", "--results", str(results)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # Wait until step 1's solution runs in the lab's host on the second daemon, then stop that daemon.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        names = subprocess.run(["docker", "ps", "--filter", "label=io.opslabs.lab=engine-stops", "--format", "{{.Names}}"],
                               capture_output=True, text=True, env=env).stdout.split()
        if names and subprocess.run(["docker", "exec", names[0], "test", "-e", "/tmp/started"], env=env).returncode == 0:
            break
        time.sleep(0.2)
    else:
        run.kill()
        pytest.fail("step 1 never started on the second daemon")
    second_engine.stop(signal.SIGTERM)
    out, err = run.communicate(timeout=180)
    second_engine.start()
    assert run.returncode == 1
    assert "Traceback" not in out + err and "session.py" not in out + err
    sentence = "lab engine-stops: the Docker engine at " + second_engine.host + " stopped answering in the middle of the lab"
    assert sentence in out
    lab = read_json(results)["labs"][0]
    assert lab["status"] == "failed" and lab["steps"][0]["message"].startswith(sentence)
    assert lab["steps"][1]["status"] == "skipped"
    # The engine is back: the next run cleans up what the interrupted one left and passes.
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:]
    assert read_json(results)["labs"][0]["status"] == "passed"
    left = subprocess.run(["docker", "ps", "-a", "--filter", "label=io.opslabs.lab=engine-stops", "-q"], capture_output=True, text=True, env=env)
    assert left.stdout.split() == []
