"""The browser workshop in Chromium: a learner does a step, the trainer sees it, a second
learner is refused the first one's lab, progress survives a restart, no mouse needed, and
axe-core finds no WCAG 2.1 A/AA violation. One server (one lab per learner) serves the module."""

from __future__ import annotations

import base64
import json
import re

import pytest
from playwright.sync_api import expect

from workshop_server import REPO, Client, Server, workshop_leftovers

pytestmark = [pytest.mark.browser, pytest.mark.docker]

LAB = "gitflow-release"  # one host, four steps: the fastest lab to start
AXE = REPO / "src" / "opslabs" / "web" / "static" / "vendor" / "axe.min.js"
expect.set_options(timeout=30000)  # a loaded 2-core CI machine answers slowly


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("workshop"), "--seats", "4") as srv:
        yield srv


@pytest.fixture(scope="module")
def contexts(browser):
    made = {}

    def context(name: str, **options):
        if name not in made:
            made[name] = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
            made[name].set_default_timeout(60000)  # a loaded 2-core CI machine answers slowly
        return made[name]

    yield context
    for ctx in made.values():
        ctx.close()


def terminal_text(page, host: str = "dev") -> str:
    return page.locator(f"#term-{host} .xterm-accessibility-tree").inner_text()


def wait_terminal(page, text: str, host: str = "dev", timeout: float = 60000) -> None:
    page.wait_for_function(
        "([host, text]) => { const t = document.querySelector(`#term-${host} .xterm-accessibility-tree`);"
        " return t && t.innerText.includes(text); }", arg=[host, text], timeout=timeout)


