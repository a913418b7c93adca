"""The workshop server's plain functions, without a server, a browser or Docker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from opslabs.errors import UserError
from opslabs.load import load_catalog
from opslabs.web import service as service_module
from opslabs.web.pages import step_html
from opslabs.web.service import Conflict, Forbidden, NotFound, Settings, Workshop, parse_duration, progress_line
from opslabs.web.state import WebState, clean_name
from opslabs.web.terminal import MAX_MESSAGE, BadMessage, Input, Resize, parse_message

LABS = Path(__file__).parents[1] / "integration" / "fixtures" / "labs"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(LABS)


@pytest.fixture
def room(catalog, tmp_path):
    return Workshop(catalog, tmp_path / "workshop.db", Settings(seats=2, idle=60))


def test_terminal_messages_are_input_or_resize_and_anything_else_is_named():
    assert parse_message('{"type": "input", "data": "ls -l\\r"}') == Input("ls -l\r")
    assert parse_message(json.dumps({"type": "resize", "cols": 120, "rows": 30})) == Resize(120, 30)
    with pytest.raises(BadMessage, match="expected a JSON message, got invalid JSON"):
        parse_message("{oops")
    with pytest.raises(BadMessage, match='expected {"type": "input"'):
        parse_message('{"type": "exec", "data": "rm -rf /"}')
    with pytest.raises(BadMessage, match='needs "data", a string'):
        parse_message('{"type": "input", "data": 5}')
    for bad in ({"cols": 0, "rows": 10}, {"cols": 10, "rows": 1001}, {"cols": True, "rows": 10}, {"cols": "80", "rows": 24}):
        with pytest.raises(BadMessage, match="whole numbers from 1 to 1000"):
            parse_message(json.dumps({"type": "resize", **bad}))
    with pytest.raises(BadMessage, match=f"message too large: {MAX_MESSAGE + 1} bytes, at most {MAX_MESSAGE}"):
        parse_message("x" * (MAX_MESSAGE + 1))


def test_durations_and_progress_read_as_the_cli_says_them():
    assert [parse_duration(t) for t in ("30m", "90s", "2h", "45", " 1.5m ")] == [1800, 90, 7200, 45, 90]
    for bad in ("soon", "0", "-5m", ""):
        with pytest.raises(UserError, match="duration"):
            parse_duration(bad)
    assert progress_line([1], 2) == "1/2 steps done, now: step 2"
    assert progress_line([1, 2], 2) == "2/2 steps done, now: complete"


def test_a_name_is_one_printable_line():
    assert clean_name("  Ada \n\t Lovelace\x07 ") == "Ada Lovelace"
    with pytest.raises(UserError, match="enter your name"):
        clean_name(" \x00 ")
    with pytest.raises(UserError, match="at most 60 characters"):
        clean_name("x" * 61)


def test_step_text_renders_as_the_site_does_and_raw_html_is_escaped():
    html = step_html("Write `port=8080`.\n\n<script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n!!! note\n    Careful.")
    assert "<code>port=8080</code>" in html and "<table>" in html and 'class="admonition note"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in step_html('an <img src=x onerror="alert(1)"> inline')


def test_secrets_and_rows_survive_a_new_state_object(tmp_path):
    first = WebState(tmp_path / "w.db").secrets()
    assert WebState(tmp_path / "w.db").secrets() == first  # a restart keeps cookies, code and token valid
    assert len(first["secret_key"]) >= 40 and first["code"] != first["trainer_token"]
    state = WebState(tmp_path / "w.db")
    ada = state.add_learner("Ada")
    row = state.ensure_lab(ada.id, "two-part", "run1")
    assert state.ensure_lab(ada.id, "two-part", "run2").run_id == "run1"  # one run per learner and lab, kept
    state.set_status(ada.id, "two-part", "running", engine="")
    state.record_check(ada.id, "two-part", 1, False)
    assert state.stop_all("the server stopped") == 1
    again = WebState(tmp_path / "w.db").lab(ada.id, "two-part")
    assert (again.status, again.note, again.last_check["step"], again.last_check["passed"]) == ("stopped", "the server stopped", 1, False)
    assert row.status == "stopped"


def test_join_needs_the_workshop_code_and_the_trainer_the_token(room):
    with pytest.raises(Forbidden, match="not this workshop's code"):
        room.join("Ada", "0000-0000")
    ada = room.join("Ada", "  " + room.secrets["code"].upper() + " ")
    assert room.learner(ada.id).name == "Ada"
    with pytest.raises(Forbidden, match="join the workshop first"):
        room.learner("someone-else")
    with pytest.raises(Forbidden):
        room.learner(None)
    assert room.trainer_ok(room.secrets["trainer_token"]) and not room.trainer_ok("guess")


def test_a_learner_reaches_only_their_own_running_lab_and_its_hosts(room):
    ada, grace = room.join("Ada", room.secrets["code"]), room.join("Grace", room.secrets["code"])
    with pytest.raises(NotFound, match="there is no lab 'nope' in this workshop"):
        room.lab_state(ada.id, "nope")
    state = room.lab_state(ada.id, "two-part")
    assert state["status"] == "new" and state["step"]["title"] == "Write the configuration"
    assert "<code>/srv/app/app.conf</code>" in state["step"]["html"]
    room.state.ensure_lab(ada.id, "two-part", "adarun")
    room.state.set_status(ada.id, "two-part", "running")
    container, engine_url = room.terminal(ada.id, "two-part", "app")
    assert container == "opslabs-two-part-adarun-app" and engine_url == ""
    with pytest.raises(NotFound, match="lab two-part has no host 'web1'; its hosts are app, "):
        room.terminal(ada.id, "two-part", "web1")
    with pytest.raises(Conflict, match="your lab two-part is not running"):
        room.terminal(grace.id, "two-part", "app")  # Grace names the same lab: she gets hers, which is not running
    with pytest.raises(Conflict, match="not running"):
        room.check(grace.id, "two-part")
    with pytest.raises(Conflict, match="cannot run here: it requires kubernetes"):
        room.start(ada.id, "needs-kubernetes")


def test_the_reaper_stops_only_labs_idle_past_the_limit_and_keeps_progress(room, monkeypatch):
    stopped = []
    monkeypatch.setattr(service_module.workshop, "stop", lambda lab, store, owner, forget: stopped.append((lab, owner, forget)))
    ada, grace = room.join("Ada", room.secrets["code"]), room.join("Grace", room.secrets["code"])
    for learner in (ada, grace):
        room.state.ensure_lab(learner.id, "two-part", f"run-{learner.name}")
        room.state.set_status(learner.id, "two-part", "running")
    room.state.touch(ada.id, "two-part", when=time.time() - 61)
    reaped = room.reap_idle()
    assert [row.learner for row in reaped] == [ada.id]
    assert stopped == [("two-part", room.owner(ada.id), False)]  # progress kept
    assert room.state.lab(ada.id, "two-part").note == ("Your lab was stopped after 1 minute without activity. "
                                                       "Your progress is kept: Start recreates it at your step.")
    assert room.state.lab(grace.id, "two-part").running


def test_a_new_lab_takes_a_seat_and_a_stop_gives_it_back(room, monkeypatch):
    monkeypatch.setattr(room.pool, "_probe", lambda url: "")
    monkeypatch.setattr(service_module.workshop, "stop", lambda *args, **kwargs: ([], []))
    assert [room.place("a", None), room.place("b", None)] == ["", ""]
    with pytest.raises(Conflict, match="no free seat for a new lab: 2 seats taken on the default engine"):
        room.place("c", None)
    ada = room.join("Ada", room.secrets["code"])
    room.state.ensure_lab(ada.id, "two-part", "r")
    room.state.set_status(ada.id, "two-part", "running")
    room.stop(ada.id, "two-part", "stopped by the trainer")
    assert room.place("c", None) == ""
