"""Base images (local, pulled, or bootstrapped offline) and the setup-layer cache."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from opslabs import engine, live
from opslabs.errors import ImageUnavailable, OpslabsError
from opslabs.model import Host
from opslabs.session import Session, run_required

# Images opslabs can build itself with debootstrap when no registry is reachable.
BOOTSTRAPPABLE = {
    "debian:bookworm-slim": "bookworm",
    "debian:bookworm": "bookworm",
    "debian:12-slim": "bookworm",
    "debian:12": "bookworm",
}
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CACHE_REPOSITORY = "opslabs-setup"
LOCK_FILE = Path(tempfile.gettempdir()) / "opslabs-images.lock"
SETUP_TIMEOUT = 1200

# Like the official slim images: no docs or man pages, apt caches cleaned.
SLIM_DPKG_CONFIG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
APT_CLEAN_CONFIG = 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };\n'


@contextmanager
def _images_lock(name: str = "base"):
    """Parallel workers must not bootstrap or build the same image twice at once."""
    # Per engine: two engines may build the same image at the same time, each its own copy.
    key = f"{engine.current_url() or 'default'}|{name}"
    lock = LOCK_FILE.with_name(f"{LOCK_FILE.stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.lock")
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_image(name: str) -> str:
    """Local image, else pull, else bootstrap; returns how it was obtained."""
    if engine.image_exists(name):
        return "local"
    with _images_lock():
        if engine.image_exists(name):
            return "local"
        try:
            live.note(name, "pulling from its registry")
            pull = engine.docker("pull", "--quiet", name, timeout=180, check=False)
            if pull.returncode == 0:
                return "pulled"
            why = pull.stderr.strip()[-200:] or "no registry reachable"
        except engine.DockerError:  # a registry that silently drops traffic
            why = "the pull timed out"
        if name not in BOOTSTRAPPABLE:
            raise ImageUnavailable(
                f"image {name!r} is not on this machine and cannot be pulled ({why}); "
                f"opslabs can build only {', '.join(sorted(BOOTSTRAPPABLE))} without a registry"
            )
        live.note(name, f"no registry: bootstrapping Debian {BOOTSTRAPPABLE[name]} with debootstrap (about a minute)")
        bootstrap(name, BOOTSTRAPPABLE[name])
        return "bootstrapped"


def _host_mirror() -> str:
    """The Debian mirror this machine's apt uses, so the image reaches the same one."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = source.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1] and "debian" in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                uri = next((w for w in words[1:] if w.startswith(("http://", "https://"))), None)
                if uri and "debian" in uri:
                    return uri
    return DEFAULT_MIRROR


def bootstrap(name: str, suite: str) -> None:
    """Build a Debian image with debootstrap and import it under `name`."""
    if shutil.which("debootstrap") is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise ImageUnavailable(f"image {name!r} cannot be pulled and debootstrap is not installed (apt-get install debootstrap)")
        engine._apt_install("debootstrap")
    mirror = _host_mirror()
    with tempfile.TemporaryDirectory(prefix="opslabs-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        try:
            proc = subprocess.run(["debootstrap", "--variant=minbase", suite, str(root), mirror],
                                  capture_output=True, timeout=1200)
        except subprocess.TimeoutExpired:
            raise ImageUnavailable(f"debootstrap of {name!r} from {mirror} did not finish within 20 minutes") from None
        if proc.returncode != 0:
            log = proc.stdout.decode("utf-8", "replace")[-600:]
            raise ImageUnavailable(f"debootstrap of {name!r} from {mirror} failed:\n{log}")
        (root / "etc/apt/sources.list").write_text(
            f"deb {mirror} {suite} main\ndeb {mirror} {suite}-updates main\n"
            f"deb http://deb.debian.org/debian-security {suite}-security main\n"
        )
        (root / "etc/dpkg/dpkg.cfg.d/opslabs-slim").write_text(SLIM_DPKG_CONFIG)
        extra_env = _carry_host_certificates(root)
        (root / "etc/apt/apt.conf.d/opslabs-clean").write_text(APT_CLEAN_CONFIG)
        for folder in ("var/lib/apt/lists", "var/cache/apt/archives", "usr/share/doc", "usr/share/man"):
            shutil.rmtree(root / folder, ignore_errors=True)
            (root / folder).mkdir(parents=True, exist_ok=True)
        tarball = Path(tmp) / "rootfs.tar"
        packed = subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tarball), "."],
                                capture_output=True, timeout=600)
        if packed.returncode != 0:
            raise ImageUnavailable(f"packing the {name!r} root file system failed: {packed.stderr.decode('utf-8', 'replace')[-400:]}")
        try:
            engine.docker("import", "--change", 'CMD ["bash"]', "--change", "ENV LANG=C.UTF-8",
                          *[arg for env in extra_env for arg in ("--change", f"ENV {env}")],
                          "--message", f"opslabs debootstrap {suite} from {mirror}", str(tarball), name, timeout=600)
        except engine.DockerError as err:
            raise ImageUnavailable(f"docker import of {name!r} failed: {err}") from None


HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DISTRO_CERTS = Path("/usr/share/ca-certificates")
EXTRA_CERT_NAME = "opslabs-host-extra.crt"


def _pem_blocks(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.splitlines():
        if "BEGIN CERTIFICATE" in line:
            current = [line]
        elif current:
            current.append(line)
            if "END CERTIFICATE" in line:
                blocks.append("\n".join(current) + "\n")
                current = []
    return blocks


def host_extra_certificates() -> list[str]:
    """CAs this machine trusts beyond the distribution's set, e.g. a TLS-intercepting proxy's."""
    try:
        trusted = _pem_blocks(HOST_BUNDLE.read_text())
    except OSError:
        return []
    distro = {block for path in DISTRO_CERTS.rglob("*.crt") for block in _pem_blocks(path.read_text(errors="replace"))}
    return [block for block in trusted if block not in distro]


def _carry_host_certificates(root: Path) -> list[str]:
    """Behind a TLS-intercepting proxy, containers must trust what the host trusts to reach
    PyPI and npm. The cert joins the image's bundle whenever a lab installs ca-certificates."""
    extra = host_extra_certificates()
    if not extra:
        return []
    target = root / "usr/local/share/ca-certificates" / EXTRA_CERT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(extra))
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    return [f"PIP_CERT={bundle}", f"REQUESTS_CA_BUNDLE={bundle}", f"NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/{EXTRA_CERT_NAME}"]


def setup_key(host: Host) -> str:
    """The cache key of a host's setup layer: base image id, commands, files, environment."""
    material = {
        "base": engine.image_id(host.image),
        "setup": host.setup,
        "files": [f.model_dump() for f in host.files],
        "env": host.env,
        "version": 1,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]


def write_file_command(path: str, content: str, mode: str) -> str:
    """A shell command that writes a file exactly (base64 keeps quoting out of it)."""
    data = base64.b64encode(content.encode("utf-8")).decode("ascii")
    target = shlex.quote(path)
    return f"mkdir -p \"$(dirname {target})\" && printf %s {data} | base64 -d > {target} && chmod {mode} {target}"


class SetupFailed(OpslabsError):
    """A host's setup commands failed: the lab is broken, not the machine."""


def setup_image(host: Host, host_name: str, lab_id: str, run_id: str) -> tuple[str, bool]:
    """The image a host boots from: its setup layer, built once and cached. Returns (image, built)."""
    ensure_image(host.image)
    if not host.setup and not host.files:
        return host.image, False
    tag = f"{CACHE_REPOSITORY}:{setup_key(host)}"
    if engine.image_exists(tag):
        return tag, False
    live.note(lab_id, f"host {host_name}: building its setup layer (once, then cached)")
    with _images_lock(tag):
        if engine.image_exists(tag):  # another worker built it while we waited
            return tag, False
        _build_setup_layer(host, host_name, lab_id, run_id, tag)
    return tag, True


def _build_setup_layer(host: Host, host_name: str, lab_id: str, run_id: str, tag: str) -> None:
    name = f"opslabs-build-{run_id}-{host_name}"
    spec = engine.ContainerSpec(
        name=name, image=host.image, hostname=host_name, network=None,
        labels=engine.labels("build", run_id, lab_id, host_name), memory="2g", pids=4096,
        cap_add=tuple(host.cap_add), privileged=host.privileged, env=tuple(host.env.items()),
    )
    try:
        engine.run_container(spec)
        with Session(name, env=host.env) as session:
            what = f"lab {lab_id}: setup of host {host_name!r}"
            for file in host.files:
                run_required(session, write_file_command(file.path, file.content, file.mode), SETUP_TIMEOUT, what, SetupFailed)
            for number, command in enumerate(host.setup, start=1):
                live.note(lab_id, f"host {host_name}: setup {number}/{len(host.setup)}: {command.strip().splitlines()[0][:120]}")
                run_required(session, command, SETUP_TIMEOUT, what, SetupFailed)
            session.run("rm -rf /var/lib/apt/lists/* /tmp/* 2>/dev/null || true", timeout=60)
        engine.commit(name, tag)
    finally:
        engine.remove_containers([name])
