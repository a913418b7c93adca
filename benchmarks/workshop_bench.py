"""Browser-workshop benchmark, measured side by side in one run against a real
`opslabs workshop serve` on 127.0.0.1:

1. Start to a shell prompt (warm cache): what the learner's browser does when Start is
   clicked (POST /api/lab/LAB/start, then the terminal's websocket until bash prints its
   prompt), beside a bare `docker run --rm debian:bookworm-slim true` in the same run;
2. memory per seat: what the nginx load-balancer lab's containers use once started
   (`docker stats`, the cgroup's usage without page cache), beside their memory limits;
3. seats before the start time doubles: learners are added one by one, each starting the
   same lab while the earlier ones keep theirs, until a start takes twice the first one's
   time, or the time budget (under 10 minutes in all) runs out.

The labs run on a Docker daemon of the benchmark's own (tests/dockerd.py: own socket, data
root, network namespace, and address pools for 256 networks, where Docker's defaults hold about
30; the cached images are copied in with `docker save | docker load`), so the count is this
machine's, not what other users of the shared engine left it. `--shared-engine` uses the
machine's engine instead; so does a run without root. Every lab is the server's: stopping it
removes them all; whatever is left is removed by label, and the private daemon is removed
whole. Numbers are ratios to the bare run of the same moment: the machine may be shared
(other jobs raise both).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from opslabs import engine, images
from opslabs.load import load_catalog
from opslabs.policy import DEFAULT_POLICY, memory_bytes
from opslabs.web.engines import copy_image

REPO = Path(__file__).resolve().parent.parent
LAB = "nginx-load-balancer"
BASE = "debian:bookworm-slim"
BUDGET = 8 * 60.0  # seconds until the last seat may start; with the cleanup it ends within 10 minutes
SEAT_TIMEOUT = 120.0  # one start; longer than this ends the seat count too
PROMPT = re.compile(rb"[#$] $")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Learner:
    def __init__(self, url: str, code: str, name: str):
        self.url = url
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        data = urllib.parse.urlencode({"name": name, "code": code}).encode()
        self.opener.open(urllib.request.Request(url + "/join", data=data, method="POST"), timeout=60).read()

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def start(self, lab: str) -> dict:
        request = urllib.request.Request(f"{self.url}/api/lab/{lab}/start", data=b"", method="POST", headers={"X-Opslabs": "1"})
        try:
            with self.opener.open(request, timeout=SEAT_TIMEOUT + 60) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"start refused ({err.code}): {err.read().decode()[:300]}") from None

    def prompt(self, lab: str, host: str, timeout: float) -> float:
        """Open the host's terminal as the page does; seconds until the shell's prompt arrives."""
        from websockets.sync.client import connect

        started = time.perf_counter()
        ws_url = self.url.replace("http://", "ws://") + f"/ws/lab/{lab}/host/{host}?cols=120&rows=30"
        with connect(ws_url, additional_headers={"Cookie": self.cookie(), "Origin": self.url}, open_timeout=timeout) as ws:
            seen = b""
            deadline = started + timeout
            while time.perf_counter() < deadline:
                message = ws.recv(timeout=max(0.1, deadline - time.perf_counter()))
                if isinstance(message, str):
                    parsed = json.loads(message)
                    if parsed.get("fatal") or parsed.get("type") == "closed":
                        raise RuntimeError(f"terminal refused: {parsed.get('message')}")
                    continue
                seen = ANSI.sub(b"", seen + message)
                if PROMPT.search(seen.rstrip(b"\r\n") + b" ") or PROMPT.search(seen):
                    return time.perf_counter() - started
        raise RuntimeError(f"no shell prompt on {host} within {timeout:.0f} s")


class Server:
    def __init__(self, state: Path, seats: int, engine_url: str | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(state / "server.log", "w")
        env = {**os.environ, "OPSLABS_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "opslabs", "--labs", str(REPO / "labs"), "workshop", "serve",
                                      "--host", "127.0.0.1", "--port", str(self.port), "--seats", str(seats), "--idle", "2h",
                                      *(["--engine", engine_url] if engine_url else [])],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 120
        text = ""
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text()
            if self.proc.poll() is not None:
                raise RuntimeError(f"the workshop server exited:\n{text}")
            found = re.search(r"workshop code: (\S+)", text)
            if found and self._answers():
                self.code = found[1]
                self.workshop_id = self._workshop_id(state)
                return
            time.sleep(0.3)
        raise RuntimeError(f"the workshop server did not answer within 120 s:\n{text}")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/", timeout=2).read()
            return True
        except OSError:
            return False

    @staticmethod
    def _workshop_id(state: Path) -> str:
        import sqlite3

        db = sqlite3.connect(state / "workshop.db")
        try:
            return db.execute("SELECT value FROM web_settings WHERE key = 'workshop_id'").fetchone()[0]
        finally:
            db.close()

    def containers(self) -> list[str]:
        prefix = f"web-{self.workshop_id}-"
        return [c["name"] for c in engine.find("container", {"kind": "workshop"}) if c.get(f"{engine.LABEL}.owner", "").startswith(prefix)]

    def networks(self) -> list[str]:
        prefix = f"web-{self.workshop_id}-"
        return [n["name"] for n in engine.find("network", {"kind": "workshop"}) if n.get(f"{engine.LABEL}.owner", "").startswith(prefix)]

    def stop(self) -> None:
        """As Ctrl-C: the server removes every lab; anything it left is removed by label."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.log.close()
        if getattr(self, "workshop_id", None):
            left_c, left_n = self.containers(), self.networks()
            engine.remove_containers(left_c)
            engine.remove_networks(left_n)
            if left_c or left_n:
                print(f"  (removed what the server left: {len(left_c)} containers, {len(left_n)} networks)")


