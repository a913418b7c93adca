"""A worker provisions its next lab while the current one runs its last step, and an
interrupted run removes that lab too."""

import os
import signal
import subprocess
import sys
import time

from opslabs import engine

from conftest import FIXTURES, leftovers, read_json

AHEAD = FIXTURES / "ahead" / "labs"


def _verify(tmp_path, *args) -> subprocess.Popen:
    engine.collect_garbage()  # what an earlier, killed run left would look like this run's
    with open(tmp_path / "verify.log", "wb") as log:  # SIGINT as in a terminal (see test_verify)
        return subprocess.Popen([sys.executable, "-m", "opslabs", "--labs", str(AHEAD), "verify", "a-first", "b-second",
                                 "--results", str(tmp_path / "r.json"), *args],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _running(lab: str) -> bool:
    return any(c.get(f"{engine.LABEL}.kind") == "run" and c.get("state") == "running" for c in engine.find("container", {"lab": lab}))


def test_the_next_lab_starts_during_the_last_step_of_the_one_before(tmp_path):
    proc = _verify(tmp_path)
    both = False
    while proc.poll() is None:
        both = both or (_running("a-first") and _running("b-second"))
        time.sleep(0.2)
    assert proc.returncode == 0, (tmp_path / "verify.log").read_text()[-3000:]
    assert both, "b-second's host never ran while a-first's did"
    labs = {lab["id"]: lab for lab in read_json(tmp_path / "r.json")["labs"]}
    assert [labs[i]["status"] for i in ("a-first", "b-second")] == ["passed", "passed"]
    # its 2-second start ran during a-first's 6-second step, so the lab's own time (1.5 s of
    # computing) holds none of it
    assert labs["b-second"]["provisioned_ahead"] >= 1.5 and labs["b-second"]["duration"] < 3.0, labs["b-second"]
    assert "provisioned_ahead" not in labs["a-first"]  # the first lab has nothing before it
    # Its hosts' CPU time: a-first sleeps 6 s, b-second computes for 1.5 s.
    assert labs["a-first"]["cpu_seconds"] < 0.5 <= labs["b-second"]["cpu_seconds"], labs
    assert leftovers({"lab": "a-first"}) == leftovers({"lab": "b-second"}) == ([], [])


def test_ctrl_c_while_the_next_lab_starts_leaves_neither_lab_behind(tmp_path):
    proc = _verify(tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not _running("b-second"):  # its start command (`sleep 2`) is under way
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "verify.log").read_text()[-3000:]
            time.sleep(0.05)
        assert _running("a-first"), f"b-second should start while a-first still runs: {engine.find('container', {})}"
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:  # a failed assertion must not leave a run going on
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            engine.collect_garbage()
    assert proc.returncode != 0
    assert leftovers({"lab": "a-first"}) == ([], [])
    assert leftovers({"lab": "b-second"}) == ([], [])
