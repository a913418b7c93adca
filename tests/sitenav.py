"""Build this repository's site with MkDocs and with Zensical, and read a built page's sidebar.

Shared by the site tests (tests/unit) and the browser tests; `tests/` is on sys.path through
its conftest.py.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
import sys
from pathlib import Path

from bs4 import BeautifulSoup

from opslabs.navigation import NAV_FILE
from opslabs.render import MANIFEST, previously_rendered

BIN = Path(sys.executable).parent


def project_copy(repo: Path, root: Path) -> Path:
    """mkdocs.yml and the hand-written pages in `root`, the labs (and results) linked from the repository.

    The copy is rendered afresh (`render`), so a stale render in the repository does not count.

    Zensical wants docs_dir and site_dir inside the project, so it cannot build into a
    folder of its own from the repository itself without touching the repository's site/.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(repo / "docs", root / "docs")
    for rendered in [*previously_rendered(root / "docs"), MANIFEST, NAV_FILE]:  # left by a render in the repository
        (root / "docs" / rendered).unlink(missing_ok=True)
    (root / "labs").symlink_to(repo / "labs")
    if (repo / ".opslabs").is_dir():  # results and block report: the same badges in both builds
        (root / ".opslabs").symlink_to(repo / ".opslabs")
    return root


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def render(project: Path) -> None:
    proc = run([str(BIN / "opslabs"), "render"], project)
    assert proc.returncode == 0, proc.stderr[-3000:]


def build_mkdocs(project: Path, site: str = "site-mkdocs", strict: bool = True) -> Path:
    proc = run([str(BIN / "mkdocs"), "build", "--strict" if strict else "--no-strict", "--quiet", "--site-dir", site], project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return project / site


def build_zensical(project: Path) -> Path:
    """Zensical builds into mkdocs.yml's site_dir; `--clean` drops its cache so nothing is reused."""
    proc = run([str(BIN / "zensical"), "build", "--strict", "--clean"], project)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return project / "site"


def pages(site: Path) -> set[str]:
    return {str(p.relative_to(site)) for p in site.rglob("*.html")}


def page_url(page: str) -> str:
    """`a/b/index.html` -> `/a/b/`, the URL a reader sees."""
    return "/" + (page[: -len("index.html")] if page.endswith("index.html") else page)


def _resolve(url: str, href: str) -> str:
    if href.startswith(("http:", "https:", "#")):
        return href
    path = posixpath.normpath(posixpath.join(url, href))
    return path if path.endswith(".html") else path.rstrip("/") + "/"


def _own(li):
    """The item's own elements: its links, not its sub-navigation (section index links sit in a div)."""
    for child in li.children:
        if child.name == "div":
            yield from child.children
        elif child.name != "nav":
            yield child


def _items(ul, url: str) -> tuple:
    items = []
    for li in ul.find_all("li", class_="md-nav__item", recursive=False):
        links = [c for c in _own(li) if c.name in ("a", "label") and "md-nav__link" in c.get("class", [])]
        title = links[0].get_text(" ", strip=True) if links else ""
        href = next((_resolve(url, c["href"]) for c in links if c.name == "a" and c.get("href") is not None), None)
        children: tuple = ()
        for nav in li.find_all("nav", recursive=False):
            sub = nav.find("ul", class_="md-nav__list", recursive=False)
            if "md-nav--secondary" not in nav.get("class", []) and sub is not None:  # not the page's table of contents
                children = _items(sub, url)
        items.append((title, href, children))
    return tuple(items)


def sidebar(site: Path, page: str) -> tuple:
    """The primary navigation of a built page: ((title, absolute URL or None, children), ...)."""
    html = (site / page).read_text(encoding="utf-8")
    start, end = html.find('class="md-sidebar md-sidebar--primary"'), html.find('class="md-sidebar md-sidebar--secondary"')
    assert start != -1 and end > start, f"{page}: no primary sidebar"
    soup = BeautifulSoup(html[start - 5:end], "html.parser")  # the sidebar alone: a page's article is 10x its size
    nav = soup.select_one("nav.md-nav--primary")
    return _items(nav.find("ul", class_="md-nav__list", recursive=False), page_url(page))


def links(items: tuple) -> list[str]:
    """Every URL in a sidebar, depth first."""
    found = []
    for _title, href, children in items:
        if href is not None:
            found.append(href)
        found.extend(links(children))
    return found
