"""The sidebar a reader clicks through: pruned in the MkDocs site, the same in the Zensical site."""

import functools
import http.server
import threading

import pytest

from opslabs.load import load_catalog
from sitenav import build_zensical, project_copy, render

pytestmark = pytest.mark.browser


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def catalog(repo):
    return load_catalog(repo / "labs")


@pytest.fixture(scope="module")
def zensical_url(repo, tmp_path_factory):
    """This repository rendered by `opslabs render` and built by Zensical (no MkDocs plugin runs)."""
    project = project_copy(repo, tmp_path_factory.mktemp("zensical") / "project")
    render(project)
    site = build_zensical(project)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def sidebar_link(page, title: str):
    return page.locator("nav.md-nav--primary a.md-nav__link:visible", has_text=title).first


def heading(page) -> str:
    return page.locator("article h1").first.inner_text().rstrip("¶").strip()


def test_the_pruned_sidebar_leads_from_the_home_page_to_every_area_and_its_guides(page, site_url, catalog, repo):
    page.goto(site_url + "/")
    html = page.content()
    for area in catalog.areas:  # pruned: the home page names each area once, not its hundreds of pages
        assert html.count(f'href="{area.id}/"') >= 1, area.id
        assert f'href="{area.id}/{area.tasks[0].id}/"' not in html, "the sidebar should be pruned"
    for area in catalog.areas:
        page.goto(site_url + "/")
        sidebar_link(page, area.area.title).click()
        page.wait_for_url(f"**/{area.id}/")
        assert heading(page) == area.area.title
        # the open area lists its guides (and labs) in the sidebar; its first guide is one click away
        first = area.tasks[0]
        sidebar_link(page, first.task.title).click()
        page.wait_for_url(f"**/{area.id}/{first.id}/")
        assert heading(page) == first.task.title
    page.screenshot(path=str(repo / ".opslabs" / "sidebar-pruned.png"), full_page=False)


def test_from_a_guide_the_sidebar_leads_to_another_area(page, site_url, catalog):
    first, last = catalog.areas[0], catalog.areas[-1]
    page.goto(f"{site_url}/{first.id}/{first.tasks[0].id}/")
    sidebar_link(page, last.area.title).click()
    page.wait_for_url(f"**/{last.id}/")
    assert heading(page) == last.area.title


def test_the_zensical_site_has_the_area_navigation(page, zensical_url, catalog, repo):
    page.goto(zensical_url + "/")
    assert 'content="zensical' in page.content()  # this is Zensical's build, not MkDocs'
    area = next(a for a in catalog.areas if a.id == "networking")
    sidebar_link(page, area.area.title).click()
    page.wait_for_url(f"**/{area.id}/")
    assert heading(page) == area.area.title
    lab = next(e for e in area.tasks if e.task.lab)
    sidebar_link(page, f"Lab: {lab.task.title}").click()
    page.wait_for_url(f"**/{area.id}/{lab.id}/lab/")
    assert heading(page) == f"Lab: {lab.task.title}"
    page.screenshot(path=str(repo / ".opslabs" / "zensical-area.png"), full_page=False)
