import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from opslabs import engine

FIXTURES = Path(__file__).parent / "fixtures"
LABS = FIXTURES / "labs"
BROKEN = FIXTURES / "broken" / "labs"


@pytest.fixture(scope="session", autouse=True)
def docker_engine():
    """Integration tests need the real engine; `make test` starts one (opslabs engine ensure)."""
    if not engine.engine_answers():
        pytest.fail("no Docker engine answers: run `opslabs engine ensure` first (make test does)")


def opslabs(*args: str, labs: Path = LABS, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(labs), *args],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def leftovers(run_filter: dict | None = None) -> tuple[list, list]:
    """Containers and networks of opslabs runs (workshop labs excluded)."""
    containers = [c for c in engine.find("container", run_filter or {}) if c.get(f"{engine.LABEL}.kind") != "workshop"]
    networks = [n for n in engine.find("network", run_filter or {}) if n.get(f"{engine.LABEL}.kind") != "workshop"]
    return containers, networks


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


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
        pytest.fail(f"no free private /16 among {SECOND_ENGINE_CANDIDATES[0]}…{SECOND_ENGINE_CANDIDATES[-1]} for a second Docker daemon")
    return free[:count]


class SecondEngine:
    """A dockerd of its own; `stop()` and `start()` keep its data, `destroy()` removes everything."""

    def __init__(self, base_image: str = "debian:bookworm-slim"):
        for tool in ("dockerd", "unshare", "ip"):
            if shutil.which(tool) is None:
                pytest.fail(f"a second Docker daemon needs `{tool}`")
        if os.geteuid() != 0:
            pytest.fail("a second Docker daemon needs root (make test runs as root)")
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
        except BaseException:  # pytest.fail included: the fixture's finally never runs for a failed constructor
            self.destroy()
            raise
        # The base image, from the main daemon: no registry is reachable here.
        save = subprocess.Popen(["docker", "save", base_image], stdout=subprocess.PIPE, env=self.main_env())
        load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True, text=True, env=self.env(), timeout=300)
        save.stdout.close()
        if save.wait(timeout=300) != 0 or load.returncode != 0:
            self.destroy()
            pytest.fail(f"could not load {base_image} into the second daemon: {load.stderr}")

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
        pytest.fail(f"the second dockerd did not come up; its log:\n{self.log.read_text(errors='replace')[-2000:]}")

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


@pytest.fixture(scope="session")
def second_engine():
    """A second Docker daemon with the base image loaded; removed (daemon, dirs, bridge) at the end."""
    engine_ = SecondEngine()
    try:
        yield engine_
    finally:
        engine_.destroy()


# --- an sshd on 127.0.0.1 in front of a Docker engine -------------------------
#
# `DOCKER_HOST=ssh://root@127.0.0.1:PORT` makes the docker CLI run `ssh ... docker system
# dial-stdio`; the sshd sets DOCKER_HOST for its sessions (SetEnv), so the far side's docker
# talks to the engine under test. Throwaway host and user keys, its own config and port,
# listening on 127.0.0.1 only; the client side gets its keys and known_hosts (strict host
# key checking) through an `ssh` wrapper first on PATH, so nobody's ~/.ssh is touched.


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SshEndpoint:
    PRIVSEP = Path("/run/sshd")  # compiled into Debian's sshd; created (and removed) if missing

    def __init__(self, docker_host: str):
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists() or shutil.which("ssh-keygen") is None:
            pytest.fail("the ssh:// engine test needs sshd and ssh-keygen: run scripts/ensure-test-tools.sh (Debian openssh-server)")
        self.root = Path(tempfile.mkdtemp(prefix="opsl-ssh-", dir="/tmp"))
        self.process: subprocess.Popen | None = None
        self.made_privsep = False
        try:
            self._start(sshd, docker_host)
        except BaseException:
            self.destroy()
            raise

    def _start(self, sshd: str, docker_host: str) -> None:
        root = self.root
        for key in ("host_key", "id_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "opslabs-test", "-f", str(root / key)], check=True, timeout=30)
        (root / "authorized_keys").write_text((root / "id_ed25519.pub").read_text())
        self.port = _free_port()
        self.url = f"ssh://root@127.0.0.1:{self.port}"
        (root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\nPidFile {root}/sshd.pid\n"
            f"AuthorizedKeysFile {root}/authorized_keys\nAllowUsers root\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nX11Forwarding no\nAllowTcpForwarding no\nPermitTTY no\n"
            f"SetEnv DOCKER_HOST={docker_host}\n")
        (root / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {(root / 'host_key.pub').read_text()}")
        (root / "ssh_config").write_text(
            f"Host *\n  IdentityFile {root}/id_ed25519\n  IdentitiesOnly yes\n  UserKnownHostsFile {root}/known_hosts\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n"
            # One connection carries every docker call (as the docs advise for ssh engines): no handshake each time.
            f"  ControlMaster auto\n  ControlPath {root}/cm-%C\n  ControlPersist 120\n")
        (root / "bin").mkdir()
        wrapper = root / "bin" / "ssh"
        wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('ssh') or '/usr/bin/ssh'} -F {root}/ssh_config \"$@\"\n")
        wrapper.chmod(0o755)
        if not self.PRIVSEP.exists():
            self.PRIVSEP.mkdir(mode=0o755)
            self.made_privsep = True
        check = subprocess.run([sshd, "-t", "-f", str(root / "sshd_config")], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            pytest.fail(f"the test sshd's configuration is refused: {check.stderr}")
        with open(root / "sshd.log", "ab") as log:
            self.process = subprocess.Popen([sshd, "-D", "-e", "-f", str(root / "sshd_config")], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the test sshd did not listen on 127.0.0.1:{self.port}; its log:\n{(root / 'sshd.log').read_text(errors='replace')[-2000:]}")

    @property
    def path(self) -> str:
        """PATH with the ssh wrapper first: the docker CLI finds our keys and known_hosts."""
        return f"{self.root}/bin:{os.environ.get('PATH', '')}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": self.path}

    def _children(self) -> list[int]:
        """The per-connection sshd processes our listener forked (by parent pid)."""
        if self.process is None:
            return []
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                kids.append(int(stat.parent.name))
        return kids

    def destroy(self) -> None:
        if (self.root / "ssh_config").exists() and getattr(self, "port", None):
            # The multiplexing master is a client process of ours: end it first.
            subprocess.run([shutil.which("ssh") or "/usr/bin/ssh", "-F", str(self.root / "ssh_config"), "-p", str(self.port),
                            "-O", "exit", "root@127.0.0.1"], capture_output=True, timeout=30)
        if self.process is not None and self.process.poll() is None:
            for pid in self._children():
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.made_privsep:
            try:
                self.PRIVSEP.rmdir()
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_engine(second_engine):
    """The second daemon reached over ssh:// (sshd on 127.0.0.1 only); `ssh_engine.url`, `ssh_engine.path`."""
    endpoint = SshEndpoint(second_engine.host)
    try:
        yield endpoint
    finally:
        endpoint.destroy()
