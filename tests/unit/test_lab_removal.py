"""A lab's containers are removed in the background: the next lab starts at once, and the
pytest session (a verify run, an xdist worker) does not end before every removal has."""

import threading
from types import SimpleNamespace

from opslabs import engine, pytest_plugin


class SlowEnv:
    """Stands in for a LabEnvironment whose Docker removal takes a while."""

    network, entry = "opslabs-demo-0000", SimpleNamespace(id="demo")

    def __init__(self, error: Exception | None = None):
        self.release, self.removed, self.sessions_closed = threading.Event(), threading.Event(), False
        self.error = error

    def close_sessions(self) -> None:
        self.sessions_closed = True

    def teardown(self) -> None:
        self.release.wait(10)
        self.removed.set()
        if self.error:
            raise self.error


def test_lab_teardown_returns_before_docker_has_removed_the_containers_and_the_session_waits():
    env = SlowEnv()
    lab_file = SimpleNamespace(env=env)
    pytest_plugin.LabFile.teardown(lab_file)
    assert lab_file.env is None and env.sessions_closed  # the shells close at once
    assert not env.removed.is_set()  # removal still under way: teardown did not wait

    finisher = threading.Thread(target=pytest_plugin.pytest_sessionfinish, args=(None,))
    finisher.start()
    finisher.join(0.3)
    assert finisher.is_alive(), "the session ended while a lab's containers were still being removed"
    env.release.set()
    finisher.join(5)
    assert not finisher.is_alive() and env.removed.is_set()


def test_a_failed_removal_says_what_is_left_and_how_to_remove_it(capsys):
    env = SlowEnv(error=engine.DockerError(["rm", "--force"], 1, "daemon busy"))
    env.release.set()
    pytest_plugin.LabFile.teardown(SimpleNamespace(env=env))
    pytest_plugin.pytest_sessionfinish(None)
    err = capsys.readouterr().err
    assert "could not remove the containers of lab demo" in err and "daemon busy" in err and "opslabs gc" in err


class FakeLab:
    """Stands in for a LabEnvironment: provisioning takes a moment, teardown is recorded."""

    removed: list = []

    def __init__(self, entry):
        self.entry, self.network = entry, f"opslabs-{entry.id}-0000"

    def provision(self):
        if self.entry.id == "broken":
            raise pytest_plugin.OpslabsError("lab broken: setup of host 'box' exited with 100")
        return self

    def teardown(self):
        FakeLab.removed.append(self.entry.id)


def test_a_lab_provisioned_ahead_that_never_runs_is_removed_when_the_session_ends(monkeypatch):
    """A session that stops early (Ctrl-C, a crash of the step before) must not leave the
    next lab's containers, started ahead, behind."""
    monkeypatch.setattr(pytest_plugin, "LabEnvironment", FakeLab)
    FakeLab.removed = []
    taken, unused = pytest_plugin.Ahead(SimpleNamespace(id="used")), pytest_plugin.Ahead(SimpleNamespace(id="unused"))
    pytest_plugin._aheads.extend([taken, unused])
    assert taken.take().entry.id == "used"
    pytest_plugin.pytest_sessionfinish(None)
    assert FakeLab.removed == ["unused"]  # the lab that ran is removed by its own teardown
    assert pytest_plugin._aheads == []


def test_a_provisioning_error_ahead_is_raised_when_the_lab_takes_its_turn(monkeypatch):
    monkeypatch.setattr(pytest_plugin, "LabEnvironment", FakeLab)
    ahead = pytest_plugin.Ahead(SimpleNamespace(id="broken"))
    try:
        ahead.take()
    except pytest_plugin.OpslabsError as err:
        assert "setup of host 'box' exited with 100" in str(err)
    else:
        raise AssertionError("the provisioning error was lost")
