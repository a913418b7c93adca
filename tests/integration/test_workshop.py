"""A learner's session, driven through tmux as a person would type it."""

import shutil
import subprocess
import sys
import time

import pytest

from conftest import LABS, leftovers, opslabs

LAB = "two-part"
SESSION = "opslabs-workshop-test"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def wait_for(text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = screen()
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared on the screen:\n{screen()}")


def type_line(line: str) -> None:
    tmux("send-keys", "-t", SESSION, "-l", line)
    tmux("send-keys", "-t", SESSION, "Enter")


@pytest.fixture
def workshop_lab():
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (make test installs it)")
    opslabs("stop", LAB)
    yield
    subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    opslabs("stop", LAB)


def test_learner_types_half_a_step_checks_finishes_and_stops(workshop_lab):
    started = opslabs("start", LAB)
    assert started.returncode == 0, started.stderr
    assert "Step 1 of 2: Write the configuration" in started.stdout
    assert opslabs("start", LAB).stderr.startswith(f"lab {LAB} is already running")

    shell = f"{sys.executable} -m opslabs --labs {LABS} shell {LAB} app"
    tmux("new-session", "-d", "-s", SESSION, "-x", "160", "-y", "40", shell)
    wait_for("#")  # root's prompt inside the host
    type_line("mkdir -p /srv/app && cd /srv/app && echo port=8080 > app.conf && echo typed-$((20+22))")
    wait_for("typed-42")

    half = opslabs("check", LAB)
    assert half.returncode == 1
    assert "✔ passed  [app] `/srv/app/app.conf` exists and contains `port=8080`" in half.stdout
    assert "✘ failed  [app] `/srv/app/app.conf` exists and contains `workers=4`" in half.stdout
    assert "The workers line is missing." in half.stdout
    assert "hint: Append a line with `>>`." in half.stdout
    assert "\x1b[" not in half.stdout  # piped output is plain

    type_line("echo workers=4 >> app.conf && pwd")  # the shell kept its working directory
    wait_for("/srv/app\n")
    done = opslabs("check", LAB)
    assert done.returncode == 0, done.stdout
    assert "Step 1 done." in done.stdout and "Step 2 of 2: Say hello" in done.stdout

    status = opslabs("status")
    assert f"{LAB}" in status.stdout and "1/2 steps done, now: step 2" in status.stdout

    type_line("exit")
    stopped = opslabs("stop", LAB)
    assert "Removed 2 container(s) and 1 network(s)." in stopped.stdout
    assert leftovers({"lab": LAB}) == ([], [])
    from opslabs import engine
    assert engine.find("container", {"lab": LAB}) == [] and engine.find("network", {"lab": LAB}) == []


def test_progress_survives_closing_the_terminal_and_solve_finishes_the_lab(workshop_lab):
    assert opslabs("start", LAB).returncode == 0
    solved = opslabs("solve", LAB)
    assert solved.returncode == 0 and "Applied the solution of step 1." in solved.stdout
    # A new process (a new terminal) finds the progress in the lab itself.
    assert "1/2 steps done, now: step 2" in opslabs("status").stdout
    assert opslabs("check", LAB, "--step", "2").returncode == 1
    final = opslabs("solve", LAB)
    assert final.returncode == 0 and f"Every step of {LAB} is done." in final.stdout
    assert "2/2 steps done, now: complete" in opslabs("status").stdout


def test_every_workshop_command_shows_an_example_in_its_help():
    for command in ("start", "shell", "check", "solve", "status", "stop", "prepare"):
        out = opslabs(command, "--help").stdout
        assert "Example" in out and "opslabs " in out.split("Example", 1)[1], command


# --- faults: a host removed by hand, and the lab commands' default (issue 10) ---------

from conftest import FIXTURES  # noqa: E402

FAULTS = FIXTURES / "faults" / "labs"


def remove_host_by_hand(lab: str, host: str) -> None:
    from opslabs import engine

    names = [c["name"] for c in engine.find("container", {"kind": "workshop", "lab": lab, "host": host})]
    assert len(names) == 1
    subprocess.run(["docker", "rm", "--force", names[0]], check=True, capture_output=True)


def test_a_removed_host_shows_as_broken_and_start_repairs_it_replaying_finished_steps(workshop_lab):
    assert opslabs("start", LAB).returncode == 0
    assert opslabs("solve", LAB).returncode == 0
    remove_host_by_hand(LAB, "app")

    status = opslabs("status")
    assert f"{LAB}" in status.stdout and "BROKEN: host app was removed; `opslabs start two-part` repairs it" in status.stdout
    assert "1/2 steps done are kept" in status.stdout

    broken = opslabs("check", LAB)
    assert broken.returncode == 1
    assert broken.stderr.strip() == (f"lab {LAB} is broken: host 'app' was removed. `opslabs start {LAB}` repairs it "
                                     "(recreates the host and replays the steps you finished on it)")
    assert "No such container" not in broken.stdout + broken.stderr

    repaired = opslabs("start", LAB)
    assert repaired.returncode == 0, repaired.stderr
    assert f"Lab {LAB} is repaired (app back, 1 finished step(s) kept)" in repaired.stdout
    assert "replaying step 1 on app" in repaired.stderr
    assert "Step 2 of 2: Say hello" in repaired.stdout
    # Step 1's solution ran again on the new app host (and only there): its check passes.
    assert opslabs("check", LAB, "--step", "1").returncode == 0
    assert "1/2 steps done, now: step 2" in opslabs("status").stdout
    stopped = opslabs("stop", LAB)
    assert "Removed 2 container(s) and 1 network(s)." in stopped.stdout


def test_a_failing_replay_names_the_step_and_offers_a_reset():
    lab = "workshop-replay"
    opslabs("stop", lab, labs=FAULTS)
    try:
        assert opslabs("start", lab, labs=FAULTS).returncode == 0
        from opslabs import engine
        box = engine.find("container", {"kind": "workshop", "lab": lab})[0]["name"]
        subprocess.run(["docker", "exec", box, "sh", "-c", "echo mine > /root/notes.txt"], check=True)
        assert opslabs("solve", lab, labs=FAULTS).returncode == 0
        remove_host_by_hand(lab, "box")
        failed = opslabs("start", lab, labs=FAULTS)
        assert failed.returncode == 1
        assert f"host 'box' of lab {lab} was recreated, but replaying step 1 (Copy your notes) on it failed" in failed.stderr
        assert "cp: cannot stat '/root/notes.txt'" in failed.stderr
        assert f"`opslabs start {lab} --reset`" in failed.stderr
        # The progress is kept until the learner chooses the reset.
        assert "1/2 steps done" in opslabs("status", labs=FAULTS).stdout
        fresh = opslabs("start", lab, "--reset", labs=FAULTS)
        assert fresh.returncode == 0 and "Step 1 of 2: Copy your notes" in fresh.stdout
        assert "0/2 steps done, now: step 1" in opslabs("status", labs=FAULTS).stdout
    finally:
        opslabs("stop", lab, labs=FAULTS)


def test_lab_commands_default_to_the_only_running_lab(second_engine, tmp_path):
    # On a Docker daemon of its own: other workshop labs on the main one would make it ambiguous.
    env = {**second_engine.env(), "OPSLABS_STATE_DIR": str(tmp_path)}
    none = opslabs("check", env=env)
    assert none.returncode == 1 and "no lab is running" in none.stderr
    assert opslabs("start", LAB, env=env).returncode == 0
    try:
        assert "Step 1 is not done yet." in opslabs("check", env=env).stdout
        wrong_host = opslabs("shell", "no-such-host", env=env)  # read as a host of the only running lab
        assert wrong_host.returncode == 1 and f"lab {LAB} has no host 'no-such-host'" in wrong_host.stderr
        assert opslabs("start", "slow-step", env=env).returncode == 0
        two = opslabs("solve", env=env)
        assert two.returncode == 1 and "2 labs are running (slow-step, two-part): name the one you mean" in two.stderr
        assert "Removed 2 container(s)" in opslabs("stop", "slow-step", env=env).stdout
        assert "Applied the solution of step 1." in opslabs("solve", env=env).stdout
        assert "Removed 2 container(s) and 1 network(s)." in opslabs("stop", env=env).stdout
    finally:
        opslabs("stop", "--all", env=env)
