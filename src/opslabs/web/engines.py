"""The workshop's Docker engines: where a new lab goes.

`opslabs workshop serve --engine URL --engine URL,seats=N ...` names the Docker engines the
workshop may use, in DOCKER_HOST form: `unix:///run/docker.sock`, `ssh://user@host[:port]`
(the docker CLI runs `ssh` with this machine's ~/.ssh/config, and `docker` on the far side),
or `tcp://host:port`. Each engine has a number of seats (labs it runs at once): its own
`,seats=N`, else the server's `--seats`. A new lab goes to the engine with the most free
seats (ties: the one given first); an engine that does not answer is reported once, with
the engine's own words, and skipped until it answers again.

Every engine call of a lab runs inside `engine.using(url)`; this module only chooses.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from opslabs import engine as docker_engine
from opslabs.errors import OpslabsError, UserError

ANSWER_TIMEOUT = 20.0  # seconds for `docker info`; an ssh engine needs a connection first
FRESH_FOR = 15.0  # an engine that answered this recently is not asked again before placing a lab
FULL_FOR = 120.0  # an engine that refused a lab for want of room (no network address left) is skipped this long
FORMS = "unix:///PATH, ssh://[USER@]HOST[:PORT] or tcp://HOST:PORT"


class NoSeat(OpslabsError):
    """No engine has a free seat that answers: the message says which are full and which are down."""


@dataclass
class Engine:
    url: str | None  # None: the environment's engine (DOCKER_HOST, else the default socket)
    seats: int
    used: int = 0
    problem: str = ""  # why it did not answer when last asked; "" when it did
    answered_at: float | None = None  # time.monotonic() of its last answer
    full: str = ""  # why it refused the last lab for want of room; "" when it did not
    full_until: float = 0.0  # time.monotonic() until which it gets no new lab

    @property
    def free(self) -> int:
        return self.seats - self.used

    @property
    def name(self) -> str:
        return self.url or "the default engine"


def parse_engine(spec: str, default_seats: int) -> Engine:
    """`URL` or `URL,seats=N` from the command line; a clear UserError for anything else."""
    url, _, option = spec.strip().partition(",")
    seats = default_seats
    if option:
        key, _, value = option.partition("=")
        if key.strip() != "seats" or not value.strip().isdigit() or int(value) < 1:
            raise UserError(f"--engine {spec!r}: expected URL or URL,seats=N with N a whole number above 0, got {option!r}")
        seats = int(value)
    if default_seats < 1:
        raise UserError(f"--seats {default_seats}: expected a whole number above 0")
    parts = urlsplit(url)
    problem = None
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            problem = "a unix socket needs an absolute path, as in unix:///run/docker.sock"
    elif parts.scheme == "ssh":
        if not parts.hostname:
            problem = "an ssh engine needs a host, as in ssh://ops@lab-host-2"
        elif parts.path not in ("", "/") or parts.query or parts.fragment:
            problem = "an ssh engine is ssh://[USER@]HOST[:PORT], without a path (docker runs `docker system dial-stdio` there)"
    elif parts.scheme == "tcp":
        if not parts.hostname or parts.port is None:
            problem = "a tcp engine needs a host and a port, as in tcp://10.0.0.5:2376"
    else:
        problem = f"expected {FORMS}"
    if problem:
        raise UserError(f"--engine {url!r}: {problem}")
    return Engine(url=url, seats=seats)


def parse_engines(specs: list[str], default_seats: int) -> list[Engine]:
    """Every --engine, in the order given; none given: the environment's engine alone."""
    if not specs:
        if default_seats < 1:
            raise UserError(f"--seats {default_seats}: expected a whole number above 0")
        return [Engine(url=None, seats=default_seats)]
    engines = [parse_engine(spec, default_seats) for spec in specs]
    seen: set[str | None] = set()
    for one in engines:
        if one.url in seen:
            raise UserError(f"--engine {one.url!r} is given twice")
        seen.add(one.url)
    return engines


def ask(url: str | None, timeout: float = ANSWER_TIMEOUT) -> str:
    """"" when the engine at `url` answers; otherwise why not, in the docker CLI's words."""
    try:
        proc = subprocess.run(docker_engine.cli("info", "--format", "{{.ServerVersion}}", url=url),
                              capture_output=True, timeout=timeout)
    except FileNotFoundError:
        return "the `docker` command is not installed"
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:.0f} s"
    if proc.returncode == 0:
        return ""
    words = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return words[-1] if words else f"docker info exited with {proc.returncode}"


