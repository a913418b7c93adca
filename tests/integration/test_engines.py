"""Several engines: engine.using routes calls, the pool spreads labs over two daemons (one
reached over ssh://), and a lab host's web port opens through the exec relay on either."""

import asyncio
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from opslabs import engine, images
from opslabs.load import load_catalog
from opslabs.policy import DEFAULT_POLICY
from opslabs.runner import LabEnvironment, run_solution
from opslabs.web import proxy
from opslabs.web.engines import Engine, EnginePool, ask, copy_image


REPO = Path(__file__).resolve().parents[2]
LABS = Path(__file__).resolve().parent / "fixtures" / "labs"  # not from conftest: a run with tests/browser has another
MAIN = engine.current_url() or "unix:///var/run/docker.sock"  # this machine's engine


def on_daemon(url: str, run_id: str) -> list[str]:
    """Container names of one run on the daemon at `url`, asked directly (never through the pool)."""
    proc = subprocess.run(["docker", "--host", url, "ps", "--all", "--filter", f"label={engine.LABEL}.run={run_id}",
                           "--format", "{{.Names}}"], capture_output=True, text=True, timeout=60, check=True)
    return sorted(proc.stdout.split())


def daemon_id(url: str, env: dict | None = None) -> str:
    return subprocess.run(["docker", "--host", url, "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True,
                          timeout=60, check=True, env=env).stdout.strip()


def test_two_concurrent_contexts_hit_different_daemons(second_engine):
    assert daemon_id(MAIN) != daemon_id(second_engine.host)
    names = {MAIN: f"opsl-eng-route-main-{threading.get_ident()}", second_engine.host: f"opsl-eng-route-second-{threading.get_ident()}"}

    async def make(url: str) -> str:
        with engine.using(url):
            await asyncio.sleep(0)  # both contexts are open at once
            await asyncio.to_thread(engine.create_network, names[url], engine.labels("run", "route", "engines"))
            return (await asyncio.to_thread(engine.docker, "info", "--format", "{{.DockerRootDir}}")).stdout.strip()

    async def both():
        return await asyncio.gather(make(MAIN), make(second_engine.host))

    def networks(url: str) -> list[str]:
        return subprocess.run(["docker", "--host", url, "network", "ls", "--format", "{{.Name}}"], capture_output=True,
                              text=True, check=True).stdout.split()

    try:
        roots = asyncio.run(both())
        assert roots == [daemon_id(MAIN), daemon_id(second_engine.host)]
        assert names[MAIN] in networks(MAIN) and names[MAIN] not in networks(second_engine.host)
        assert names[second_engine.host] in networks(second_engine.host) and names[second_engine.host] not in networks(MAIN)
    finally:
        for url, name in names.items():
            subprocess.run(["docker", "--host", url, "network", "rm", name], capture_output=True)


def test_the_second_engine_answers_over_ssh(ssh_engine, second_engine, monkeypatch):
    monkeypatch.setenv("PATH", ssh_engine.path)
    assert ssh_engine.url.startswith("ssh://root@127.0.0.1:")
    assert ask(ssh_engine.url) == ""
    assert daemon_id(ssh_engine.url) == daemon_id(second_engine.host)  # the far side's docker talks to the second daemon


def test_an_engine_that_does_not_answer_is_skipped_with_its_reason(tmp_path, second_engine):
    reports = []
    dead = f"unix://{tmp_path}/nobody.sock"
    pool = EnginePool([Engine(dead, 5), Engine(second_engine.host, 1)], report=reports.append)
    assert pool.acquire().url == second_engine.host
    assert len(reports) == 1 and reports[0].startswith(f"engine {dead} does not answer (")
    assert "nobody.sock" in reports[0]  # the docker CLI's own words name the socket


def test_labs_of_four_learners_are_spread_over_both_daemons_one_over_ssh(ssh_engine, second_engine, monkeypatch):
    monkeypatch.setenv("PATH", ssh_engine.path)
    entry = load_catalog(LABS, DEFAULT_POLICY).find_lab("two-part")
    pool = EnginePool([Engine(ssh_engine.url, 2), Engine(MAIN, 2)])
    placed: dict[str, tuple[str, LabEnvironment]] = {}
    errors: list[BaseException] = []

    def start(learner: str) -> None:
        seat = pool.acquire()
        try:
            with engine.using(seat.url):
                env = LabEnvironment(entry, kind="run")
                placed[learner] = (seat.url, env)
                env.provision()
                assert env.session("app").run("hostname").stdout.strip() == "app"
        except BaseException as err:  # reported below, after every lab is removed
            errors.append(err)

    threads = [threading.Thread(target=start, args=(f"learner{i}",)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors
        where = {learner: url for learner, (url, _) in placed.items()}
        assert sorted(where.values()) == sorted([ssh_engine.url, ssh_engine.url, MAIN, MAIN])
        for learner, (url, env) in placed.items():
            daemon, other = (second_engine.host, MAIN) if url == ssh_engine.url else (MAIN, second_engine.host)
            assert on_daemon(daemon, env.run_id) == sorted(env.containers.values()), learner
            assert on_daemon(other, env.run_id) == [], learner
    finally:
        for url, env in placed.values():
            with engine.using(url):
                env.teardown(quiet=True)
    for url, env in placed.values():
        direct = second_engine.host if url == ssh_engine.url else MAIN
        assert on_daemon(direct, env.run_id) == []


@pytest.fixture(scope="module")
def nginx_lb():
    """The nginx-load-balancer lab and its setup layers, built (once) on this machine's engine."""
    entry = load_catalog(REPO / "labs", DEFAULT_POLICY).find_lab("nginx-load-balancer")
    assert entry is not None
    tags = sorted({images.setup_image(host, name, entry.id, "engines")[0] for name, host in entry.task.lab.hosts.items()})
    return entry, tags


def page_through_relay(url: str | None, container: str) -> tuple[int, str, dict]:
    async def fetch():
        answer = await proxy.relay(url, container, 80, "GET", "/", [("Accept", "text/html")], host="lb")
        body = b"".join([chunk async for chunk in answer.body])
        return answer.status, body.decode("utf-8", "replace"), dict(answer.headers)

    return asyncio.run(fetch())


def test_the_nginx_load_balancer_page_opens_through_the_relay(nginx_lb):
    """On this machine's engine (the server test below opens it on the ssh:// one too)."""
    entry, _ = nginx_lb
    with engine.using(MAIN):
        env = LabEnvironment(entry, kind="run")
        try:
            env.provision()
            # nothing of the lab is published on any interface
            ports = subprocess.run(["docker", "--host", MAIN, "ps", "--filter", f"label={engine.LABEL}.run={env.run_id}",
                                    "--format", "{{.Ports}}"], capture_output=True, text=True, check=True).stdout
            assert ports.strip() == ""
            status, body, headers = page_through_relay(MAIN, env.container_name("lb"))
            assert status == 200 and "Welcome to nginx" in body, (status, body[:300])
            assert headers.get("server", "").startswith("nginx")

            async def refused(container, port):
                with pytest.raises(proxy.RelayError) as err:
                    await proxy.relay(MAIN, container, port, "GET", "/", [], host="lb")
                return err.value

            closed = asyncio.run(refused(env.container_name("lb"), 8080))
            assert closed.status == 502 and "nothing listens on port 8080 of host lb" in str(closed)
            gone = asyncio.run(refused(env.container_name("lb") + "-nope", 80))
            assert gone.status == 502 and "host lb is not running" in str(gone)

            # After the first step's own solution the page is the load balancer's: both backends answer.
            run_solution(env, entry.task.lab.steps[0], "nginx-load-balancer step 1")
            bodies: list[str] = []
            for _ in range(40):  # `service nginx reload` hands over to new workers asynchronously
                status, body, _ = page_through_relay(MAIN, env.container_name("lb"))
                assert status == 200
                bodies = (bodies + [body.strip()])[-4:]
                if set(bodies) == {"served by web1", "served by web2"}:
                    break
                time.sleep(0.25)
            assert set(bodies) == {"served by web1", "served by web2"}, bodies
        finally:
            env.teardown(quiet=True)


# --- the workshop server with two engines ------------------------------------


def owned_on(url: str, owner: str, host: str | None = None) -> list[str]:
    """Container names of one learner's lab on the daemon at `url`, asked directly."""
    args = ["docker", "--host", url, "ps", "--all", "--filter", f"label={engine.LABEL}.owner={owner}", "--format", "{{.Names}}"]
    if host:
        args[5:5] = ["--filter", f"label={engine.LABEL}.host={host}"]
    return sorted(subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout.split())


def test_a_workshop_on_two_engines_spreads_four_learners_and_opens_web_ports_on_both(
        nginx_lb, ssh_engine, second_engine, monkeypatch, tmp_path):
    from browser.workshop_server import Client, Server

    entry, tags = nginx_lb
    quick = load_catalog(REPO / "labs", DEFAULT_POLICY).find_lab("gitflow-release")  # one host: the quick one
    tags = sorted({*tags, *(images.setup_image(h, n, quick.id, "engines")[0] for n, h in quick.task.lab.hosts.items())})
    for tag in tags:  # the second daemon has no way out: its cache comes from this machine's engine
        copy_image(tag, MAIN, second_engine.host)
    monkeypatch.setenv("PATH", ssh_engine.path)  # the server's docker CLI finds the test's ssh keys
    server = Server(tmp_path, "--engine", f"{ssh_engine.url},seats=2", "--engine", f"{MAIN},seats=2", "--idle", "30m")
    placed: dict[str, tuple[str, str]] = {}
    server.start()
    try:
        trainer = Client(server)
        trainer.request("POST", "/trainer/login", form={"token": server.token})
        learners = {}
        for i, lab in enumerate([entry.id, entry.id, quick.id, quick.id]):
            learner = Client(server)
            learner.join(f"Learner {i}")
            status, answer = learner.api("POST", f"/api/lab/{lab}/start")
            assert status == 200, answer
            learners[f"Learner {i}"] = (learner, lab)
        room = json.loads(trainer.request("GET", "/api/trainer/room")[1])
        assert [(e["url"], e["used"]) for e in room["engines"]] == [(ssh_engine.url, 2), (MAIN, 2)]
        for row in room["learners"]:
            owner = f"web-{server.workshop_id}-{row['id']}"
            daemon = {ssh_engine.url: second_engine.host, MAIN: MAIN}[row["lab"]["engine"]]
            other = second_engine.host if daemon == MAIN else MAIN
            hosts = list(load_catalog(REPO / "labs", DEFAULT_POLICY).find_lab(row["lab"]["id"]).task.lab.hosts)
            assert len(owned_on(daemon, owner)) == len(hosts), row  # the lab runs where the room says ...
            assert owned_on(other, owner) == [], row  # ... and nowhere else
            placed[row["name"]] = (daemon, owner)
        assert sorted(d for d, _ in placed.values()) == sorted([second_engine.host, second_engine.host, MAIN, MAIN])
        nginx_daemons = {placed[name][0] for name, (_, lab) in learners.items() if lab == entry.id}
        assert nginx_daemons == {second_engine.host, MAIN}  # ties go to the first given: one nginx lab on each

        # Each nginx learner's lb page, marked on the daemon directly, opens through the server's proxy.
        for name, (learner, lab) in learners.items():
            if lab != entry.id:
                continue
            daemon, owner = placed[name]
            [lb] = owned_on(daemon, owner, "lb")
            subprocess.run(["docker", "--host", daemon, "exec", lb, "sh", "-c", f"echo 'page of {name}' > /var/www/html/index.html"],
                           check=True, capture_output=True)
            status, body = learner.request("GET", f"/lab/{lab}/host/lb/port/80/")
            assert (status, body.strip()) == (200, f"page of {name}"), (daemon, status, body[:300])
        # A learner whose lab is another one reaches no nginx page at all.
        status, body = learners["Learner 2"][0].request("GET", f"/lab/{entry.id}/host/lb/port/80/")
        assert status == 409 and "not running" in body
    finally:
        server.stop()
        server.cleanup()
    for daemon, owner in placed.values():
        assert owned_on(daemon, owner) == []  # stopping the server removed every lab on both engines
