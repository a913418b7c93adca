"""The plugin's faster Material sidebar template renders the same pages as Material's own."""

import re
from pathlib import Path

import jinja2
import material
import pytest
import yaml
from mkdocs.commands.build import build
from mkdocs.config import load_config

from opslabs import mkdocs_plugin
from opslabs.theme_patches import INDEX_FIRST, INDEX_LOOP, PATCHES, PatchingLoader, patch_environment
from sitenav import project_copy, render, sidebar

MATERIAL_TEMPLATES = Path(material.__file__).parent / "templates"


def test_every_patch_matches_the_installed_material():
    """A Material upgrade that changes a patched fragment fails here, not silently slower."""
    for template, patches in PATCHES.items():
        source = (MATERIAL_TEMPLATES / template).read_text(encoding="utf-8")
        for old, _new in patches:
            assert old in source, f"{template}: the fragment to patch is gone; compare with {MATERIAL_TEMPLATES / template}"


def test_a_template_without_the_fragment_is_served_unchanged():
    loader = PatchingLoader(jinja2.DictLoader({"partials/nav-item.html": "{{ 1 }}", "other.html": INDEX_LOOP}))
    env = jinja2.Environment(loader=loader)
    assert loader.get_source(env, "partials/nav-item.html")[0] == "{{ 1 }}"
    assert loader.get_source(env, "other.html")[0] == INDEX_LOOP  # only the named template is patched
    assert loader.applied == set()


@pytest.mark.parametrize("children, expected", [
    (["a", "index", "b"], "index"), (["a", "b"], "None"), (["index", "index2"], "index"), ([], "None")])
def test_the_patched_fragment_finds_the_same_index_page(children, expected):
    """Both fragments pick the first child whose is_index is true, or none."""
    pages = [{"name": name, "is_index": name.startswith("index")} for name in children]
    tail = "{{ index.name if index else 'None' }}"
    for fragment in (INDEX_LOOP, INDEX_FIRST):
        template = jinja2.Environment().from_string(fragment + tail)
        assert template.render(nav_item={"children": pages}, features=["navigation.indexes"]).strip() == expected
        assert template.render(nav_item={"children": pages}, features=[]).strip() == "None"


def small_knowledge_base(labs: Path, areas: int = 3, tasks: int = 4) -> None:
    for a in range(areas):
        folder = labs / f"area-{a}"
        folder.mkdir(parents=True)
        (folder / "area.yaml").write_text(yaml.safe_dump({"id": f"area-{a}", "title": f"Area {a}", "order": a,
                                                           "summary": "s", "overview": "## Why\n\nText."}))
        for t in range(tasks):
            (folder / f"task-{a}-{t}.yaml").write_text(yaml.safe_dump({
                "id": f"task-{a}-{t}", "title": f"Task {a}.{t}", "summary": "s", "level": "beginner",
                "guide": "## Steps\n\n```bash\necho ok\n```\n"}))


def normalized(html: str) -> str:
    """Whitespace between tags is where the templates differ: the original loop emits some per child."""
    return re.sub(r"\s+", " ", html)


def test_the_site_is_the_same_with_and_without_the_patch(repo, tmp_path, monkeypatch):
    project = project_copy(repo, tmp_path / "project")
    (project / "labs").unlink()
    small_knowledge_base(project / "labs")
    render(project)
    monkeypatch.chdir(project)
    loaders = []
    monkeypatch.setattr(mkdocs_plugin, "patch_environment", lambda env: loaders.append(patch_environment(env)))
    build(load_config(str(project / "mkdocs.yml"), site_dir=str(project / "patched")))
    assert [loader.applied for loader in loaders] == [{"partials/nav-item.html"}]
    monkeypatch.setattr(mkdocs_plugin, "patch_environment", lambda env: None)
    build(load_config(str(project / "mkdocs.yml"), site_dir=str(project / "original")))
    pages = sorted(str(p.relative_to(project / "original")) for p in (project / "original").rglob("*.html"))
    assert len(pages) > 3 * 5
    for page in pages:
        original = (project / "original" / page).read_text()
        patched = (project / "patched" / page).read_text()
        assert normalized(patched) == normalized(original), page
        assert len(patched) < len(original), page  # the loop's whitespace is gone: the patch was used
    # the pruned sidebar: other areas are single links, the open area lists its pages
    items = sidebar(project / "patched", "area-1/index.html")
    areas = next(children for title, _, children in items if title == "Areas")
    assert [(title, href, len(children)) for title, href, children in areas] == [
        ("Area 0", "/area-0/", 0), ("Area 1", "/area-1/", 4), ("Area 2", "/area-2/", 0)]
