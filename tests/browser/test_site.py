"""The built site, in headless Chromium, as a reader uses it."""

import pytest

from opslabs.load import load_catalog

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def catalog(repo):
    return load_catalog(repo / "labs")


def test_home_page_shows_every_area_as_a_card_that_leads_to_it(page, site_url, catalog, repo):
    page.goto(site_url + "/")
    cards = page.locator(".grid.cards li")
    assert cards.count() == len(catalog.areas) == 22
    first = catalog.areas[0]
    page.screenshot(path=str(repo / ".opslabs" / "home.png"), full_page=False)
    cards.first.get_by_role("link", name=first.area.title).click()
    page.wait_for_url(f"**/{first.id}/")
    assert page.locator("h1").first.inner_text().rstrip("¶") == first.area.title


def test_search_finds_a_lab(page, site_url):
    page.goto(site_url + "/")
    page.locator("label.md-search__icon, .md-search__input").first.click()
    page.locator("input.md-search__input").fill("nginx upstream")
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15000)
    assert "nginx" in results.first.inner_text().lower()


def test_dark_mode_toggle_switches_the_palette(page, site_url):
    page.goto(site_url + "/")
    body = page.locator("body")
    before = body.get_attribute("data-md-color-scheme")
    page.locator("form[data-md-component=palette] label:visible").first.click()
    page.wait_for_function(f"document.body.getAttribute('data-md-color-scheme') !== '{before}'")
    assert {before, body.get_attribute("data-md-color-scheme")} == {"default", "slate"}


def test_lab_page_has_copyable_commands_and_folded_hints(page, site_url, repo):
    page.goto(site_url + "/networking/nginx-load-balancer/lab/")
    assert page.locator("h1").first.inner_text().rstrip("¶") == "Lab: Load-balance web traffic with Nginx"
    copy = page.locator("button[data-md-type=copy]").first  # added by Material's JS
    copy.wait_for(state="attached", timeout=10000)
    assert copy.get_attribute("title") == "Copy to clipboard"
    hint = page.locator("details.tip").first
    assert hint.get_attribute("open") is None
    hint.locator("summary").click()
    assert hint.get_attribute("open") is not None
    assert page.locator("h2", has_text="Step 1: Put the backends behind an upstream group").count() == 1
    page.screenshot(path=str(repo / ".opslabs" / "lab.png"), full_page=False)


def test_tags_page_lists_tags_with_links(page, site_url):
    page.goto(site_url + "/tags/")
    assert page.locator("a[href*='nginx-load-balancer']").count() >= 1


def test_a_guide_says_how_each_code_block_was_checked_and_links_the_verification_page(page, site_url, repo):
    page.goto(site_url + "/data-engineering/redis-streams-consumer-group/")
    notes = page.locator(".opslabs-check")
    assert notes.count() >= 3
    assert page.locator(".opslabs-executed").count() >= 1, "the guide's worker is the lab's and runs in CI"
    summary = page.locator(".admonition.abstract", has_text="What CI checked on this page")
    assert "code blocks checked" in summary.inner_text()
    page.screenshot(path=str(repo / ".opslabs" / "guide-checks.png"), full_page=False)
    summary.get_by_role("link", name="How code blocks are checked").click()
    page.wait_for_url("**/verification/")
    table = page.locator("table").first
    assert table.locator("tbody tr").count() == 22  # one row per area
    assert "executed or validated" in page.locator("article").inner_text()