def bare_run() -> float:
    """`docker run --rm debian:bookworm-slim true` on the engine the labs run on."""
    started = time.perf_counter()
    engine.docker("run", "--rm", "--label", f"{engine.LABEL}.bench=1", BASE, "true", timeout=120)
    return time.perf_counter() - started


UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def memory_used(containers: list[str]) -> int:
    """Bytes the containers use now, as `docker stats` reports it (without the page cache)."""
    out = engine.docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *containers, timeout=120).stdout
    total = 0
    for line in out.splitlines():
        used = line.split("\t", 1)[1].split("/")[0].strip()
        number = re.match(r"([0-9.]+)\s*([A-Za-z]+)", used)
        total += int(float(number[1]) * UNITS[number[2]])
    return total


def start_to_prompt(learner: Learner, first_host: str) -> float:
    started = time.perf_counter()
    learner.start(LAB)
    learner.prompt(LAB, first_host, timeout=SEAT_TIMEOUT)
    return time.perf_counter() - started


def private_engine():
    """The benchmark's own dockerd with the base image, or None (not root, or no dockerd)."""
    sys.path.insert(0, str(REPO / "tests"))
    from dockerd import DockerdError, SecondEngine

    try:
        return SecondEngine(BASE)
    except DockerdError as err:
        print(f"  (on the shared engine: a private daemon could not start: {err})")
        return None


def main() -> int:
    began = time.monotonic()
    engine.ensure_engine()
    images.ensure_image(BASE)
    entry = load_catalog(REPO / "labs", DEFAULT_POLICY).find_lab(LAB)
    hosts = entry.task.lab.hosts
    tags = {images.setup_image(host, name, LAB, "bench")[0] for name, host in hosts.items()}  # warm cache before any timing
    cap = sum(memory_bytes(host.memory) for host in hosts.values())
    print(f"workshop benchmark ({LAB}: {len(hosts)} hosts; measured side by side in this run; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start)")
    private = None if "--shared-engine" in sys.argv[1:] or os.geteuid() != 0 else private_engine()
    try:
        if private is not None:
            for tag in sorted(tags - {BASE}):
                copy_image(tag, None, private.host)
            print(f"  engine: a private dockerd ({private.host}), images copied in; {time.monotonic() - began:.0f} s so far")
        with engine.using(private.host if private else None):
            return measure(entry, cap, began, private.host if private else None)
    finally:
        if private is not None:
            private.destroy()
            print(f"  private dockerd removed (daemon, network namespace, {private.root})")


