"""A lab host's web page through the workshop server's own proxy (opslabs.web.proxy): it loads
in the learner's browser context and in no other learner's; nothing of the lab is published."""

from __future__ import annotations

import subprocess

import pytest

from workshop_server import Server

pytestmark = [pytest.mark.browser, pytest.mark.docker]

LAB = "nginx-load-balancer"
PAGE = f"/lab/{LAB}/host/lb/port/80/"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("workshop-ports"), "--seats", "2") as srv:
        yield srv


def joined(browser, server: Server, name: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Workshop code").fill(server.code)
    page.get_by_role("button", name="Join").click()
    page.get_by_role("heading", name="Pick a lab").wait_for()
    return context, page


def test_the_nginx_page_loads_in_the_learners_context_and_not_in_anothers(server, browser):
    ada_context, ada = joined(browser, server, "Ada Lovelace")
    grace_context, grace = joined(browser, server, "Grace Hopper")
    try:
        started = ada.request.post(f"{server.url}/api/lab/{LAB}/start", headers={"X-Opslabs": "1"}, timeout=300000)
        assert started.status == 200, started.text()

        # The lab page's form opens the host's web page in a new tab, in Ada's browser context.
        ada.goto(f"{server.url}/lab/{LAB}")
        ada.get_by_label("Host", exact=True).select_option("lb")
        ada.get_by_label("Port", exact=True).fill("80")
        with ada_context.expect_page() as opened:
            ada.get_by_role("button", name="Open web page").click()
        tab = opened.value
        tab.get_by_role("heading", name="Welcome to nginx!").wait_for(timeout=30000)
        assert tab.url == server.url + PAGE
        tab.close()

        answer = ada.goto(server.url + PAGE)
        assert answer.status == 200
        assert ada.get_by_role("heading", name="Welcome to nginx!").is_visible()
        assert answer.headers["content-type"] == "text/html" and "\n" not in answer.headers["server"]  # one Server header

        # Nothing of the lab is published on any interface: the proxy reaches it over the engine.
        published = subprocess.run(["docker", "ps", "--filter", f"label=io.opslabs.lab={LAB}", "--format", "{{.Names}} {{.Ports}}"],
                                   capture_output=True, text=True, check=True).stdout.split("\n")
        assert all(len(line.split()) <= 1 for line in published), published

        # Grace, joined to the same workshop, reaches nothing of Ada's lab through the same URL.
        refused = grace.goto(server.url + PAGE)
        assert refused.status == 409
        assert "your lab nginx-load-balancer is not running" in grace.content()
        assert grace.get_by_role("heading", name="Welcome to nginx!").count() == 0
        # Nor does a browser that never joined.
        stranger_context = browser.new_context()
        try:
            stranger = stranger_context.new_page()
            assert stranger.goto(server.url + PAGE).status == 401
            assert "Welcome to nginx" not in stranger.content()
        finally:
            stranger_context.close()

        # A port where nothing listens says so, in the learner's context.
        closed = ada.goto(f"{server.url}/lab/{LAB}/host/lb/port/8080/")
        assert closed.status == 502 and "nothing listens on port 8080 of host lb" in ada.content()
        # A host that is not the lab's is refused by name.
        other = ada.goto(f"{server.url}/lab/{LAB}/host/db/port/80/")
        assert other.status == 404 and "has no host 'db'" in ada.content()
        bad = ada.goto(f"{server.url}/lab/{LAB}/open-port?host=lb&port=99999")
        assert bad.status == 400 and "a port from 1 to 65535" in ada.content()
    finally:
        ada_context.close()
        grace_context.close()
