"""WCAG 2.1 A/AA on every page type of the built site, in the light and the dark palette, checked by axe-core.

axe-core comes from npm, pinned by frontend/package-lock.json; scripts/vendor-frontend.py copies axe.min.js
into the package's vendor folder (make browser does). No rule is disabled and no element is excluded.
"""

import json
import os

import pytest

pytestmark = pytest.mark.browser

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# One page of each type; the guide and the lab have the most varied markup (code, admonitions, task lists,
# tables, folded hints and solutions, the breadcrumb line), the networking area a task list of 8 items.
PAGES = {
    "home": "/",
    "area": "/networking/",
    "guide": "/networking/nginx-load-balancer/",
    "guide with checked code blocks": "/data-engineering/redis-streams-consumer-group/",
    "guide with a link on inline code": "/cicd/jenkins-pipeline-gitops-update/",
    "lab": "/networking/nginx-load-balancer/lab/",
    "labs": "/labs/",
    "tags": "/tags/",
    "verification": "/verification/",
    "hand-written page": "/authoring/",
}
SCHEMES = {"light": "default", "dark": "slate"}


@pytest.fixture(scope="module")
def axe_script(repo):
    path = repo / "src" / "opslabs" / "web" / "static" / "vendor" / "axe.min.js"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python scripts/vendor-frontend.py` (make browser does)")
    return str(path)


@pytest.fixture(scope="module", params=list(SCHEMES))
def palette_page(request, browser):
    """One page per palette, reused for every page type. The browser asks for the palette as a reader's
    system setting does (prefers-color-scheme); Material picks the matching palette and stores it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=request.param)
    page = context.new_page()
    yield request.param, page
    context.close()


def open_in_palette(page, url, scheme):
    response = page.goto(url)
    assert response is not None and response.ok, f"{url} is not in the built site"
    wanted = SCHEMES[scheme]
    if page.locator("body").get_attribute("data-md-color-scheme") != wanted:
        # Not chosen by the system setting: use the palette toggle, as a reader would (Material keeps the choice).
        page.locator("form[data-md-component=palette] label:visible").first.click()
        page.wait_for_function(f"document.body.getAttribute('data-md-color-scheme') === '{wanted}'")
    assert page.locator("body").get_attribute("data-md-color-scheme") == wanted


def run_axe(page, axe_script):
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=axe_script)
    return page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", AXE_TAGS)


def describe(violations):
    lines = []
    for rule in violations:
        lines.append(f"{rule['id']} ({rule['impact']}): {rule['help']} [{len(rule['nodes'])} element(s)] {rule['helpUrl']}")
        for node in rule["nodes"][:5]:
            summary = " ".join(node["failureSummary"].split())
            lines.append(f"    {json.dumps(node['target'])}: {summary}")
    return "\n".join(lines)


def open_every_fold(page):
    """Hints, solutions and "How host is prepared" are folded; a reader opens them, so axe checks them open."""
    return page.evaluate("[...document.querySelectorAll('details')].map(d => d.open = true).length")


@pytest.mark.parametrize("kind", list(PAGES))
def test_page_type_has_no_wcag_violations(palette_page, kind, site_url, axe_script):
    scheme, page = palette_page
    open_in_palette(page, site_url + PAGES[kind], scheme)
    folds = open_every_fold(page)
    if kind == "lab":
        assert folds >= 3, "the lab's hints and solutions are folded in <details>"
    result = run_axe(page, axe_script)
    assert result["violations"] == [], f"{kind} page, {scheme} palette:\n{describe(result['violations'])}"


def test_search_results_have_no_wcag_violations(palette_page, site_url, axe_script):
    scheme, page = palette_page
    open_in_palette(page, site_url + "/", scheme)
    page.locator("label.md-search__icon, .md-search__input").first.click()
    page.locator("input.md-search__input").fill("nginx upstream")
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15000)
    assert page.locator(".md-search-result mark").count() >= 1, "search highlights the matched words"
    result = run_axe(page, axe_script)
    assert result["violations"] == [], f"search results, {scheme} palette:\n{describe(result['violations'])}"


def test_hovered_buttons_and_links_keep_their_contrast(palette_page, site_url, axe_script):
    """Hover turns buttons and links to the accent colour; axe checks the page as it is, so hover each one."""
    scheme, page = palette_page
    open_in_palette(page, site_url + "/", scheme)
    targets = [".md-typeset .md-button--primary", ".md-typeset .md-button:not(.md-button--primary)",
               "article p a[href$='verification/']"]
    page.add_script_tag(path=axe_script)
    for selector in targets:
        page.hover(selector)
        page.wait_for_timeout(300)  # Material's colour transition
        result = page.evaluate("s => axe.run(s, {runOnly: ['color-contrast'], resultTypes: ['violations']})", selector)
        assert result["violations"] == [], f"{selector} hovered, {scheme} palette:\n{describe(result['violations'])}"


NARROW_PAGES = ["home", "area", "lab", "verification", "hand-written page"]


@pytest.fixture(scope="module")
def narrow_page(browser):
    """A phone-sized window, 320 CSS pixels wide (the width WCAG 1.4.10 asks content to reflow to)."""
    context = browser.new_context(viewport={"width": 320, "height": 700})
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.parametrize("kind", NARROW_PAGES)
def test_page_type_on_a_narrow_screen_has_no_wcag_violations(narrow_page, kind, site_url, axe_script):
    open_in_palette(narrow_page, site_url + PAGES[kind], "light")
    open_every_fold(narrow_page)
    result = run_axe(narrow_page, axe_script)
    assert result["violations"] == [], f"{kind} page, 320 px wide:\n{describe(result['violations'])}"


def test_the_check_fails_on_a_violation(page, site_url, axe_script):
    """The harness can fail: an unlabelled checkbox and grey-on-white text are reported."""
    page.goto(site_url + "/")
    page.evaluate("""() => {
        const article = document.querySelector('article');
        article.insertAdjacentHTML('beforeend',
            '<p><input type="checkbox"> <span style="color:#aaaaaa;background:#ffffff">faint text</span></p>');
    }""")
    rules = {rule["id"] for rule in run_axe(page, axe_script)["violations"]}
    assert {"label", "color-contrast"} <= rules


@pytest.mark.skipif(not os.environ.get("OPSLABS_A11Y_ALL_PAGES"), reason="every page: set OPSLABS_A11Y_ALL_PAGES=1 (slow)")
def test_every_page_has_no_wcag_violations(palette_page, site_url, axe_script, repo):
    """The same check on every page of the site, for a release or after a theme change (about 5 s a page)."""
    scheme, page = palette_page
    site = repo / "site"
    paths = sorted("/" + p.parent.relative_to(site).as_posix().removeprefix(".") for p in site.rglob("index.html"))
    assert len(paths) > 100
    failures = []
    for path in paths:
        url = site_url + path.rstrip("/") + "/"
        open_in_palette(page, url, scheme)
        open_every_fold(page)
        violations = run_axe(page, axe_script)["violations"]
        if violations:
            failures.append(f"{path}:\n{describe(violations)}")
    assert not failures, f"{scheme} palette:\n" + "\n".join(failures)
