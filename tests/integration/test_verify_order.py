"""`opslabs verify -j 2` runs labs in its plan's order (longest first by the results store),
not in xdist's own order (most steps first), so a long lab with few steps does not end the run alone."""

import json
import re

from conftest import leftovers, opslabs

LAB = """\
id: {id}
title: Lab {id}
summary: Steps that echo.
level: beginner
guide: Fixture.
lab:
  duration: 5m
  objectives: [Echo]
  hosts:
    app: {{}}
  steps:
{steps}"""
STEP = """\
    - title: Step {n}
      solution: [{{host: app, run: "sleep 1; echo {n} > /tmp/step-{n}"}}]
      checks: [{{host: app, file: /tmp/step-{n}, exists: true}}]
"""


def write_kb(root, steps: dict[str, int]):
    area = root / "labs" / "fixtures"
    area.mkdir(parents=True)
    (area / "area.yaml").write_text("id: fixtures\ntitle: Fixtures\norder: 1\nsummary: Order test.\noverview: Test.\n")
    for lab, count in steps.items():
        (area / f"{lab}.yaml").write_text(LAB.format(id=lab, steps="".join(STEP.format(n=n) for n in range(1, count + 1))))
    return root / "labs"


def started(stdout: str) -> list[str]:
    """Lab ids in the order their first step started (pytest -v prints an item when it starts)."""
    return [m.group(1) for m in re.finditer(r"^[\w/.-]*fixtures/([\w-]+)\.yaml::step1 *$", stdout, re.M)]


def test_recorded_longest_labs_start_first_whatever_their_step_count(tmp_path):
    # xdist's loadfile orders by number of steps: "many-steps" would start first. By the store,
    # "slow" (one step, 90 s recorded) and "medium" (60 s) are the long ones.
    labs = write_kb(tmp_path, {"many-steps": 4, "slow": 1, "medium": 1})
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"labs": [{"id": "slow", "status": "passed", "duration": 90},
                                            {"id": "medium", "status": "passed", "duration": 60},
                                            {"id": "many-steps", "status": "passed", "duration": 1}]}))
    proc = opslabs("verify", "-j", "2", "--results", str(results), labs=labs, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    order = started(proc.stdout)
    assert sorted(order) == ["many-steps", "medium", "slow"], proc.stdout[-3000:]
    assert set(order[:2]) == {"slow", "medium"}, order  # the two workers' first labs
    for lab in ("many-steps", "slow", "medium"):
        assert leftovers({"lab": lab}) == ([], [])


def test_without_history_more_steps_start_first(tmp_path):
    labs = write_kb(tmp_path, {"a-one": 1, "b-three": 3, "c-two": 2})
    proc = opslabs("verify", "-j", "2", "--results", str(tmp_path / "results.json"), labs=labs, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert set(started(proc.stdout)[:2]) == {"b-three", "c-two"}, proc.stdout[-3000:]
