"""`opslabs workshop serve` at the server level (HTTP and websocket, no browser): seats, the
trainer's stop and reset, the idle reaper telling the learner, and nothing left behind."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))  # the server helper, shared with the browser tests
from workshop_server import Client, Server, free_port, workshop_leftovers  # noqa: E402

pytestmark = pytest.mark.docker

LAB = "gitflow-release"
IDLE = 8  # seconds: short, yet longer than a step of the test on a loaded machine


@pytest.fixture
def server(tmp_path):
    with Server(tmp_path, "--seats", "1", "--idle", f"{IDLE}s") as srv:
        yield srv


@pytest.fixture
def calm_server(tmp_path):
    """No short idle limit: for tests whose waits would let the reaper in."""
    with Server(tmp_path) as srv:
        yield srv


def state(client: Client) -> dict:
    status, body = client.api("GET", f"/api/lab/{LAB}")
    assert status == 200, body
    return body


def terminal(client: Client, server: Server):
    from websockets.sync.client import connect

    cookie = "; ".join(f"{c.name}={c.value}" for c in client.jar)
    return connect(f"ws://127.0.0.1:{server.port}/ws/lab/{LAB}/host/dev", additional_headers={"Cookie": cookie},
                   open_timeout=20)


def read_until(ws, text: str, timeout: float = 20) -> tuple[str, list[dict]]:
    out, messages = "", []
    deadline = time.monotonic() + timeout
    while text not in out and not any(text in m.get("message", "") for m in messages):
        message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(message, bytes):
            out += message.decode("utf-8", "replace")
        else:
            messages.append(json.loads(message))
    return out, messages


def test_seats_the_trainers_stop_and_reset_and_the_idle_reaper(server):
    ada, grace, room = Client(server), Client(server), Client(server)
    status, page = ada.request("POST", "/join", form={"name": "Ada", "code": "0000-0000"})
    assert status == 403 and "that is not this workshop&#39;s code: ask your trainer for it" in page
    status, page = ada.request("POST", "/join", form={"name": "A" * 61, "code": server.code})
    assert status == 400 and "a name has at most 60 characters" in page and "Traceback" not in page
    assert ada.api("GET", f"/api/lab/{LAB}") == (401, {"error": "join the workshop first (your name and the workshop code)"})
    ada.join("Ada")
    grace.join("Grace")
    assert ada.api("POST", f"/api/lab/{LAB}/start")[0] == 200
    assert ada.api("POST", f"/api/lab/{LAB}/solve")[1]["state"]["progress"]["text"] == "1/4 steps done, now: step 2"

    status, refused = grace.api("POST", f"/api/lab/{LAB}/start")
    assert status == 409
    assert refused["error"] == "no free seat for a new lab: 1 seats taken on the default engine. Ask the trainer."

    assert room.api("GET", "/api/trainer/room") == (401, {"error": "log in as the trainer first"})
    assert room.request("POST", "/trainer/login", form={"token": "wrong"})[0] == 403
    assert room.request("POST", "/trainer/login", form={"token": server.token})[0] == 200
    learners = {l["name"]: l for l in room.api("GET", "/api/trainer/room")[1]["learners"]}
    assert learners["Ada"]["lab"]["progress"] == "1/4 steps done, now: step 2" and learners["Grace"]["lab"]["status"] == "stopped"
    assert room.api("POST", f"/api/trainer/learner/{learners['Ada']['id']}/lab/{LAB}/stop")[0] == 200
    assert "Your trainer stopped this lab. Your progress is kept" in state(ada)["note"]
    assert state(ada)["progress"]["done"] == [1]

    # The seat is free: Grace's lab starts; the trainer's reset takes her progress too.
    assert grace.api("POST", f"/api/lab/{LAB}/start")[0] == 200
    assert grace.api("POST", f"/api/lab/{LAB}/solve")[0] == 200
    assert room.api("POST", f"/api/trainer/learner/{learners['Grace']['id']}/lab/{LAB}/reset")[0] == 200
    after = state(grace)
    assert after["status"] == "stopped" and after["progress"]["done"] == [] and "reset" in after["note"]

    # Ada comes back at step 2; her open terminal is told when the reaper stops the idle lab.
    assert ada.api("POST", f"/api/lab/{LAB}/start")[1]["progress"]["text"] == "1/4 steps done, now: step 2"
    with terminal(ada, server) as ws:
        ws.send(json.dumps({"type": "resize", "cols": 101, "rows": 33}))
        read_until(ws, "# ")  # the prompt
        for attempt in range(5):  # the size travels page -> pty -> docker CLI -> engine, asynchronously
            ws.send(json.dumps({"type": "input", "data": f"stty size; echo sized-$((1+{attempt}))\r"}))
            out, _ = read_until(ws, f"sized-{1 + attempt}")
            if "33 101" in out:
                break
            time.sleep(1)
        assert "33 101" in out  # the pty's size reached the shell in the container
        started = time.monotonic()
        _, messages = read_until(ws, "without activity", timeout=IDLE + 30)
    assert time.monotonic() - started >= IDLE - 1
    told = f"Your lab was stopped after {IDLE} seconds without activity. Your progress is kept: Start recreates it at your step."
    assert messages[-1] == {"type": "closed", "message": told}
    assert state(ada)["note"] == told and state(ada)["status"] == "stopped"
    deadline = time.monotonic() + 30  # the shell ends as `docker rm` kills it; the network goes right after
    while workshop_leftovers(server.workshop_id) != ([], []) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert workshop_leftovers(server.workshop_id) == ([], [])
    assert state(ada)["progress"]["done"] == [1]


def test_a_lab_removed_behind_the_servers_back_comes_back_and_stopping_the_server_removes_every_lab(calm_server):
    server = calm_server
    import subprocess

    ada = Client(server)
    ada.join("Ada")
    assert ada.api("POST", f"/api/lab/{LAB}/start")[0] == 200
    assert ada.api("POST", f"/api/lab/{LAB}/solve")[0] == 200
    containers, networks = workshop_leftovers(server.workshop_id)
    assert len(containers) == 1 and len(networks) == 1
    limits = subprocess.run(["docker", "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{len .Mounts}}",
                             containers[0]], check=True, capture_output=True, text=True).stdout.split()
    assert limits == [str(768 * 1024 * 1024), "2048", "0"]  # the lab's limits, as `opslabs start` sets them; nothing mounted
    subprocess.run(["docker", "rm", "--force", containers[0]], check=True, capture_output=True)
    status, refused = ada.api("POST", f"/api/lab/{LAB}/check")
    assert status == 409 and refused["error"].startswith("Your lab's machines were removed or stopped outside the workshop.")
    assert "opslabs start" not in refused["error"]  # the CLI's advice is no use in a browser
    assert state(ada)["status"] == "stopped"
    assert ada.api("POST", f"/api/lab/{LAB}/start")[1]["progress"]["text"] == "1/4 steps done, now: step 2"
    assert ada.api("POST", f"/api/lab/{LAB}/check")[1]["checks"][0]["passed"] is False  # step 2's checks run
    output = server.stop()
    assert "opslabs workshop: stopped; every lab's containers are removed, progress is kept." in output
    assert "Traceback" not in output
    assert workshop_leftovers(server.workshop_id) == ([], [])
    server.start()
    assert state(ada)["status"] == "stopped" and "The workshop server stopped" in state(ada)["note"]


def test_a_second_server_on_the_same_state_or_port_is_refused_and_touches_nothing(calm_server):
    import os
    import subprocess

    server = calm_server

    ada = Client(server)
    ada.join("Ada")
    assert ada.api("POST", f"/api/lab/{LAB}/start")[0] == 200
    running = workshop_leftovers(server.workshop_id)
    command = [sys.executable, "-m", "opslabs", "--labs", str(Path(__file__).parent / "fixtures" / "labs"), "workshop", "serve"]
    env = {**os.environ, "OPSLABS_STATE_DIR": str(server.state_dir)}
    same_state = subprocess.run([*command, "--port", str(free_port())], capture_output=True, text=True, timeout=120, env=env)
    assert same_state.returncode == 1
    assert f"another workshop server (pid {server.proc.pid}) uses {server.state_dir / 'workshop.db'}" in same_state.stderr
    same_port = subprocess.run([*command, "--port", str(server.port)], capture_output=True, text=True, timeout=120,
                               env={**env, "OPSLABS_STATE_DIR": str(server.state_dir / "other")})
    assert same_port.returncode == 1 and "cannot listen on 127.0.0.1:" in same_port.stderr and "Address already in use" in same_port.stderr
    assert "Traceback" not in same_state.stderr + same_port.stderr
    assert workshop_leftovers(server.workshop_id) == running and state(ada)["status"] == "running"


def test_a_killed_servers_labs_are_removed_when_it_starts_again(calm_server):
    import os
    import signal

    server = calm_server
    ada = Client(server)
    ada.join("Ada")
    assert ada.api("POST", f"/api/lab/{LAB}/start")[0] == 200
    os.killpg(server.proc.pid, signal.SIGKILL)  # no shutdown at all
    server.proc.wait(timeout=30)
    server.proc = None
    assert len(workshop_leftovers(server.workshop_id)[0]) == 1  # left behind
    server.start()
    assert workshop_leftovers(server.workshop_id) == ([], [])
    after = state(ada)
    assert after["status"] == "stopped" and after["note"].startswith("The workshop server restarted.")
