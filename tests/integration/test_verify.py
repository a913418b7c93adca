"""`opslabs verify` end to end: real containers, real checks, honest results, no leftovers."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from opslabs import engine
from opslabs.catalog import TaskEntry
from opslabs.load import load_catalog
from opslabs.runner import LabEnvironment

from conftest import BROKEN, LABS, leftovers, opslabs, read_json


def test_every_check_kind_passes_against_real_state_and_skips_are_not_passes(tmp_path):
    results, junit = tmp_path / "r.json", tmp_path / "junit.xml"
    proc = opslabs("verify", "all-checks", "needs-kubernetes", "--results", str(results), "--junit", str(junit))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "warnings summary" not in proc.stdout  # testinfra's assert-rewrite warning was on every run
    cpu = re.search(r"^lab hosts' CPU: ([0-9.]+) s over 1 lab\(s\)", proc.stdout, re.M)
    assert cpu and float(cpu.group(1)) > 0  # nginx and apt ran; the skipped lab has no figure
    labs = read_json(results)["labs"]
    by_id = {lab["id"]: lab for lab in labs}
    assert by_id["all-checks"]["status"] == "passed"
    assert [s["status"] for s in by_id["all-checks"]["steps"]] == ["passed", "passed", "passed"]
    assert all(c["passed"] for s in by_id["all-checks"]["steps"] for c in s["checks"])
    assert len(by_id["all-checks"]["steps"][1]["checks"]) == 7
    assert by_id["needs-kubernetes"]["status"] == "skipped"
    assert "requires kubernetes" in by_id["needs-kubernetes"]["reason"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert len(by_id["all-checks"]["steps"][2]["checks"]) == 7  # the negative forms
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "0", "1")
    assert leftovers({"lab": "all-checks"}) == ([], [])


def test_the_precheck_runs_only_the_checks_that_must_fail_first(tmp_path):
    """A `precheck: false` check proves nothing before the solution; running it there only cost time
    (the ansible lab's pre-check ran a whole playbook for one). The fixture's check counts its runs."""
    results = tmp_path / "r.json"
    proc = opslabs("verify", "precheck-scope", "--results", str(results))
    assert proc.returncode == 0, proc.stdout[-3000:]
    lab = read_json(results)["labs"][0]
    assert [s["status"] for s in lab["steps"]] == ["passed", "passed"]
    assert [c["index"] for c in lab["steps"][0]["checks"]] == [1, 2]


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("broken") / "r.json"
    proc = opslabs("verify", "-j", "2", "--results", str(results), labs=BROKEN)
    return proc, read_json(results)


def test_broken_labs_fail_and_exit_nonzero(broken_run):
    proc, results = broken_run
    assert proc.returncode == 1
    assert {lab["id"]: lab["status"] for lab in results["labs"]} == {
        "wrong-solution": "failed", "passes-before": "failed", "hangs": "failed", "failing-command": "failed",
        "bad-setup": "failed",
    }
    assert "labs: 0 passed, 5 failed, 0 skipped" in proc.stdout


def test_a_failing_setup_fails_the_lab_naming_host_and_command(broken_run):
    out = broken_run[0].stdout
    assert "lab bad-setup: setup of host 'box' exited with 100" in out
    assert "command: echo preparing && apt-get install -y -qq no-such-package-opslabs" in out
    assert "E: Unable to locate package no-such-package-opslabs" in out


def test_wrong_solution_names_step_host_check_expected_and_actual(broken_run):
    out = broken_run[0].stdout
    assert "lab wrong-solution, step 1 (Write the greeting): check 1 (file on host 'box') failed after the solution" in out
    assert "message: The greeting should say hello." in out
    assert "expected: the file contains 'hello'" in out
    assert "actual:   it does not; the file: 'goodbye'" in out


def test_check_passing_before_the_solution_proves_nothing(broken_run):
    out = broken_run[0].stdout
    assert "lab passes-before, step 1 (Create a directory): check 2 (file on host 'box') already passes before the solution, so it proves nothing" in out
    assert "check 1 (file" not in out.split("lab passes-before")[1].split("____")[0]


def test_hanging_solution_fails_at_its_timeout(broken_run):
    out = broken_run[0].stdout
    assert "lab hangs, step 1 (Wait forever): the solution on host 'box' did not finish within 3 s" in out
    step = next(lab for lab in broken_run[1]["labs"] if lab["id"] == "hangs")
    assert step["duration"] < 30


def test_failing_command_reports_exit_code_and_output_and_stops(broken_run):
    out = broken_run[0].stdout
    assert "lab failing-command, step 1 (Copy a missing file): the solution on host 'box' exited with 1" in out
    assert "cp: cannot stat '/nonexistent': No such file or directory" in out


@pytest.mark.parametrize("lab", ["wrong-solution", "passes-before", "hangs", "failing-command", "bad-setup"])
def test_broken_runs_leave_nothing_behind(broken_run, lab):
    assert leftovers({"lab": lab}) == ([], [])


def test_plain_pytest_collects_labs_and_picks_with_k(tmp_path):
    shutil.copytree(BROKEN, tmp_path / "labs")  # outside tests/, whose conftest ignores fixtures
    proc = subprocess.run([sys.executable, "-m", "pytest", "labs/", "-k", "wrong", "-q", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "1 failed, 4 deselected" in proc.stdout
    assert proc.returncode == 1


def _lab(lab_id: str) -> TaskEntry:
    return load_catalog(LABS).find_lab(lab_id)


def test_second_run_of_an_unchanged_lab_reuses_the_setup_layer():
    entry = _lab("all-checks")
    with LabEnvironment(entry) as first:
        pass
    with LabEnvironment(entry) as second:
        assert second.built == []
        assert second.host("web").package("nginx").is_installed
    assert first.network != second.network


def _wait_for_containers(run_filter: dict, count: int, timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in engine.find("container", run_filter) if c.get(f"{engine.LABEL}.kind") == "run"]
        if len(found) >= count:
            return found
        time.sleep(0.3)
    raise AssertionError("the lab's containers never appeared")


def _start_verify(tmp_path) -> subprocess.Popen:
    # Output to a file: nobody reads a pipe here. SIGINT back to its default, as in a terminal: a
    # suite started in the background (`make test &`) ignores SIGINT, the child would inherit that,
    # and Python then installs no Ctrl-C handler at all (the run went on, in CI).
    with open(tmp_path / "verify.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "opslabs", "--labs", str(LABS), "verify", "slow-step",
                                 "--results", str(tmp_path / "r.json")],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_removes_its_containers_and_network(tmp_path, sig):
    proc = _start_verify(tmp_path)
    _wait_for_containers({"lab": "slow-step"}, 2)
    time.sleep(1.0)  # inside the step's `sleep 90`
    os.killpg(proc.pid, sig)  # as Ctrl-C does: the whole process group
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert leftovers({"lab": "slow-step"}) == ([], [])


def test_after_kill_9_gc_and_the_next_run_clear_the_leftovers(tmp_path):
    proc = _start_verify(tmp_path)
    _wait_for_containers({"lab": "slow-step"}, 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    containers, networks = leftovers({"lab": "slow-step"})
    assert len(containers) == 2 and len(networks) == 1, "kill -9 leaves the run's containers behind"
    gc = opslabs("gc")
    assert gc.returncode == 0 and gc.stdout.startswith("removed ")
    assert leftovers({"lab": "slow-step"}) == ([], [])

    proc = _start_verify(tmp_path)  # and the next run collects what a killed run left
    _wait_for_containers({"lab": "slow-step"}, 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(leftovers({"lab": "slow-step"})[0]) == 2
    run = opslabs("verify", "needs-kubernetes", "all-checks", "--results", str(tmp_path / "r2.json"))
    assert run.returncode == 0, run.stdout[-2000:]
    assert leftovers({"lab": "slow-step"}) == ([], [])
    assert leftovers({"lab": "all-checks"}) == ([], [])


def test_gc_leaves_live_runs_alone(tmp_path):
    proc = _start_verify(tmp_path)
    try:
        _wait_for_containers({"lab": "slow-step"}, 2)
        assert opslabs("gc").returncode == 0
        assert len(leftovers({"lab": "slow-step"})[0]) == 2, "gc must not touch a live run"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("verify did not stop within 60 s of Ctrl-C; its output:\n"
                                 + (tmp_path / "verify.log").read_text(errors="replace")[-3000:]) from None
    assert leftovers({"lab": "slow-step"}) == ([], [])


def test_without_an_engine_labs_are_skipped_with_the_reason_never_passed(tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    results = tmp_path / "r.json"
    proc = opslabs("verify", "two-part", "--results", str(results), env=env)
    assert "warning: no Docker engine answers at DOCKER_HOST=" in proc.stderr
    [lab] = read_json(results)["labs"]
    assert lab["status"] == "skipped" and "no Docker engine answers" in lab["reason"]
    assert "labs: 0 passed, 0 failed, 1 skipped" in proc.stdout


def test_any_knowledge_base_folder_works_and_results_merge(tmp_path):
    kb = tmp_path / "kb" / "fixtures"
    kb.mkdir(parents=True)
    for name in ("area.yaml", "two-part.yaml"):
        shutil.copy(LABS / "fixtures" / name, kb / name)
    results = tmp_path / "r.json"
    results.write_text('{"labs": [{"id": "earlier-lab", "status": "passed", "duration": 1}]}')
    proc = opslabs("verify", "two-part", "--results", str(results), labs=tmp_path / "kb")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "labs: 1 passed, 0 failed, 0 skipped" in proc.stdout
    assert {lab["id"]: lab["status"] for lab in read_json(results)["labs"]} == {"earlier-lab": "passed", "two-part": "passed"}
