"""The Docker side: engine, networks, containers, commit, removal. Labels on everything.

Everything goes through the `docker` CLI with argument lists (never a shell string),
each call with a timeout.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from opslabs.errors import EngineUnavailable, OpslabsError, UserError

LABEL = "io.opslabs"
MACHINE = socket.gethostname()
DOCKERD_LOG = Path("/var/log/opslabs-dockerd.log")

# Docker's default set minus MKNOD, NET_RAW, SETFCAP and AUDIT_WRITE: enough for
# package managers, daemons that drop privileges and binding low ports.
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT")


class DockerError(OpslabsError):
    def __init__(self, args: list[str], returncode: int | None, stderr: str):
        self.args_list, self.returncode, self.stderr = args, returncode, stderr.strip()
        what = "timed out" if returncode is None else f"exited with {returncode}"
        shown = " ".join(args[:4]) + (" …" if len(args) > 4 else "")
        super().__init__(f"`docker {shown}` {what}: {self.stderr[-800:]}")


# The engine the docker CLI calls of this context go to (a DOCKER_HOST-style URL); None:
# the environment's (DOCKER_HOST or the default socket). A context variable, so concurrent
# operations (threads, asyncio tasks, asyncio.to_thread, which copies it) each keep theirs.
_engine_url: contextvars.ContextVar[str | None] = contextvars.ContextVar("opslabs_engine_url", default=None)


@contextmanager
def using(url: str | None) -> Iterator[None]:
    """Direct every docker CLI call made inside the block to the engine at `url`
    (`unix:///run/docker.sock`, `ssh://user@host`, `tcp://host:2376`); None: the environment's."""
    token = _engine_url.set(url)
    try:
        yield
    finally:
        _engine_url.reset(token)


def current_url() -> str | None:
    """The engine URL set by `using`, else DOCKER_HOST, else None (the default socket)."""
    return _engine_url.get() or os.environ.get("DOCKER_HOST") or None


def cli(*args: str, url: str | None = None) -> list[str]:
    """The argument list of a docker CLI call to this context's engine (or `url`'s):
    `--host` is given explicitly, so a command built here and run later still goes there."""
    url = url or _engine_url.get()
    return ["docker", *(["--host", url] if url else []), *args]


