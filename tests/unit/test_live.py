"""Live progress (issue 12): drawn on a terminal, plain lines when piped or in CI."""

import os
import re
import sys
from types import SimpleNamespace

import pytest

from opslabs import live

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@pytest.fixture
def terminal(monkeypatch):
    """sys.stdout on the slave side of a pseudo-terminal; read() returns what reached the screen."""
    master, slave = os.openpty()
    stream = os.fdopen(slave, "w", buffering=1, encoding="utf-8")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("OPSLABS_PLAIN", raising=False)
    monkeypatch.setenv("TERM", "xterm")

    def read() -> str:
        stream.flush()
        chunks = []
        os.set_blocking(master, False)
        while True:
            try:
                chunk = os.read(master, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    yield SimpleNamespace(stream=stream, read=read)
    stream.close()
    os.close(master)


def test_live_only_on_a_terminal_and_never_in_ci(terminal, monkeypatch, tmp_path):
    assert live.wanted(terminal.stream)
    with open(tmp_path / "log", "w") as piped:
        assert not live.wanted(piped)
    monkeypatch.setenv("CI", "true")
    assert not live.wanted(terminal.stream)
    monkeypatch.delenv("CI")
    monkeypatch.setenv("OPSLABS_PLAIN", "1")
    assert not live.wanted(terminal.stream)


def test_plain_board_prints_one_line_per_change(capsys):
    with live.Board("prepare", total=2, live=False) as board:
        board.begin("lab-a", "2 host(s)")
        live.note("lab-a", "host web: setup 1/3: apt-get update")  # from deep below: the board's sink
        live.note("lab-a", "host web: setup 1/3: apt-get update")  # unchanged: no new line
        board.finish("lab-a", "ready")
    assert capsys.readouterr().err.splitlines() == [
        "lab-a: 2 host(s)", "lab-a: host web: setup 1/3: apt-get update", "lab-a: ready (0 s)"]
    live.note("lab-a", "after the board: goes nowhere")
    assert capsys.readouterr() == ("", "")


def test_notes_from_another_process_travel_through_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv(live.LIVE_DIR_ENV, str(tmp_path))
    live.note("nginx-load-balancer", "host lb: setup 2/2: apt-get install -y nginx")
    assert live.read_note(str(tmp_path), "nginx-load-balancer") == "host lb: setup 2/2: apt-get install -y nginx"
    assert [p.name for p in tmp_path.iterdir()] == ["nginx-load-balancer"]  # no temporary file left
    live.note("debian:bookworm-slim", "pulling")
    assert live.read_note(str(tmp_path), "debian:bookworm-slim") == "pulling"


def test_the_live_board_draws_rows_and_prints_whole_lines_above_them(terminal, monkeypatch):
    monkeypatch.setattr(sys, "stdout", terminal.stream)  # here: pytest sets its own capture before each test call
    with live.Board("verify", total=2, live=True) as board:
        board.begin("gitflow-release", "step 1/4: Create the repository")
        live.note("gitflow-release", "host dev: setup 1/1: apt-get install -y git")
        sys.stdout.write("labs/source-control/gitflow-release.yaml::step1 ")  # pytest -v: the name first ...
        board._live.refresh()
        sys.stdout.write("PASSED [ 25%]\n")  # ... the outcome later: one line on the screen
        print("a line from stderr", file=sys.stderr)
        board.finish("gitflow-release", "passed")
    screen = ANSI.sub("", terminal.read())
    assert "labs/source-control/gitflow-release.yaml::step1 PASSED [ 25%]" in screen
    assert "a line from stderr" in screen
    assert "gitflow-release" in screen and "step 1/4: Create the repository" in screen
    assert "gitflow-release step 1/4: Create the repository" in screen  # 80 columns: the id whole, the note cut
    assert "host dev: setup 1/1: apt-get" in screen
    assert "1/2 done" in screen
    assert sys.stdout is terminal.stream  # given back


def test_the_verify_board_follows_pytest_reports():
    board = live.VerifyBoard({"lab-a": ["One", "Two"], "lab-b": ["Only"]}, live=False)

    def report(nodeid, when, outcome):
        return SimpleNamespace(nodeid=nodeid, when=when, passed=outcome == "passed", failed=outcome == "failed",
                               skipped=outcome == "skipped")

    board.pytest_runtest_logstart("labs/x/lab-a.yaml::step1", None)
    assert board.rows["lab-a"][0] == "step 1/2: One (setting up the hosts)"
    board.pytest_runtest_logreport(report("labs/x/lab-a.yaml::step1", "setup", "passed"))
    assert board.rows["lab-a"][0] == "step 1/2: One"
    board.pytest_runtest_logstart("labs/x/lab-a.yaml::step2", None)
    board.pytest_runtest_logreport(report("labs/x/lab-a.yaml::step2", "call", "failed"))
    board.pytest_runtest_logreport(report("labs/x/lab-a.yaml::step2", "teardown", "passed"))
    board.pytest_runtest_logstart("labs/x/lab-b.yaml::step1", None)
    board.pytest_runtest_logreport(report("labs/x/lab-b.yaml::step1", "setup", "skipped"))
    board.pytest_runtest_logreport(report("labs/x/lab-b.yaml::step1", "teardown", "passed"))
    assert board.rows == {} and (board.done, board.failed) == (2, 1)
    assert board.outcome == {"lab-a": "failed", "lab-b": "skipped"}


def test_a_board_without_rows_still_prints_the_notes_it_gets(capsys):
    with live.Board("start", live=False, plain_rows=False):
        live.note("lab-a", "host web: setup 1/2: apt-get update")
        live.note("lab-a", "host web: setup 2/2: apt-get install -y nginx")
    assert capsys.readouterr().err.splitlines() == [
        "lab-a: host web: setup 1/2: apt-get update", "lab-a: host web: setup 2/2: apt-get install -y nginx"]
