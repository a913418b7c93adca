"""A throwaway second Docker daemon, for the integration tests and the workshop benchmark.

Never touches the machine's own daemon: its processes are found by its own folder, and
`destroy()` removes its containers, daemon, containerd, namespaces (with the bridge) and folder.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class DockerdError(RuntimeError):
    """The second daemon could not be set up; the message says why."""


# --- a throwaway second Docker daemon ---------------------------------------
#
# Fault-injection tests stop and restart a Docker engine in the middle of a lab. They use
# their own daemon: own socket, data root, exec root, pidfile, containerd namespace, and its
# own network namespace with its own default bridge and address pool. The network namespace
# matters: a dockerd given `--bridge` deletes the default `docker0` of the namespace it runs
# in, which would cut the main daemon's containers off.

# Candidate private ranges for the second daemon's bridge and networks; the first two free
# /16s are used (documentation ranges such as 192.0.2.0/24 are never candidates).
SECOND_ENGINE_CANDIDATES = [f"10.{n}.0.0/16" for n in range(213, 250)]


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine has an address or a route in (`ip addr`, `ip route`)."""
    used = []
    for cmd in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show", "table", "all"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for word in out.split():
            try:
                used.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    return [n for n in used if n.prefixlen > 0]  # not the default route


def free_subnets(count: int = 2) -> list[ipaddress.IPv4Network]:
    used = _used_networks()
    free = [n for n in map(ipaddress.ip_network, SECOND_ENGINE_CANDIDATES) if not any(n.overlaps(u) for u in used)]
    if len(free) < count:
        raise DockerdError(f"no free private /16 among {SECOND_ENGINE_CANDIDATES[0]}…{SECOND_ENGINE_CANDIDATES[-1]} for a second Docker daemon")
    return free[:count]


class SecondEngine:
    """A dockerd of its own; `stop()` and `start()` keep its data, `destroy()` removes everything."""

    def __init__(self, base_image: str = "debian:bookworm-slim"):
        for tool in ("dockerd", "unshare", "ip"):
            if shutil.which(tool) is None:
                raise DockerdError(f"a second Docker daemon needs `{tool}`")
        if os.geteuid() != 0:
            raise DockerdError("a second Docker daemon needs root (make test runs as root)")
        self.root = Path(tempfile.mkdtemp(prefix="opsl-d2-", dir="/tmp"))  # short: socket paths are limited
        self.socket = self.root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.bridge = "opsl-d2-br"
        bridge_net, self.pool = free_subnets(2)
        self.bridge_cidr = f"{next(bridge_net.hosts())}/24"
        self.config = self.root / "daemon.json"
        self.config.write_text("{}\n")
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen | None = None
        try:
            self.start()
        except BaseException:  # the fixture's finally never runs for a failed constructor
            self.destroy()
            raise
        # The base image, from the main daemon: no registry is reachable here.
        save = subprocess.Popen(["docker", "save", base_image], stdout=subprocess.PIPE, env=self.main_env())
        load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True, text=True, env=self.env(), timeout=300)
        save.stdout.close()
        if save.wait(timeout=300) != 0 or load.returncode != 0:
            self.destroy()
            raise DockerdError(f"could not load {base_image} into the second daemon: {load.stderr}")

    @staticmethod
    def main_env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def answers(self) -> bool:
        return subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, env=self.env(), timeout=30).returncode == 0

    def start(self, wait: float = 60) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        dockerd = ["dockerd", "--host", self.host, "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                   "--pidfile", str(self.root / "docker.pid"), "--config-file", str(self.config),
                   "--containerd-namespace", "opslabs-d2", "--containerd-plugins-namespace", "opslabs-d2-plugins",
                   "--bridge", self.bridge, "--default-address-pool", f"base={self.pool},size=24",
                   "--iptables=false", "--ip6tables=false", "--ip-masq=false"]
        # Inside a new network namespace (and a private mount namespace): its own lo and bridge.
        script = (f"ip link set lo up && ip link add name {self.bridge} type bridge && "
                  f"ip addr add {self.bridge_cidr} dev {self.bridge} && ip link set {self.bridge} up && exec \"$@\"")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script, "dockerd", *dockerd],
                                            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise DockerdError(f"the second dockerd did not come up; its log:\n{self.log.read_text(errors='replace')[-2000:]}")

    def stop(self, sig: int = signal.SIGTERM, wait: float = 60) -> None:
        """Stop the daemon as an operator (SIGTERM) or a crash (SIGKILL) would."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def _leftover_processes(self) -> list[int]:
        """containerd and shims this daemon started: their command lines name its own folder.
        (Never select by namespace: a process read too early is still in the machine's.)"""
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if int(proc.name) != os.getpid() and str(self.root).encode() in cmdline and b"containerd" in cmdline:
                pids.append(int(proc.name))
        return pids

    def destroy(self) -> None:
        """Containers removed, daemon stopped, its containerd killed, its namespaces (with the bridge) gone, dirs removed."""
        if self.process is not None and self.process.poll() is None and self.answers():
            ids = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True, env=self.env()).stdout.split()
            if ids:
                subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, env=self.env(), timeout=120)
        self.stop()
        for _ in range(50):
            pids = self._leftover_processes()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
