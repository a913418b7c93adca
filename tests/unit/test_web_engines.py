"""The workshop server and its engine pool, without Docker: where labs go when an engine is out of room."""

from pathlib import Path

import pytest

from opslabs import engine
from opslabs.load import load_catalog
from opslabs.web import service as service_module
from opslabs.web.service import Settings, Workshop

LABS = Path(__file__).parents[1] / "integration" / "fixtures" / "labs"


def test_an_engine_out_of_networks_gets_no_new_lab_and_the_next_start_goes_elsewhere(tmp_path, monkeypatch):
    room = Workshop(load_catalog(LABS), tmp_path / "workshop.db",
                    Settings(seats=2, idle=60, engines=("unix:///e0.sock", "unix:///e1.sock")))
    monkeypatch.setattr(room.pool, "_probe", lambda url: "")
    monkeypatch.setattr(service_module.workshop, "stop", lambda *args, **kwargs: ([], []))

    def no_room(entry, say, **kwargs):
        raise engine.NoAddressPool(f"the Docker engine at {engine.current_url()} has no address range left for another "
                                   "lab network (every lab has its own). Give dockerd more")

    monkeypatch.setattr(service_module.workshop, "start", no_room)
    ada = room.join("Ada", room.secrets["code"])
    with pytest.raises(engine.NoAddressPool):
        room.start(ada.id, "two-part")  # the first engine given: a tie on free seats
    e0 = room.pool.get("unix:///e0.sock")
    assert e0.used == 0 and e0.full.startswith("the Docker engine at unix:///e0.sock has no address range left")
    assert room.pool.status()[0]["problem"] == e0.full  # the trainer's page says why

    started_on = []
    monkeypatch.setattr(service_module.workshop, "start", lambda entry, say, **kwargs: started_on.append(engine.current_url()))
    room.start(ada.id, "two-part")
    assert started_on == ["unix:///e1.sock"]
