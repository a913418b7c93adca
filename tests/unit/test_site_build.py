"""The real site builds strictly, with a page per area and per task guide."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opslabs.load import load_catalog
from opslabs.navigation import NAV_FILE

MKDOCS = [sys.executable, "-m", "mkdocs"]


@pytest.fixture(scope="module")
def built_site(repo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # as `make site` does: mkdocs.yml inherits the navigation file that `opslabs render` writes
    rendered = subprocess.run([str(Path(sys.executable).parent / "opslabs"), "render"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    proc = subprocess.run([*MKDOCS, "build", "--strict", "--site-dir", str(out)], cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_every_area_and_guide_has_a_page(repo, built_site):
    catalog = load_catalog(repo / "labs")
    for area in catalog.areas:
        assert (built_site / area.id / "index.html").is_file(), area.id
        for entry in area.tasks:
            assert (built_site / area.id / entry.id / "index.html").is_file(), entry.id
            if entry.task.lab:
                assert (built_site / area.id / entry.id / "lab" / "index.html").is_file(), entry.id


def test_home_page_lists_every_area(repo, built_site):
    home = (built_site / "index.html").read_text()
    for area in load_catalog(repo / "labs").areas:
        assert f'href="{area.id}/"' in home, area.id


def test_search_index_and_tags_page_exist(built_site):
    assert (built_site / "search" / "search_index.json").is_file()
    assert "material/tags" not in (built_site / "tags" / "index.html").read_text()


def small_project(repo: Path, root: Path, area_yaml: str) -> Path:
    shutil.copy(repo / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(repo / "docs", root / "docs", ignore=shutil.ignore_patterns("index.md", "labs.md", ".opslabs-pages", NAV_FILE))
    (root / "docs" / NAV_FILE).write_text("nav: []\n")  # a render happened; MkDocs takes the nav from mkdocs.yml and the plugin
    for folder in [p for p in (root / "docs").iterdir() if p.is_dir() and p.name != "assets"]:
        shutil.rmtree(folder)  # pages rendered from the repository's own labs
    area = root / "labs" / "web"
    area.mkdir(parents=True)
    (area / "area.yaml").write_text(area_yaml)
    return root


def test_invalid_yaml_fails_the_build_with_the_loader_message(repo, tmp_path):
    small_project(repo, tmp_path, "id: web\ntitle: Web\norder: 1\nsummary: s\noverview: o\ncolor: blue\n")
    proc = subprocess.run([*MKDOCS, "build", "--strict"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "labs/web/area.yaml:6:1: color: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_pages_rendered_for_a_task_that_is_gone_do_not_break_the_build(repo, tmp_path):
    small_project(repo, tmp_path, "id: web\ntitle: Web\norder: 1\nsummary: s\noverview: o\n")
    (tmp_path / "docs" / "web" / "old-task").mkdir(parents=True)
    (tmp_path / "docs" / "web" / "old-task" / "index.md").write_text("# A deleted task\n")
    (tmp_path / "docs" / ".opslabs-pages").write_text("web/old-task/index.md\n")
    proc = subprocess.run([*MKDOCS, "build", "--strict"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "site" / "web" / "old-task").exists()
