"""`opslabs verify`'s plan reads the results store once: the same snapshot orders a parallel run."""

import json
from types import SimpleNamespace

from opslabs.cli import _plan
from opslabs.store import results as results_module


def test_a_parallel_plan_orders_longest_first_from_its_one_read_of_the_store(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"labs": [{"id": "short", "status": "passed", "duration": 1},
                                         {"id": "long", "status": "passed", "duration": 9}]}))
    reads = []
    real = results_module.read_results
    monkeypatch.setattr(results_module, "read_results", lambda p, *args: reads.append(p) or real(p, *args))
    def lab(name: str, steps: int = 1):
        return SimpleNamespace(id=name, task=SimpleNamespace(lab=SimpleNamespace(steps=[None] * steps)))

    labs = [lab("short"), lab("new"), lab("long")]  # "new": never recorded, one step at the median 5 s per step

    assert [lab.id for lab in _plan(None, labs, path, False, None, (), jobs=2)] == ["long", "new", "short"]
    assert reads == [path]
    assert [lab.id for lab in _plan(None, labs, path, False, None, ())] == ["short", "new", "long"]  # one job: as listed