def measure(entry, cap: int, began: float, engine_url: str | None) -> int:
    hosts = entry.task.lab.hosts
    first_host = next(iter(hosts))
    bare_run()  # warm up
    with tempfile.TemporaryDirectory(prefix="opslabs-wbench-") as tmp:
        server = Server(Path(tmp), seats=500, engine_url=engine_url)
        try:
            # 1. Start -> prompt, three rounds (each a fresh learner; the earlier labs removed)
            rounds, bares = [], []
            for i in range(3):
                bares.append(bare_run())
                learner = Learner(server.url, server.code, f"timing {i}")
                rounds.append(start_to_prompt(learner, first_host))
                _stop_all(server)
            start, bare = statistics.median(rounds), statistics.median(bares)
            print(f"  Start -> shell prompt (warm cache): {start:5.2f} s; bare `docker run --rm {BASE} true`: {bare:5.2f} s"
                  f"  -> {start / bare:4.1f}x a bare run, for {len(hosts)} hosts with their services")

            # 2 and 3. Seats one by one until starts take twice as long as the first ones did.
            # The baseline is the median of the first three seats, and two starts in a row must
            # reach twice it: one slow start on a shared machine is not the machine being full.
            # Each seat's ratio to a bare run of the same moment shows what other load did.
            seats: list[tuple[float, float, int]] = []  # (start -> prompt, ratio to a bare run, memory per seat)
            reason = ""
            while True:
                if time.monotonic() - began > BUDGET - SEAT_TIMEOUT:
                    reason = f"the time budget ran out ({BUDGET / 60:.0f} min) before starts took twice as long"
                    break
                bare_now = bare_run()
                learner = Learner(server.url, server.code, f"seat {len(seats) + 1}")
                try:
                    took = start_to_prompt(learner, first_host)
                except RuntimeError as err:
                    reason = f"seat {len(seats) + 1} did not start: {err}"
                    break
                containers = server.containers()
                per_seat = memory_used(containers) / (len(containers) / len(hosts))
                seats.append((took, took / bare_now, per_seat))
                print(f"    seat {len(seats):3d}: start -> prompt {took:5.2f} s ({took / bare_now:4.1f}x a bare run then), "
                      f"memory per seat {per_seat / 2**20:6.1f} MiB")
                if len(seats) > 4:
                    baseline = statistics.median(t for t, _, _ in seats[:3])
                    if all(t >= 2 * baseline for t, _, _ in seats[-2:]):
                        reason = f"two starts in a row took twice the first three's median ({baseline:.2f} s)"
                        break
            if seats:
                memory = statistics.median(m for _, _, m in seats)
                print(f"  memory per seat ({LAB}): {memory / 2**20:.1f} MiB used (median, docker stats), "
                      f"cap {cap / 2**20:.0f} MiB ({len(hosts)} hosts x their memory limit)")
                doubled = reason.startswith("two starts")
                held = len(seats) - 2 if doubled else len(seats)
                print(f"  seats held before the start time doubles: {'' if doubled else 'at least '}{held} "
                      f"(first three starts {statistics.median(t for t, _, _ in seats[:3]):.2f} s median, last {seats[-1][0]:.2f} s; "
                      f"stopped: {reason})")
        finally:
            server.stop()
        left = server.containers() + server.networks()
    print(f"  cleanup: server stopped; {len(left)} of its containers and networks left; {time.monotonic() - began:.0f} s in all")
    return 0 if not left else 1


def _stop_all(server: Server) -> None:
    """Between timing rounds: remove the round's lab by its labels (each round is a new learner,
    so the server never looks at it again; it has seats to spare)."""
    engine.remove_containers(server.containers())
    engine.remove_networks(server.networks())


if __name__ == "__main__":
    sys.exit(main())
