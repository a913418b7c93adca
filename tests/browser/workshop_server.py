"""`opslabs workshop serve` as a subprocess on 127.0.0.1 and a free port, for the workshop tests.

Every test that starts one stops it (SIGTERM, as Ctrl-C) and checks that nothing of its labs is
left on the engine; a server that does not stop is killed and its labs removed by label.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABS = REPO / "labs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workshop_leftovers(workshop_id: str) -> tuple[list[str], list[str]]:
    from opslabs import engine

    prefix = f"web-{workshop_id}-"
    ours = lambda item: item.get(f"{engine.LABEL}.owner", "").startswith(prefix)  # noqa: E731
    return ([c["name"] for c in engine.find("container", {"kind": "workshop"}) if ours(c)],
            [n["name"] for n in engine.find("network", {"kind": "workshop"}) if ours(n)])


class Server:
    def __init__(self, state_dir: Path, *args: str):
        self.state_dir, self.args = Path(state_dir), args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 90) -> "Server":
        env = {**os.environ, "OPSLABS_STATE_DIR": str(self.state_dir), "PYTHONUNBUFFERED": "1"}
        log = open(self.state_dir / f"server-{len(self.output)}.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "opslabs", "--labs", str(LABS), "workshop", "serve",
                                      "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                                     stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                     # stopped with SIGINT: give it the default even when this suite runs in the background
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.log_path = Path(log.name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text()
            if self.proc.poll() is not None:
                raise AssertionError(f"the workshop server exited with {self.proc.returncode}:\n{text}")
            if "workshop code:" in text and self._answers():
                self.output.append(text)
                self.code = re.search(r"workshop code: (\S+)", text)[1]
                self.token = re.search(r"trainer token: (\S+)", text)[1]
                self.workshop_id = self._workshop_id()
                return self
            time.sleep(0.3)
        raise AssertionError(f"the workshop server did not answer within {timeout} s:\n{self.log_path.read_text()}")

    def __enter__(self) -> "Server":
        """`with Server(...) as server:` starts it and waits until it answers; a server that
        never answers is stopped before the error goes up (no process left behind)."""
        try:
            return self.start()
        except BaseException:
            self.stop()
            self.cleanup()
            raise

    def __exit__(self, *exc_info) -> None:
        """However the block ended: stopped as Ctrl-C does (stop() cleans up itself if that fails),
        then whatever of its labs is left removed."""
        self.stop()
        self.cleanup()

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/", timeout=2).read()
            return True
        except (urllib.error.URLError, OSError):
            return False

    def _workshop_id(self) -> str:
        import sqlite3

        db = sqlite3.connect(self.state_dir / "workshop.db")
        try:
            return db.execute("SELECT value FROM web_settings WHERE key = 'workshop_id'").fetchone()[0]
        finally:
            db.close()

    def stop(self, timeout: float = 60) -> str:
        """Stop as Ctrl-C does; returns the server's output."""
        if self.proc is None:
            return ""
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                self.cleanup()
                raise AssertionError(f"the workshop server did not stop within {timeout} s on SIGINT")
        return self.log_path.read_text()

    def restart(self) -> str:
        out = self.stop()
        self.start()
        return out

    def cleanup(self) -> None:
        """Whatever a failed test left: the server's labs, by label."""
        from opslabs import engine

        if getattr(self, "workshop_id", None):
            containers, networks = workshop_leftovers(self.workshop_id)
            engine.remove_containers(containers)
            engine.remove_networks(networks)


class Client:
    """A learner or trainer without a browser: cookies kept, JSON in and out, never raises on a status."""

    def __init__(self, server: Server):
        self.server = server
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None,
                timeout: float = 300) -> tuple[int, str]:
        data = None
        headers = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif method == "POST":
            data = b""
        request = urllib.request.Request(self.server.url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def api(self, method: str, path: str) -> tuple[int, dict]:
        status, body = self.request(method, path, headers={"X-Opslabs": "1"})
        return status, json.loads(body)

    def join(self, name: str) -> None:
        status, body = self.request("POST", "/join", form={"name": name, "code": self.server.code})
        assert status == 200 and "Pick a lab" in body, (status, body[:500])


