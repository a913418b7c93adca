"""A host's start: the lab waits for the ports its start commands open (`listens`)."""

import pytest

from opslabs import runner
from opslabs.load import load_catalog
from opslabs.runner import LabEnvironment, LabError

from conftest import FIXTURES, leftovers

START = FIXTURES / "start" / "labs"


def test_the_first_step_finds_a_late_service_listening():
    """sshd forks before it binds: `service ssh start` returned and the next step's
    `ssh` was refused (restic-backup-restore failed this way once in -j 2)."""
    with LabEnvironment(load_catalog(START).find_lab("late-listener")) as env:
        connect = env.session("client").run("(: </dev/tcp/server/7000)")
        assert connect.succeeded, connect.tail()
    assert leftovers({"lab": "late-listener"}) == ([], [])


def test_a_port_that_never_opens_fails_the_start_naming_host_and_port(monkeypatch):
    monkeypatch.setattr(runner, "LISTEN_TIMEOUT", 2)
    with pytest.raises(LabError, match=r"lab never-listens: host 'server' does not listen on TCP port 7001 2 s after its start commands"):
        with LabEnvironment(load_catalog(START).find_lab("never-listens")):
            pass
    assert leftovers({"lab": "never-listens"}) == ([], [])
