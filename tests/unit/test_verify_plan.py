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


def test_a_parallel_plan_alternates_computing_and_waiting_labs_longest_first():
    from opslabs.store import plan

    recorded = {
        "ansible": {"duration": 60, "cpu_seconds": 80},    # 1.3 cores: computes
        "lynis": {"duration": 55, "cpu_seconds": 55},      # computes
        "triage": {"duration": 44, "cpu_seconds": 11},     # 0.25: waits for its samplers
        "alerts": {"duration": 26, "cpu_seconds": 4},      # waits for an evaluation interval
        "restic": {"duration": 30, "cpu_seconds": 24},     # computes
        "new": {},                                         # no record: the median 44 s, counts as computing
    }
    order = plan.parallel_order(list(recorded), recorded, {"new": 1})
    assert order == ["ansible", "triage", "lynis", "alerts", "new", "restic"]
    # Without CPU records (older results files), the order stays plain longest-first.
    plain = {lab: {"duration": r.get("duration")} for lab, r in recorded.items()}
    assert plan.parallel_order(list(plain), plain, {"new": 1}) == plan.longest_first(list(plain), plain, {"new": 1})


def test_cpu_share_ignores_what_cannot_be_a_share():
    from opslabs.store.plan import cpu_share

    assert cpu_share({"duration": 10, "cpu_seconds": 5}) == 0.5
    assert cpu_share({"duration": 0, "cpu_seconds": 5}) is None
    assert cpu_share({"duration": 10, "cpu_seconds": "x"}) is None
    assert cpu_share({"duration": 10}) is None and cpu_share(None) is None
