"""Lab hosts survive what a learner types (PID 1 keep-alive), and solutions run like lines
typed into one terminal per host (issue 10, items 2 and 5)."""

import time

import pytest

from opslabs import engine
from opslabs.load import load_catalog
from opslabs.runner import LabEnvironment
from opslabs.session import Session, ShellKilled

from conftest import FIXTURES, leftovers, opslabs, read_json

FAULTS = FIXTURES / "faults" / "labs"


@pytest.fixture(scope="module")
def killer_host():
    """A host with procps and psmisc (pkill, killall): the shell-killer lab's cached setup."""
    entry = load_catalog(FAULTS).find_lab("shell-killer")
    env = LabEnvironment(entry).provision()
    yield env
    env.teardown()
    assert leftovers({"run": env.run_id}) == ([], [])


def running(container: str) -> bool:
    return engine.docker("inspect", "--format", "{{.State.Running}}", container).stdout.strip() == "true"


@pytest.mark.parametrize("command, signum", [
    ("pkill bash", 15), ("killall -u root", 15), ("kill -9 -1", 9),
])
def test_commands_that_kill_the_shell_leave_the_host_and_name_the_signal(killer_host, command, signum):
    container = killer_host.container_name("box")
    session = Session(container)
    with pytest.raises(ShellKilled) as caught:
        session.run(command, timeout=30, terminal=True)
    assert f"the shell on {container} was killed by signal {signum}" in str(caught.value)
    time.sleep(0.5)
    assert running(container)
    # The next command gets a fresh shell.
    assert killer_host.session("box").run("echo fresh", timeout=30).stdout == "fresh\n"


def test_pkill_sleep_kills_the_learner_s_sleep_not_the_host(killer_host):
    container = killer_host.container_name("box")
    with Session(container) as session:
        session.run("nohup sleep 1000 >/dev/null 2>&1 &", timeout=30)
        assert session.run("pkill -x sleep", timeout=30, terminal=True).exit_status == 0
        assert session.run("pgrep -x sleep", timeout=30).exit_status == 1
    assert running(container)


def test_pid_1_is_the_keep_alive_and_reaps_orphans(killer_host):
    with Session(killer_host.container_name("box")) as session:
        assert session.run("cat /proc/1/comm").stdout == "bash\n"
        # Orphans (their parent exits at once) are re-parented to PID 1, which must reap them.
        session.run("for i in 1 2 3 4 5; do (sleep 0.2 &) ; done; sleep 1", timeout=30)
        zombies = session.run("ps -eo stat= | grep -c '^Z' || true").stdout.strip()
        assert zombies == "0"


@pytest.fixture
def host():
    name = f"opslabs-test-terminal-{time.monotonic_ns()}"
    engine.run_container(engine.ContainerSpec(name=name, image="debian:bookworm-slim", hostname="box", network=None,
                                              labels=engine.labels("run", "test-terminal")))
    yield name
    engine.remove_containers([name])


def test_working_directory_and_exports_carry_between_commands_and_sessions(host):
    with Session(host) as session:
        assert session.run("mkdir -p /srv/app && cd /srv/app", terminal=True).exit_status == 0
        assert session.run("export APP_ENV=production; LOCAL_ONLY=x", terminal=True).exit_status == 0
        assert session.run('echo "$PWD $APP_ENV ${LOCAL_ONLY:-unexported}"', terminal=True).stdout == "/srv/app production unexported\n"
        assert session.run("unset APP_ENV", terminal=True).exit_status == 0
        assert session.run('echo "${APP_ENV:-gone}"', terminal=True).stdout == "gone\n"
        assert session.run("export NEXT=1; cd /tmp", terminal=True).exit_status == 0
    # A new session (a new `opslabs solve`) starts where the last solution command ended.
    with Session(host) as later:
        assert later.run('echo "$PWD $NEXT"', terminal=True).stdout == "/tmp 1\n"
        # Checks and other commands do not see it: they run in the session's own neutral state.
        assert later.run("pwd").stdout == "/\n"


def test_set_eu_applies_to_each_command_and_never_leaks(host):
    with Session(host) as session:
        assert session.run("set +eu; false; echo went-on", terminal=True).stdout == "went-on\n"
        failed = session.run("false; echo never", terminal=True)
        assert (failed.exit_status, failed.stdout) == (1, "")
        assert session.run('echo "$NOT_SET"', terminal=True).exit_status != 0
        assert "e" not in session.run("echo $-").stdout  # the session itself is not strict
        assert session.run("false").exit_status == 1 and session.run("echo alive").stdout == "alive\n"


def test_lines_after_exec_bash_run_in_the_new_shell_and_failures_keep_their_status(host):
    with Session(host) as session:
        result = session.run("cd /etc\nexec bash\necho \"new shell in $PWD\"\nexport AFTER=1\nexit 7\necho never", terminal=True)
        assert (result.exit_status, result.stdout) == (7, "new shell in /etc\n")
        assert session.run('echo "$AFTER $PWD"', terminal=True).stdout == "1 /etc\n"
        assert session.run("exit 3", terminal=True).exit_status == 3
        assert session.run("echo still-here", terminal=True).stdout == "still-here\n"


def test_verify_runs_solutions_like_a_terminal(tmp_path):
    results = tmp_path / "r.json"
    proc = opslabs("verify", "terminal", "--results", str(results), labs=FAULTS)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [s["status"] for s in read_json(results)["labs"][0]["steps"]] == ["passed", "passed", "passed"]


def test_workshop_solve_carries_the_terminal_from_step_to_step():
    opslabs("stop", "terminal", labs=FAULTS)
    try:
        assert opslabs("start", "terminal", labs=FAULTS).returncode == 0
        for step in (1, 2, 3):
            solved = opslabs("solve", "terminal", labs=FAULTS)  # a new process each time, as a learner would
            assert solved.returncode == 0, solved.stdout + solved.stderr
            assert f"Step {step} done." in solved.stdout
    finally:
        opslabs("stop", "terminal", labs=FAULTS)


def test_a_state_file_cut_short_changes_nothing(host):
    with Session(host) as session:
        assert session.run("mkdir -p /srv && cd /srv && export KEPT=1", terminal=True).exit_status == 0
        # As if the disk had filled up while the state was written.
        session.run("f=/var/lib/opslabs/terminal/state; head -c 40 $f > $f.cut && mv $f.cut $f")
        assert session.run('echo "$PWD ${KEPT:-none} $(command -v ls)"', terminal=True).stdout == "/ none /usr/bin/ls\n"