class EnginePool:
    """Seats on every engine; thread-safe (the server places labs from worker threads)."""

    def __init__(self, engines: list[Engine], probe: Callable[[str | None], str] = ask,
                 report: Callable[[str], None] = lambda message: None, clock: Callable[[], float] = time.monotonic):
        if not engines:
            raise ValueError("an engine pool needs at least one engine")
        self.engines = engines
        self._probe, self._report, self._clock = probe, report, clock
        self._lock = threading.Lock()

    def get(self, url: str | None) -> Engine:
        for one in self.engines:
            if one.url == url:
                return one
        raise KeyError(f"no engine {url!r} in this workshop")

    def _answers(self, one: Engine) -> bool:
        if one.answered_at is not None and not one.problem and self._clock() - one.answered_at < FRESH_FOR:
            return True
        problem = self._probe(one.url)
        if problem and problem != one.problem:
            self._report(f"engine {one.name} does not answer ({problem}); new labs go to the other engines until it does")
        elif not problem and one.problem:
            self._report(f"engine {one.name} answers again; it takes new labs")
        one.problem = problem
        one.answered_at = None if problem else self._clock()
        return not problem

    def acquire(self) -> Engine:
        """Take a seat on the engine with the most free seats that answers (ties: the first given)."""
        with self._lock:
            order = sorted(range(len(self.engines)), key=lambda i: (-self.engines[i].free, i))
            for i in order:
                one = self.engines[i]
                if one.full and self._clock() >= one.full_until:
                    one.full = ""  # try it again: labs may have ended there meanwhile
                if one.free > 0 and not one.full and self._answers(one):
                    one.used += 1
                    return one
            raise NoSeat(self._why_no_seat())

    def _why_no_seat(self) -> str:
        full = [one for one in self.engines if one.free <= 0]
        down = [one for one in self.engines if one.free > 0 and one.problem and not one.full]
        no_room = [one for one in self.engines if one.free > 0 and one.full]
        parts = []
        if full:
            parts.append(f"{sum(one.seats for one in full)} seats taken on " + ", ".join(one.name for one in full))
        if down:
            parts.append("not answering: " + "; ".join(f"{one.name} ({one.problem})" for one in down))
        if no_room:
            parts.append("out of room: " + "; ".join(f"{one.name} ({one.full})" for one in no_room))
        return "no free seat for a new lab: " + "; ".join(parts) + ". Ask the trainer."

    def mark_full(self, url: str | None, reason: str) -> None:
        """The engine refused a lab for want of room (e.g. no network address range left): new labs
        go elsewhere for a while (FULL_FOR), and the trainer's page says why."""
        with self._lock:
            one = self.get(url)
            if reason != one.full:
                self._report(f"engine {one.name} has no room for another lab ({reason}); new labs go to the other engines")
            one.full, one.full_until = reason, self._clock() + FULL_FOR

    def occupy(self, url: str | None) -> Engine:
        """Count a lab that already runs there (a restarted server finds it), even past the seats."""
        with self._lock:
            one = self.get(url)
            one.used += 1
            return one

    def release(self, url: str | None) -> None:
        with self._lock:
            one = self.get(url)
            one.used = max(0, one.used - 1)

    def status(self) -> list[dict]:
        """For the trainer's page: each engine's seats, use and problem."""
        with self._lock:
            return [{"engine": one.name, "url": one.url, "seats": one.seats, "used": one.used, "free": max(0, one.free),
                     "problem": one.problem or one.full} for one in self.engines]


def copy_image(image: str, source: str | None, target: str | None, timeout: float = 900) -> None:
    """`docker save | docker load` from one engine to another: an engine without a registry
    (or without the internet for setup) gets a base image or a cached setup layer this way.
    The image id stays the same, so setup-cache keys computed on either engine agree."""
    save = subprocess.Popen(docker_engine.cli("save", image, url=source), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        load = subprocess.run(docker_engine.cli("load", url=target), stdin=save.stdout, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        save.kill()
        raise UserError(f"copying image {image} from {source or 'the default engine'} to {target or 'the default engine'} "
                        f"did not finish within {timeout:.0f} s") from None
    finally:
        save.stdout.close()
    saved = save.wait(timeout=60)
    if saved != 0 or load.returncode != 0:
        words = (save.stderr.read() if saved != 0 else load.stderr).decode("utf-8", "replace").strip()
        save.stderr.close()
        raise UserError(f"copying image {image} from {source or 'the default engine'} to {target or 'the default engine'} failed: {words[-400:]}")
    save.stderr.close()
