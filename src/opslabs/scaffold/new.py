"""Write a new content repository: copy files/, render its *.j2 files, record where opslabs installs from."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import jinja2

from opslabs.errors import UserError

FILES = Path(__file__).parent / "files"
TEMPLATE_SUFFIX = ".j2"
# A folder holding only these is empty enough (a fresh `git clone` of an empty repository).
IGNORED = {".git"}


@dataclass(frozen=True)
class Created:
    root: Path
    files: list[Path]
    install_spec: str


def scaffold_files() -> list[Path]:
    """Every file of the scaffold, relative to files/ (dotfiles included), in a stable order."""
    return sorted(p.relative_to(FILES) for p in FILES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def installed_from() -> str:
    """Where this opslabs was installed from, as a line pip reads: the wheel file or source folder
    recorded by pip (PEP 610 direct_url.json), a VCS URL, or `opslabs==VERSION` from an index."""
    try:
        dist = metadata.distribution("opslabs")
    except metadata.PackageNotFoundError:
        raise UserError("opslabs is not installed as a package here; pass --install-from with a wheel, "
                        "a source folder, a URL or a package spec") from None
    raw = dist.read_text("direct_url.json")
    if not raw:
        return f"opslabs=={dist.version}"
    info = json.loads(raw)
    url = info.get("url", "")
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        return f"opslabs @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}".rstrip("@")
    if url.startswith("file://"):
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if not path.exists():
            raise UserError(f"opslabs was installed from {path}, which no longer exists; pass --install-from "
                            "with a wheel, a source folder, a URL or a package spec")
        return str(path)
    return url


def install_line(spec: str) -> str:
    """SPEC as a requirements line: a path becomes absolute (it must exist); a URL or a package
    spec is left to pip."""
    looks_like_path = spec.startswith((".", "/", "~")) or spec.endswith((".whl", ".tar.gz", ".zip"))
    if "://" in spec or not (looks_like_path or Path(spec).exists()):
        return spec
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"--install-from {spec}: no such file or folder")
    return str(path.resolve())


def check_target(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: exists and is not a folder; opslabs new writes a new content repository into a folder")
    if root.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.name not in IGNORED)
        if found:
            shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
            raise UserError(f"{root}: not empty ({shown}); opslabs new writes only into a new or empty folder "
                            "(a .git folder alone is fine)")


def create(root: Path, install_from: str | None = None) -> Created:
    """Write the content repository into ROOT (new or empty); returns what was written."""
    root = Path(root)
    check_target(root)
    spec = install_line(install_from) if install_from else installed_from()
    name = root.resolve().name
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    values = {"name": name, "install_spec": spec}
    written = []
    for relative in scaffold_files():
        source = FILES / relative
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == TEMPLATE_SUFFIX:
            target = target.with_suffix("")
            target.write_text(env.from_string(source.read_text(encoding="utf-8")).render(values), encoding="utf-8")
        else:
            target.write_bytes(source.read_bytes())
        written.append(target.relative_to(root))
    return Created(root, written, spec)
