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
