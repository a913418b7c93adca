"""engine.using: every docker CLI call made inside the block goes to the given engine (no Docker needed)."""

import asyncio
import subprocess
import threading

import pytest

from opslabs import engine, session
from opslabs.store import progress


@pytest.fixture
def recorded(monkeypatch):
    """The argument lists the docker CLI would have been called with."""
    calls: list[list[str]] = []

    def fake_run(args, **kwargs):
        calls.append(list(args))
        return subprocess.CompletedProcess(args, 0, b"ok\n", b"")

    monkeypatch.setattr(engine.subprocess, "run", fake_run)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return calls


def test_without_a_context_the_cli_uses_the_environment(recorded):
    engine.docker("info")
    assert recorded == [["docker", "info"]]
    assert engine.current_url() is None


def test_inside_using_every_call_names_the_engine_and_the_old_one_comes_back(recorded):
    with engine.using("ssh://ops@b1"):
        engine.docker("ps")
        with engine.using("unix:///run/d2.sock"):
            engine.docker("info")
        engine.docker("ps")
    engine.docker("ps")
    assert recorded == [["docker", "--host", "ssh://ops@b1", "ps"], ["docker", "--host", "unix:///run/d2.sock", "info"],
                        ["docker", "--host", "ssh://ops@b1", "ps"], ["docker", "ps"]]


def test_the_context_is_restored_when_the_block_raises(recorded):
    with pytest.raises(RuntimeError):
        with engine.using("tcp://10.0.0.5:2376"):
            raise RuntimeError("boom")
    assert engine.current_url() is None


def test_current_url_falls_back_to_docker_host(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    assert engine.current_url() == "unix:///elsewhere.sock"
    with engine.using("ssh://a@b"):
        assert engine.current_url() == "ssh://a@b"
        assert progress.engine_name() == "ssh://a@b"  # the progress store records where the lab runs


def test_concurrent_threads_each_keep_their_engine(recorded):
    barrier = threading.Barrier(2)

    def work(url):
        with engine.using(url):
            barrier.wait()  # both contexts are open at the same time
            engine.docker("info", url)

    threads = [threading.Thread(target=work, args=(u,)) for u in ("unix:///a.sock", "unix:///b.sock")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(recorded) == [["docker", "--host", "unix:///a.sock", "info", "unix:///a.sock"],
                                ["docker", "--host", "unix:///b.sock", "info", "unix:///b.sock"]]


def test_asyncio_to_thread_carries_the_engine_of_its_task(recorded):
    async def one(url):
        with engine.using(url):
            await asyncio.sleep(0)  # let the other task set its own engine meanwhile
            await asyncio.to_thread(engine.docker, "ps", url)

    async def both():
        await asyncio.gather(one("unix:///a.sock"), one("ssh://u@h"))

    asyncio.run(both())
    assert sorted(recorded) == [["docker", "--host", "ssh://u@h", "ps", "ssh://u@h"],
                                ["docker", "--host", "unix:///a.sock", "ps", "unix:///a.sock"]]


def test_a_session_keeps_the_engine_it_was_opened_on(monkeypatch):
    """Popen of `docker exec -i` is made inside the context; later inspect/kill calls go there too."""
    opened: list[list[str]] = []

    class FakePopen:
        def __init__(self, args, **kwargs):
            opened.append(list(args))
            raise OSError("stop here")  # enough: the argument list is what we check

    monkeypatch.setattr(session.subprocess, "Popen", FakePopen)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with engine.using("unix:///d2.sock"), pytest.raises(OSError):
        session.Session("c1")
    assert opened[0][:4] == ["docker", "--host", "unix:///d2.sock", "exec"]


def test_ensure_engine_names_the_context_engine_instead_of_starting_one(monkeypatch):
    monkeypatch.setattr(engine, "engine_answers", lambda: False)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with engine.using("ssh://ops@b9"), pytest.raises(engine.EngineUnavailable, match="no Docker engine answers at ssh://ops@b9"):
        engine.ensure_engine()


def test_an_engine_out_of_network_address_pools_says_how_to_give_it_more(monkeypatch):
    """Seen in the workshop benchmark: the 29th lab network on an engine with Docker's default pools."""
    def full(args, **kwargs):
        return subprocess.CompletedProcess(args, 1, b"", b"Error response from daemon: could not find an available, "
                                                          b"non-overlapping IPv4 address pool among the defaults to assign to the network\n")

    monkeypatch.setattr(engine.subprocess, "run", full)
    with engine.using("ssh://ops@b2"), pytest.raises(engine.NoAddressPool) as err:
        engine.create_network("opslabs-x-1", [])
    assert "engine at ssh://ops@b2 has no address range left" in str(err.value)
    assert '"default-address-pools"' in str(err.value)
    assert isinstance(err.value, engine.UserError)  # the server answers 409 with this sentence, not 500


def test_other_network_errors_stay_docker_errors(monkeypatch):
    monkeypatch.setattr(engine.subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 1, b"", b"network with name x already exists"))
    with pytest.raises(engine.DockerError, match="already exists"):
        engine.create_network("x", [])


def test_a_labs_hosts_start_in_parallel_on_the_engine_of_the_context(monkeypatch):
    """provision() starts the hosts at once (each `docker run` is mostly waiting), every one
    on the engine the caller's context names, also from the pool's threads."""
    from pathlib import Path

    from opslabs import images, runner
    from opslabs.load import load_catalog

    entry = load_catalog(Path(__file__).parents[2] / "labs").find_lab("nginx-load-balancer")
    hosts = len(entry.task.lab.hosts)
    together = threading.Barrier(hosts, timeout=5)  # broken unless every `docker run` is under way at once
    started: list[list[str]] = []

    def fake_run(args, **kwargs):
        if "run" in args:
            started.append(list(args))
            together.wait()
        return subprocess.CompletedProcess(args, 0, b"ok\n", b"")

    class FakeSession:
        def __init__(self, container, env=None):
            self.usable = True

        def run(self, command, **kwargs):
            return session.CommandResult(command, 0, b"", b"", 0.0)

        def close(self, kill=False):
            pass

    monkeypatch.setattr(engine.subprocess, "run", fake_run)
    monkeypatch.setattr(images, "setup_image", lambda host, *args: (host.image, False))
    monkeypatch.setattr(runner, "Session", FakeSession)
    with engine.using("ssh://ops@b1"):
        runner.LabEnvironment(entry).provision()
    assert len(started) == hosts >= 3
    assert all(args[:3] == ["docker", "--host", "ssh://ops@b1"] for args in started)