def type_in_terminal(page, line: str, host: str = "dev") -> None:
    page.locator(f"#term-{host} textarea").focus()
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def join(page, server: Server, name: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Workshop code").fill(server.code)
    page.get_by_role("button", name="Join").click()
    page.get_by_role("heading", name="Pick a lab").wait_for()


def open_lab_started(page, server: Server) -> None:
    page.goto(f"{server.url}/lab/{LAB}")
    page.get_by_role("button", name=re.compile("Start lab|Continue at step")).click()
    page.locator("#lab-status", has_text="Your lab is running.").wait_for(timeout=120000)
    wait_terminal(page, "#")  # root's prompt on the host


def trainer(contexts, server: Server):
    page = contexts("trainer").new_page()
    page.goto(server.url + "/trainer")
    if page.get_by_label(re.compile("Trainer token")).count():
        page.get_by_label(re.compile("Trainer token")).fill(server.token)
        page.get_by_role("button", name="Open the room").click()
    page.get_by_role("table").wait_for()
    return page


def room_row(page, name: str):
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


def test_learner_types_checks_fixes_solves_and_the_trainer_sees_the_next_step(server, contexts):
    page = contexts("ada").new_page()
    join(page, server, "Ada Lovelace")
    page.get_by_role("link", name="Ship a release and a hotfix with GitFlow").click()
    expect(page.get_by_role("heading", name="Step 1 of 4: Create the repository and the develop branch")).to_be_visible()
    assert page.locator("#step-text code", has_text="/srv/shop").count() == 1  # the step's Markdown, rendered
    open_lab_started(page, server)

    # UTF-8 output (typed UTF-8 input is checked over the websocket below: Playwright types
    # characters off the US layout as IME text, which xterm.js leaves to the screen reader then).
    type_in_terminal(page, r"printf 'na\303\257ve-%d \342\234\223\n' $((6*7))")
    wait_terminal(page, "naïve-42 ✓")

    page.get_by_role("button", name="Check").click()
    results = page.locator("#results")
    results.get_by_text("Step 1 is not done yet.").wait_for()
    assert "There should be a Git repository in /srv/shop." in results.inner_text()

    type_in_terminal(page, "git init -q -b main /srv/shop && cd /srv/shop && git commit -q --allow-empty -m init && git branch develop && echo fixed-by-hand")
    wait_terminal(page, "fixed-by-hand")
    page.get_by_role("button", name="Check").click()
    results.get_by_text("Step 1 passed.").wait_for()
    expect(page.get_by_role("heading", name="Step 2 of 4: Merge a feature into develop")).to_be_visible()
    assert page.locator("#progress").inner_text() == "1/4 steps done, now: step 2"

    room = trainer(contexts, server)
    room_row(room, "Ada Lovelace").get_by_role("cell", name="step 2 of 4").wait_for()
    assert "step 1 passed" in room_row(room, "Ada Lovelace").inner_text()

    page.get_by_role("button", name="Hint").click()
    page.locator("#hints").get_by_text("Hint 1 of 1").wait_for()
    assert "always records a merge commit" in page.locator("#hints").inner_text()
    assert "not typed into your terminal" in page.locator("#solve-help").inner_text()
    page.get_by_role("button", name="Solve step").click()
    results.get_by_text("Applied the reference solution of step 2.").wait_for(timeout=60000)
    assert "Step 2 passed." in results.inner_text()
    room_row(room, "Ada Lovelace").get_by_role("cell", name="step 3 of 4").wait_for()
    assert "running" in room_row(room, "Ada Lovelace").inner_text()
    # The solution ran in the host's runner session, not in the learner's shell: nothing was typed there.
    assert "git switch -c feature/checkout" not in terminal_text(page)


def test_a_keyboard_alone_types_a_command_reaches_check_and_reads_the_result(server, contexts):
    page = contexts("ada").new_page()
    page.goto(f"{server.url}/lab/{LAB}")
    page.locator("#lab-status", has_text="Your lab is running.").wait_for()
    wait_terminal(page, "#")
    for _ in range(25):  # Tab from the top of the page to the terminal
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == "Terminal on dev":
            break
    else:
        pytest.fail("Tab never reached the terminal")
    page.keyboard.type("echo keyboard-$((40+2))")
    page.keyboard.press("Enter")
    wait_terminal(page, "keyboard-42")
    page.keyboard.press("Escape")  # Escape, then Tab, leaves the terminal
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "check"
    page.keyboard.press("Enter")
    page.locator("#results", has_text="Step 3 is not done yet.").wait_for()
    tree = page.get_by_role("status").filter(has_text="Step 3").aria_snapshot()
    assert "Step 3 is not done yet." in tree, tree
    assert "✘ failed:" in tree and "v1.0.0 should be an annotated tag (git tag -a)." in tree, tree
    live = page.locator("#results")
    assert live.get_attribute("aria-live") == "polite" and live.get_attribute("role") == "status"


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {runOnly: {type: 'tag', values: "
                           "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    return [{"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result["violations"]]


def test_axe_finds_no_wcag_violation_on_the_learner_and_trainer_pages(server, contexts):
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run scripts/vendor-frontend.py (make dev does)")
    # axe is injected as an inline script, which the pages' Content-Security-Policy forbids:
    # these contexts bypass it, with Ada's and the trainer's cookies.
    ada = contexts("ada-axe", bypass_csp=True)
    ada.add_cookies(contexts("ada").cookies())
    page = ada.new_page()
    page.goto(f"{server.url}/lab/{LAB}")
    page.locator("#lab-status", has_text="Your lab is running.").wait_for()
    wait_terminal(page, "#")
    page.get_by_role("button", name="Check").click()
    page.locator("#results", has_text="is not done yet").wait_for()
    page.get_by_role("button", name="Hint").click()
    page.locator("#hints", has_text="Hint 1 of").wait_for()
    assert axe_violations(page) == []
    trainer(contexts, server)
    room_context = contexts("trainer-axe", bypass_csp=True)
    room_context.add_cookies(contexts("trainer").cookies())
    room = room_context.new_page()
    room.goto(server.url + "/trainer")
    room_row(room, "Ada Lovelace").wait_for()
    assert axe_violations(room) == []
    join_page = contexts("newcomer", bypass_csp=True).new_page()
    join_page.goto(server.url + "/")
    assert axe_violations(join_page) == []


def processes(container: str) -> str:
    """Every process's command line in a lab host (it has no ps)."""
    import subprocess

    script = 'for p in /proc/[0-9]*; do tr "\\0" " " < "$p/cmdline"; echo; done 2>/dev/null'
    return subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True, text=True, timeout=30).stdout


def wait_until(condition, timeout: float = 10) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def ws_exchange(page, server: Server, path: str, sends: list[str], until: str | None = None) -> dict:
    """Open a websocket from the page's context, send messages, collect what comes back."""
    return page.evaluate("""async ([url, sends, until]) => new Promise((resolve) => {
        const got = {messages: [], text: "", code: null};
        const ws = new WebSocket(url); ws.binaryType = "arraybuffer";
        const done = () => resolve(got);
        ws.onopen = () => { for (const m of sends) ws.send(m); };
        ws.onmessage = (e) => {
          if (typeof e.data === "string") got.messages.push(JSON.parse(e.data));
          else got.text += new TextDecoder().decode(e.data);
          if (until && got.text.includes(until)) { ws.close(); setTimeout(done, 100); }
        };
        ws.onclose = (e) => { got.code = e.code; done(); };
        setTimeout(done, 30000);
    })""", [server.url.replace("http", "ws") + path, sends, until])


def test_a_second_learner_cannot_reach_the_first_ones_lab(server, contexts):
    grace = contexts("grace").new_page()
    join(grace, server, "Grace Hopper")
    # Grace has not started the lab: the URL of Ada's terminal and checks reaches nothing of Ada's.
    refused = ws_exchange(grace, server, f"/ws/lab/{LAB}/host/dev", [json.dumps({"type": "input", "data": "id\r"})])
    assert refused["code"] == 4409 and refused["text"] == ""
    assert "your lab gitflow-release is not running" in refused["messages"][0]["message"]
    check = grace.request.post(f"{server.url}/api/lab/{LAB}/check", headers={"X-Opslabs": "1"})
    assert check.status == 409 and "not running" in check.json()["error"]

    # A cookie naming Ada, but not signed by the server, is no one.
    room = Client(server)
    room.request("POST", "/trainer/login", form={"token": server.token})
    ada_id = next(l["id"] for l in json.loads(room.request("GET", "/api/trainer/room")[1])["learners"] if l["name"] == "Ada Lovelace")
    cookie = next(c for c in contexts("grace").cookies() if c["name"] == "opslabs_workshop")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"  # no script reads it; no other site's form sends it
    payload, stamp, signature = cookie["value"].split(".", 2)
    forged = base64.b64encode(json.dumps({"learner": ada_id}).encode()).decode() + "." + stamp + "." + signature
    thief = contexts("thief")
    thief.add_cookies([{**cookie, "value": forged}])
    stolen = thief.new_page()
    stolen_check = stolen.request.post(f"{server.url}/api/lab/{LAB}/check", headers={"X-Opslabs": "1"})
    assert stolen_check.status == 401 and "join the workshop first" in stolen_check.json()["error"]
    stolen.goto(server.url + "/")
    expect(stolen.get_by_role("heading", name="Join the workshop")).to_be_visible()
    assert ws_exchange(stolen, server, f"/ws/lab/{LAB}/host/dev", [])["code"] == 4401

    # Grace runs the same lab at once, on containers of her own, with no Docker socket in reach.
    open_lab_started(grace, server)
    type_in_terminal(grace, "test -e /srv/shop && echo sees-ada || echo own-empty-host; "
                            "test -S /var/run/docker.sock -o -S /run/docker.sock && echo socket-$((6*7)) || echo no-socket-$((6*7))")
    wait_terminal(grace, "socket-42")
    assert "own-empty-host" in terminal_text(grace) and "\nno-socket-42" in terminal_text(grace)
    solved = grace.request.post(f"{server.url}/api/lab/{LAB}/solve", headers={"X-Opslabs": "1"})
    assert solved.status == 200 and solved.json()["state"]["progress"]["text"] == "1/4 steps done, now: step 2"
    ada = contexts("ada").new_page()
    ada.goto(f"{server.url}/lab/{LAB}")
    ada.locator("#progress", has_text="2/4 steps done, now: step 3").wait_for()


def test_bad_input_gets_a_clear_error_and_closes_nothing_else(server, contexts):
    page = contexts("ada").new_page()
    page.goto(f"{server.url}/lab/{LAB}")
    page.locator("#lab-status", has_text="Your lab is running.").wait_for()
    too_large = json.dumps({"type": "input", "data": "x" * 70000})
    got = ws_exchange(page, server, f"/ws/lab/{LAB}/host/dev",
                      ["{not json", too_large, json.dumps({"type": "resize", "cols": 0}),
                       json.dumps({"type": "input", "data": "sleep 4321 & echo still-$((1+1))-open-ünïcode ✓\r"})],
                      until="still-2-open-ünïcode ✓")
    errors = [m["message"] for m in got["messages"] if m["type"] == "error"]
    assert errors[0].startswith("expected a JSON message, got invalid JSON")
    assert errors[1] == f"message too large: {len(too_large)} bytes, at most 65536 (paste less at a time)"
    assert "whole numbers from 1 to 1000" in errors[2]
    assert "still-2-open-ünïcode ✓" in got["text"]  # UTF-8 typed in, and back
    # Closing the terminal hangs up its shell and jobs in the container, as closing a terminal does.
    assert wait_until(lambda: not any("sleep 4321" in processes(c) for c in workshop_leftovers(server.workshop_id)[0]))
    no_host = ws_exchange(page, server, f"/ws/lab/{LAB}/host/web1", [])
    assert no_host["code"] == 4404 and no_host["messages"][0]["message"] == "lab gitflow-release has no host 'web1'; its hosts are dev"
    unknown = page.request.post(f"{server.url}/api/lab/no-such-lab/check", headers={"X-Opslabs": "1"})
    assert unknown.status == 404 and unknown.json() == {"error": "there is no lab 'no-such-lab' in this workshop"}
    page.goto(f"{server.url}/lab/no-such-lab")
    expect(page.get_by_text("there is no lab 'no-such-lab' in this workshop")).to_be_visible()
    for response in (unknown.text(), page.content()):
        assert "Traceback" not in response
    # Ada's own terminal on the page is still there and answers.
    page.goto(f"{server.url}/lab/{LAB}")
    wait_terminal(page, "#")
    type_in_terminal(page, "echo after-$((2+2))")
    wait_terminal(page, "after-4")


def test_a_lab_with_three_hosts_has_a_terminal_per_host_behind_keyboard_tabs(server, contexts):
    page = contexts("linus").new_page()
    join(page, server, "Linus")
    page.goto(f"{server.url}/lab/nginx-load-balancer")
    page.get_by_role("button", name="Start lab").click()
    wait_terminal(page, "#", host="lb", timeout=180000)
    assert [t.inner_text() for t in page.get_by_role("tab").all()] == ["lb", "web1", "web2"]
    page.get_by_role("tab", name="web2").click()
    wait_terminal(page, "#", host="web2")
    type_in_terminal(page, "hostname; echo on-$((1+1))", host="web2")
    wait_terminal(page, "on-2", host="web2")
    assert "\nweb2\n" in terminal_text(page, "web2")
    expect(page.locator("#term-lb")).to_be_hidden()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Tab")  # back out of the terminal, onto its tab
    assert page.evaluate("document.activeElement.getAttribute('role')") == "tab"
    page.keyboard.press("Home")  # the tab pattern's keys
    expect(page.get_by_role("tab", name="lb")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#term-lb")).to_be_visible()


def test_a_restart_keeps_both_learners_progress_and_recreates_the_lab_at_its_step(server, contexts):
    output = server.restart()
    assert "every lab's containers are removed, progress is kept" in output
    ws_id = server.workshop_id
    assert workshop_leftovers(ws_id) == ([], [])  # stopping the server left nothing behind
    grace = contexts("grace").new_page()
    grace.goto(f"{server.url}/lab/{LAB}")
    grace.locator("#progress", has_text="1/4 steps done, now: step 2").wait_for()
    ada = contexts("ada").new_page()
    ada.goto(f"{server.url}/lab/{LAB}")
    ada.locator("#progress", has_text="2/4 steps done, now: step 3").wait_for()
    ada.locator("#lab-status", has_text="The workshop server stopped. Your progress is kept").wait_for()
    expect(ada.get_by_role("button", name="Continue at step 3")).to_be_visible()
    open_lab_started(ada, server)
    expect(ada.get_by_role("heading", name=re.compile("^Step 3 of 4"))).to_be_visible()
    # Steps 1 and 2 were replayed on the new host: the merged feature is on develop.
    type_in_terminal(ada, "git -C /srv/shop cat-file -e develop:checkout.txt && echo replayed-$((1+1))")
    wait_terminal(ada, "replayed-2")
    room = trainer(contexts, server)  # the trainer's cookie outlives the restart too
    room_row(room, "Grace Hopper").get_by_role("cell", name="step 2 of 4").wait_for()
    room_row(room, "Ada Lovelace").get_by_role("cell", name="step 3 of 4").wait_for()
    # The trainer stops Ada's lab from the room; her open page says so and offers to continue.
    room.get_by_role("button", name="Stop Ada Lovelace's lab").click()
    room.locator("#trainer-status", has_text="Ada Lovelace's lab gitflow-release: stopped.").wait_for()
    ada.locator("#lab-status", has_text="Your trainer stopped this lab. Your progress is kept").wait_for()
    expect(ada.get_by_role("button", name="Continue at step 3")).to_be_visible()
    room_row(room, "Ada Lovelace").get_by_role("cell", name="stopped", exact=True).wait_for()
    assert workshop_leftovers(server.workshop_id) == ([], [])  # hers was the only lab running