def docker(*args: str, timeout: float = 120, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run one docker CLI command; bytes in, text out (UTF-8 with replacement)."""
    try:
        proc = subprocess.run(cli(*args), input=input, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise EngineUnavailable("the `docker` command is not installed; install Docker Engine (Debian: apt-get install docker.io)") from None
    except subprocess.TimeoutExpired as exc:
        raise DockerError(list(args), None, (exc.stderr or b"").decode("utf-8", "replace")) from None
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise DockerError(list(args), proc.returncode, proc.stderr)
    return proc


def engine_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False).returncode == 0
    except (EngineUnavailable, DockerError):
        return False


def ensure_engine(wait: float = 90) -> str:
    """Make sure a Docker engine answers; as root on Debian, install and start one."""
    if engine_answers():
        return "running"
    if _engine_url.get():
        raise EngineUnavailable(f"no Docker engine answers at {_engine_url.get()}")
    if os.environ.get("DOCKER_HOST"):
        raise EngineUnavailable(f"no Docker engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}")
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise EngineUnavailable(
            "no Docker engine answers. Install Docker Engine and start it "
            "(https://docs.docker.com/engine/install/), or run as root on Debian and opslabs will install docker.io."
        )
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        _apt_install("docker.io")
    with open(DOCKERD_LOG, "ab") as log:
        daemon = subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if engine_answers():
            return "started"
        if daemon.poll() is not None:
            break
        time.sleep(0.5)
    log_tail = "\n".join(DOCKERD_LOG.read_text(errors="replace").splitlines()[-5:])
    state = f"exited with {daemon.returncode}" if daemon.poll() is not None else f"did not answer within {wait:.0f} s"
    raise EngineUnavailable(f"dockerd {state}; the end of {DOCKERD_LOG}:\n{log_tail}")


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise EngineUnavailable(f"`{' '.join(cmd)}` did not finish within 15 minutes") from None
        if proc.returncode != 0:
            raise EngineUnavailable(f"`{' '.join(cmd)}` failed: {proc.stderr.decode('utf-8', 'replace')[-500:]}")


def labels(kind: str, run_id: str, lab: str = "", host: str = "", owner: str = "") -> list[str]:
    """Labels that let `opslabs gc` find what a run left, and tell whose it was
    (owner: the browser workshop's learner; absent for a lab started from the CLI)."""
    values = {
        LABEL: "1",
        f"{LABEL}.kind": kind,  # run | build | workshop
        f"{LABEL}.run": run_id,
        f"{LABEL}.lab": lab,
        f"{LABEL}.host": host,
        f"{LABEL}.pid": str(os.getpid()),
        f"{LABEL}.machine": MACHINE,
        **({f"{LABEL}.owner": owner} if owner else {}),
    }
    return [arg for key, value in values.items() for arg in ("--label", f"{key}={value}")]


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    hostname: str
    network: str | None
    labels: list[str]
    memory: str = "768m"
    pids: int = 2048
    cap_add: tuple[str, ...] = ()
    privileged: bool = False
    env: tuple[tuple[str, str], ...] = ()
    tmpfs: tuple[tuple[str, str], ...] = ()  # (mount point, size): a small disk that can fill up
    cpus: float | None = None  # a CPU quota (--cpus); None: none


class NoAddressPool(UserError):
    """The engine has no address range left for another network (Docker's default pools hold about 30)."""


NO_ADDRESS_POOL = "could not find an available, non-overlapping IPv4 address pool"


def create_network(name: str, label_args: list[str]) -> None:
    """A lab's own network. Internal: its hosts reach each other, not the outside (downloads
    belong in setup, which is built before); a step that teaches installing goes online."""
    try:
        docker("network", "create", "--driver", "bridge", "--internal", *label_args, name, timeout=60)
    except DockerError as err:
        if NO_ADDRESS_POOL not in err.stderr:
            raise
        where = f" at {current_url()}" if current_url() else ""
        raise NoAddressPool(
            f"the Docker engine{where} has no address range left for another lab network (every lab has its own, and "
            "Docker's default pools hold about 30 networks). Give dockerd more, e.g. in /etc/docker/daemon.json: "
            '"default-address-pools": [{"base": "10.201.0.0/16", "size": 24}] (256 networks), then restart it; '
            "or remove networks no longer used (`opslabs gc`, `docker network prune`)") from None


def set_online(container: str, online: bool) -> None:
    """Attach a lab host to the engine's default bridge (the outside) or detach it again."""
    proc = docker("network", "connect" if online else "disconnect", "bridge", container, timeout=60, check=False)
    already = "already exists" in proc.stderr or "is not connected" in proc.stderr
    if proc.returncode != 0 and not already:
        raise DockerError(["network", "connect" if online else "disconnect", "bridge", container], proc.returncode, proc.stderr)


# PID 1 of a lab host is this idle loop itself (no --init, no child `sleep`). The kernel
# drops signals sent from inside the container to its PID 1 unless PID 1 has a handler for
# them, and bash only handles SIGCHLD (to reap orphans, which become its children): so
# `pkill sleep`, `pkill bash`, `killall -u root` and `kill -9 -1` cannot end the host.
# It blocks reading a FIFO it holds open for writing too (no EOF, no process spawned);
# the FIFO is unlinked at once. Without bash: POSIX sh, which ignores what it would catch
# (it does not reap orphans); without mkfifo: the old `sleep` as PID 1.
KEEPALIVE = (
    'f=/tmp/.opslabs-idle-$(date +%s%N); mkfifo "$f" && exec 3<>"$f"; rm -f "$f"; '
    'if [ -e /proc/self/fd/3 ]; then '
    'command -v bash >/dev/null 2>&1 && exec bash --noprofile --norc -c "while :; do read -r _ <&3; done"; '
    'trap "" HUP INT QUIT TERM USR1 USR2 PIPE ALRM; while :; do read -r _ <&3; done; fi; '
    'exec sleep infinity'
)


def run_container(spec: ContainerSpec) -> str:
    """Start a container whose PID 1 idles until we exec into it; returns its id."""
    # SIGKILL as stop signal: PID 1 ignores SIGTERM, so `docker stop` does not wait 10 s.
    # --memory-swap equal to --memory: no swap on top, so a lab's memory limit is the same on every machine.
    args = ["run", "--detach", "--init=false", "--stop-signal", "SIGKILL", "--name", spec.name, "--hostname", spec.hostname,
            "--memory", spec.memory, "--memory-swap", spec.memory, "--pids-limit", str(spec.pids), *spec.labels]
    if spec.network:
        args += ["--network", spec.network, "--network-alias", spec.hostname]
        # A lab network is cut off from the outside: Docker's DNS still forwards outside names
        # and glibc waits 2 x 5 s per query (lynis' `apt-get update` took 120 s). Fail in ~2 s;
        # the lab's own host names are answered at once by Docker itself.
        args += ["--dns-option", "timeout:1", "--dns-option", "attempts:2"]
    if spec.privileged:
        args.append("--privileged")
    else:
        args += ["--cap-drop", "ALL"]
        for cap in dict.fromkeys((*DEFAULT_CAPS, *spec.cap_add)):
            args += ["--cap-add", cap]
    for key, value in spec.env:
        args += ["--env", f"{key}={value}"]
    for mount, size in spec.tmpfs:
        args += ["--tmpfs", f"{mount}:size={size}"]
    if spec.cpus is not None:
        args += ["--cpus", f"{spec.cpus:g}"]
    args += ["--entrypoint", "sh", spec.image, "-c", KEEPALIVE]
    return docker(*args, timeout=120).stdout.strip()


def oom_kills(container: str) -> int | None:
    """How many processes the kernel killed in the container for exceeding its memory limit
    (the cgroup's oom_kill counter, v2 or v1); None when that cannot be read."""
    read = "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null; true"
    try:
        proc = docker("exec", container, "sh", "-c", read, timeout=30, check=False)
    except OpslabsError:
        return None
    counts = [int(value) for key, _, value in (line.partition(" ") for line in proc.stdout.splitlines())
              if key == "oom_kill" and value.strip().isdigit()]
    return max(counts) if counts else None


def commit(container: str, image: str) -> None:
    # The entrypoint is ours (the keep-alive); reset it so the image stays a plain base image.
    # (Docker 20.10 refuses STOPSIGNAL in --change; the SIGKILL stop signal may stay: these are our cache images.)
    docker("commit", "--change", 'ENTRYPOINT []', "--change", 'CMD ["bash"]', container, image, timeout=600)


def image_exists(name: str) -> bool:
    return docker("image", "inspect", "--format", "{{.Id}}", name, timeout=30, check=False).returncode == 0


def image_id(name: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", name, timeout=30).stdout.strip()


def remove_containers(names: list[str]) -> None:
    if names:
        docker("rm", "--force", "--volumes", *names, timeout=120, check=False)


def remove_networks(names: list[str]) -> None:
    if names:
        docker("network", "rm", *names, timeout=60, check=False)


def find(kind: str, filters: dict[str, str]) -> list[dict[str, str]]:
    """Containers or networks carrying our label, with their labels parsed."""
    args = ["ps", "--all"] if kind == "container" else ["network", "ls"]
    args += ["--filter", f"label={LABEL}"]
    for key, value in filters.items():
        args += ["--filter", f"label={LABEL}.{key}={value}"]
    args += ["--format", "{{.Names}}\t{{.State}}\t{{.Labels}}" if kind == "container" else "{{.Name}}\t\t{{.Labels}}"]
    found = []
    for line in docker(*args, timeout=60).stdout.splitlines():
        name, state, raw = line.split("\t", 2)
        item = {"name": name, **dict(item.partition("=")[::2] for item in raw.split(",") if item)}
        if state:
            item["state"] = state  # running, exited, created, …
        found.append(item)
    return found


def _owner_alive(item: dict[str, str]) -> bool:
    if item.get(f"{LABEL}.machine") != MACHINE:
        return True  # another machine's engine: not ours to judge
    try:
        pid = int(item.get(f"{LABEL}.pid", "0"))
        if pid <= 0:  # os.kill(0, …) would ask about our own process group
            return False
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def collect_garbage(everything: bool = False) -> tuple[list[str], list[str]]:
    """Remove what dead opslabs processes left behind (or, with everything, all of it).

    Workshop labs outlive the command that started them, so only `everything` removes them.
    """
    def stale(item: dict[str, str]) -> bool:
        if everything:
            return True
        return item.get(f"{LABEL}.kind") != "workshop" and not _owner_alive(item)

    containers = [c["name"] for c in find("container", {}) if stale(c)]
    remove_containers(containers)
    networks = [n["name"] for n in find("network", {}) if stale(n)]
    remove_networks(networks)
    return containers, networks
