"""Issue 10, run time, against real containers: output that is not text, checks bounded by
the lab's own timeouts, out-of-memory kills named, and privileges only by the operator's flag."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, leftovers, opslabs, read_json

HOSTILE = FIXTURES / "hostile" / "labs"
PRIVILEGED = FIXTURES / "privileged" / "labs"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("hostile") / "r.json"
    proc = opslabs("verify", "-j", "2", "--results", str(results), labs=HOSTILE)
    labs = {lab["id"]: lab for lab in read_json(results)["labs"]}
    return proc, labs


def test_a_check_printing_random_bytes_passes_when_it_declares_only_exit_status_and_text(hostile_run):
    proc, labs = hostile_run
    lab = labs["binary-output"]
    assert lab["status"] == "passed", proc.stdout[-3000:]
    assert [c["passed"] for c in lab["steps"][0]["checks"]] == [True, True, True]
    assert "labs: 1 passed, 2 failed, 0 skipped" in proc.stdout


def test_a_hanging_check_fails_at_the_step_s_or_its_own_timeout_not_after_sixty_seconds(hostile_run):
    proc, labs = hostile_run
    out = proc.stdout
    assert "lab check-timeout, step 1 (A check that never answers): check 1 (command on host 'box') failed after the solution" in out
    assert "actual:   the check did not finish within 2 s (its timeout)" in out
    assert "actual:   the check did not finish within 1.5 s (its timeout)" in out
    # pre-check and post-check, two checks each: about 2 + 1.5 + 2 + 1.5 s, never 4 x 60 s
    assert labs["check-timeout"]["steps"][0]["duration"] < 30


def test_an_out_of_memory_kill_is_named_with_the_host_s_memory_limit(hostile_run):
    out = hostile_run[0].stdout
    assert ("lab out-of-memory, step 1 (Read 2 GB into one line): the solution on host 'box' was killed by the kernel "
            "for running out of memory: the host's memory limit is 64m") in out
    assert "exited with 137" not in out


@pytest.mark.parametrize("lab", ["binary-output", "check-timeout", "out-of-memory"])
def test_hostile_runs_leave_nothing_behind(hostile_run, lab):
    assert leftovers({"lab": lab}) == ([], [])


def test_a_lab_asking_for_more_runs_only_with_the_operator_s_flags_and_then_gets_it(tmp_path):
    results = tmp_path / "r.json"
    refused = opslabs("verify", "--results", str(results), labs=PRIVILEGED)
    assert refused.returncode == 1
    for refusal in ("needs-ptrace.yaml:11:17: lab.hosts.box.cap_add.0: capability SYS_PTRACE is refused unless the operator passes --allow-cap SYS_PTRACE",
                    "needs-sys-admin.yaml:10:21: lab.hosts.box.cap_add.0: capability SYS_ADMIN is refused unless the operator passes --allow-cap SYS_ADMIN",
                    "needs-64g.yaml:10:11: lab.hosts.box.memory: 64g is above the operator's maximum of 2g; refused unless the operator passes --max-memory 64g",
                    "needs-64g.yaml:10:24: lab.hosts.box.pids: 65536 is above the operator's maximum of 4096; refused unless the operator passes --max-pids 65536"):
        assert refusal in refused.stderr
    assert "4 problems found" in refused.stderr
    assert not results.exists(), "nothing may run when a lab is refused"
    # One flag allows only what it names.
    partly = opslabs("verify", "--allow-cap", "SYS_PTRACE", "--max-memory", "64g", "--results", str(results), labs=PRIVILEGED)
    assert partly.returncode == 1 and "2 problems found" in partly.stderr
    # With the flags they run, and what they asked for is in effect (their checks read CapEff and the cgroup).
    allowed = opslabs("verify", "-j", "2", "--allow-cap", "SYS_PTRACE", "--allow-cap", "sys_admin", "--max-memory", "64g",
                      "--max-pids", "65536", "--results", str(results), labs=PRIVILEGED)
    assert allowed.returncode == 0, allowed.stdout[-3000:]
    assert "labs: 3 passed, 0 failed, 0 skipped" in allowed.stdout
    for lab in ("needs-ptrace", "needs-sys-admin", "needs-64g"):
        assert leftovers({"lab": lab}) == ([], [])


def test_plain_pytest_takes_the_same_flag(tmp_path):
    shutil.copytree(PRIVILEGED, tmp_path / "labs")  # outside tests/, whose conftest ignores fixtures
    pytest_labs = [sys.executable, "-m", "pytest", "labs/", "-q", "-p", "no:cacheprovider"]
    refused = subprocess.run(pytest_labs, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "capability SYS_PTRACE is refused unless the operator passes --allow-cap SYS_PTRACE" in refused.stdout
    assert refused.returncode != 0
    proc = subprocess.run([*pytest_labs, "-k", "ptrace", "--opslabs-allow-cap", "SYS_PTRACE", "--opslabs-allow-cap", "SYS_ADMIN",
                           "--opslabs-max-memory", "64g", "--opslabs-max-pids", "65536"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 passed, 2 deselected" in proc.stdout


def test_a_host_with_a_cpu_quota_runs_with_it_and_one_without_has_none():
    from opslabs import engine

    names = [f"opslabs-test-cpus-{os.getpid()}-{n}" for n in ("quota", "none")]
    try:
        for name, cpus in zip(names, (0.5, None)):
            engine.run_container(engine.ContainerSpec(name=name, image="debian:bookworm-slim", hostname="app", network=None,
                                                      labels=engine.labels("test", "cpus", "cpus", "app"), cpus=cpus))
        quota, none = (json.loads(engine.docker("inspect", name).stdout)[0]["HostConfig"]["NanoCpus"] for name in names)
        assert (quota, none) == (500_000_000, 0)
    finally:
        engine.remove_containers(names)
