"""The persistent shell behaves like a learner's terminal and never hangs the runner."""

import os
import subprocess
import time

import pytest

from opslabs import engine, images
from opslabs.session import CommandTimeout, Session, SessionError
from opslabs.testinfra_backend import session_host


@pytest.fixture(scope="module")
def container():
    images.ensure_image("debian:bookworm-slim")
    name = f"opslabs-test-session-{os.getpid()}"
    engine.run_container(engine.ContainerSpec(name=name, image="debian:bookworm-slim", hostname="box", network=None,
                                              labels=engine.labels("run", "test-session")))
    yield name
    engine.remove_containers([name])


@pytest.fixture
def session(container):
    with Session(container) as session:
        yield session


def test_state_carries_over_between_commands(session):
    session.run("cd /tmp && export GREETING=hi && greet() { echo \"$GREETING $1\"; }")
    result = session.run("pwd; greet there")
    assert result.stdout == "/tmp\nhi there\n"


def test_exit_code_stdout_and_stderr_are_separate(session):
    result = session.run("echo out; echo err >&2; printf 'no newline'; (exit 7)")
    assert (result.exit_status, result.stdout, result.stderr) == (7, "out\nno newline", "err\n")


def test_invalid_utf8_is_replaced_not_fatal(session):
    result = session.run(r"printf 'caf\xc3\xa9 \xff\n'")
    assert result.stdout == "café \ufffd\n"


def test_large_output_and_quotes_survive(session):
    result = session.run("seq 1 200000 | tail -n 1; echo \"it's \\\"quoted\\\" \\$HOME\"")
    assert result.stdout == "200000\nit's \"quoted\" $HOME\n"


def test_strict_mode_stops_at_the_first_failure_and_keeps_the_session(session):
    result = session.run("false\necho reached", strict=True)
    assert result.exit_status == 1 and "reached" not in result.stdout
    assert session.run("echo alive").stdout == "alive\n"


def test_exit_in_a_subshell_does_not_end_the_session(session):
    assert session.run("exit 4", subshell=True).exit_status == 4
    assert session.run("echo still here").stdout == "still here\n"


def test_commands_do_not_read_the_session_stdin(session):
    assert session.run("cat; echo done").stdout == "done\n"


def test_timeout_is_reported_and_kills_the_command_inside_the_container(container, session):
    victim = Session(container)
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        victim.run("echo before; sleep 37", timeout=1.5)
    assert time.monotonic() - started < 8
    assert caught.value.stdout == b"before\n"
    assert not victim.alive
    # No `sleep 37` is left running in the container (procps is not installed: read /proc).
    left = session.run("grep -l 'sleep' /proc/[0-9]*/cmdline 2>/dev/null | xargs -r cat | tr '\\0' ' '")
    assert "sleep 37" not in left.stdout


def test_a_locale_the_image_lacks_does_not_break_non_ascii_commands(container):
    with Session(container, env={"LANG": "xx_XX.UTF-8", "LC_ALL": "xx_XX.UTF-8"}) as odd:
        assert odd.run("echo 'café ✓'; echo next").stdout == "café ✓\nnext\n"


def test_a_vanished_container_is_reported_with_docker_s_words():
    name = f"opslabs-test-vanish-{os.getpid()}"
    engine.run_container(engine.ContainerSpec(name=name, image="debian:bookworm-slim", hostname="gone", network=None,
                                              labels=engine.labels("run", "test-vanish")))
    session = Session(name)
    engine.remove_containers([name])
    with pytest.raises(SessionError) as caught:
        session.run("echo hi", timeout=10)
    assert name in str(caught.value) and "docker exec exited with" in str(caught.value)


def test_testinfra_modules_run_through_the_session(session):
    host = session_host(session, "box")
    assert host.file("/etc/debian_version").exists
    assert host.user("root").uid == 0
    assert host.run("echo %s", "it's").stdout == "it's\n"
    assert host.package("bash").is_installed


def test_a_check_through_the_session_is_much_faster_than_docker_exec(container, session):
    host = session_host(session, "box")
    started = time.perf_counter()
    for _ in range(10):
        assert host.file("/etc/hostname").exists
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(10):
        subprocess.run(["docker", "exec", container, "/bin/sh", "-c", "test -e /etc/hostname"], check=True)
    stock = time.perf_counter() - started
    assert ours * 10 < stock, f"session {ours:.3f}s vs docker exec {stock:.3f}s"


def test_non_ascii_command_text_is_passed_exactly(session):
    assert session.bash
    result = session.run("echo 'café — 日本語 ✓'; echo next")
    assert result.stdout == "café — 日本語 ✓\nnext\n"
    assert session.run("echo after").stdout == "after\n"
