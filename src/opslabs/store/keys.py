"""The content key of a lab: a hash of everything its run depends on.

Two runs of a lab with the same key run the same commands against the same kind of base
image, so a passing result recorded under that key still holds (`opslabs verify --changed`
skips the lab). What goes in:

- the task file's text (its guide too: guide blocks marked `run=` execute in the lab; the
  hosts' `setup`, `start`, `files` and `env` are written in it);
- the values of `labs/versions.yaml` the file refers to (`[[version:…]]`, `[[uses:…]]`);
- each base image's *definition*: its name and, for images opslabs bootstraps itself, the
  recipe (suite, variant, the slimming configuration). Never the local image id: an image
  built with debootstrap gets a new id on every machine, so a key holding it would change
  on every CI runner. The mirror and the host's extra CA certificates are left out for the
  same reason (they differ per machine and do not change what a lab's commands do);
- the opslabs version and this key's own schema.

Upstream packages a setup installs (`apt-get install nginx`) can change under the same key:
the scheduled full run (`opslabs verify` without `--changed`) catches that rot.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

from opslabs.catalog import TaskEntry
from opslabs.versions import PLACEHOLDER, Versions

KEY_SCHEMA = 1  # bump when what goes into a key changes: every lab then runs again


def opslabs_version() -> str:
    try:
        return metadata.version("opslabs")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        from opslabs import __version__

        return __version__


def base_definition(image: str) -> dict[str, str]:
    """How a base image comes to be, the same on every machine."""
    from opslabs import images

    suite = images.BOOTSTRAPPABLE.get(image)
    if suite is None:
        return {"image": image, "source": "local or pulled by name"}
    recipe = hashlib.sha256((images.SLIM_DPKG_CONFIG + images.APT_CLEAN_CONFIG).encode()).hexdigest()[:16]
    return {"image": image, "source": "local, pulled, or bootstrapped",
            "bootstrap": f"debootstrap --variant=minbase {suite}", "slim": recipe}


def versions_used(text: str, versions: Versions) -> dict[str, str]:
    """{`version:trivy`: value} for every placeholder the text names (unknown names fail at load)."""
    used = {}
    for kind, name in PLACEHOLDER.findall(text):
        table = versions.actions if kind == "uses" else versions.tools
        used[f"{kind}:{name}"] = table.get(name, "")
    return dict(sorted(used.items()))


def key_material(entry: TaskEntry, versions: Versions, text: str | None = None) -> dict:
    """What the key hashes, as a document (also what `opslabs results explain` could print)."""
    if text is None:
        text = Path(entry.path).read_text(encoding="utf-8")
    text = text.replace("\r\n", "\n")  # a checkout's line endings are not content
    lab = entry.task.lab
    images = sorted({host.image for host in lab.hosts.values()}) if lab else []
    return {
        "schema": KEY_SCHEMA,
        "opslabs": opslabs_version(),
        "lab": entry.id,
        "file": text,
        "versions": versions_used(text, versions),
        "images": [base_definition(image) for image in images],
    }


def lab_key(entry: TaskEntry, versions: Versions, text: str | None = None) -> str:
    """sha256 of the key material, hex: the same on every machine for the same content."""
    material = json.dumps(key_material(entry, versions, text), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=32)
def _git_state(folder: str) -> tuple[str | None, frozenset[str]]:
    """(HEAD commit, absolute paths with uncommitted changes) of the repository holding `folder`."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    top = git("rev-parse", "--show-toplevel")
    if not head or not top:
        return None, frozenset()
    status = git("status", "--porcelain", "-z", "--", ".") or ""
    changed = {str((Path(top.strip()) / entry[3:]).resolve()) for entry in status.split("\0") if len(entry) > 3}
    return head.strip(), frozenset(changed)


def content_commit(path: Path) -> tuple[str | None, bool]:
    """(commit, modified): the content repository's HEAD when `path` lives in one (else None),
    and whether `path` differs from that commit (then the page says so)."""
    path = Path(path).resolve()
    head, changed = _git_state(str(path.parent))
    return head, head is not None and str(path) in changed
