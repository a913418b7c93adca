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


# The throwaway second Docker daemon lives in tests/dockerd.py (the workshop benchmark uses it too).
from dockerd import DockerdError, SecondEngine  # noqa: E402


@pytest.fixture(scope="session")
def second_engine():
    """A second Docker daemon with the base image loaded; removed (daemon, dirs, bridge) at the end."""
    try:
        engine_ = SecondEngine()
    except DockerdError as err:
        pytest.fail(str(err))
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
