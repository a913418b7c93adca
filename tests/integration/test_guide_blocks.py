"""Guide blocks marked run=HOST after=N run in the lab during `opslabs verify`, unmodified."""

from conftest import FIXTURES, leftovers, opslabs, read_json

GUIDES = FIXTURES / "guides" / "labs"


def test_a_guide_block_runs_after_its_step_and_the_checks_judge_its_effect(tmp_path):
    results = tmp_path / "r.json"
    proc = opslabs("verify", "executed-snippets", "--results", str(results), labs=GUIDES, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    lab = read_json(results)["labs"][0]
    assert lab["status"] == "passed"
    assert "code blocks: 3 executed by labs" in proc.stdout
    assert lab["steps"][0]["guide_blocks"] == 1 and lab["steps"][0]["guide_seconds"] > 0
    assert "guide snippets: 1 blocks run in the labs in" in proc.stdout
    assert leftovers({"lab": "executed-snippets"}) == ([], [])


def test_a_failing_guide_block_fails_the_lab_and_names_its_line(tmp_path):
    results = tmp_path / "r.json"
    proc = opslabs("verify", "failing-snippet", "--results", str(results), labs=GUIDES, cwd=tmp_path)
    assert proc.returncode == 1
    assert read_json(results)["labs"][0]["status"] == "failed"
    assert f"guide block at {GUIDES}/guides/failing-snippet.yaml:8" in proc.stdout
    assert "exited with 1" in proc.stdout


IDEMPOTENT = """\
id: once
title: Guide blocks run once
summary: An idempotent lab whose guide block appends a line.
level: beginner
guide: |
  ```bash run=box after=1
  echo "from the guide" >> /srv/guide.txt
  ```
lab:
  duration: 5m
  idempotent: true
  objectives: [Run the guide once]
  hosts:
    box: {}
  steps:
    - title: Prepare
      solution: [{host: box, run: "mkdir -p /srv && touch /srv/ready"}]
      checks:
        - {host: box, file: /srv/ready, exists: true}
        - {host: box, command: "wc -l < /srv/guide.txt", stdout_matches: ['^1$'], message: The guide block ran exactly once.}
"""


def test_an_idempotent_lab_runs_its_solution_twice_and_its_guide_blocks_once(tmp_path):
    area = tmp_path / "labs" / "fixtures"
    area.mkdir(parents=True)
    (area / "area.yaml").write_text("id: fixtures\ntitle: Fixtures\norder: 1\nsummary: Once.\noverview: Test.\n")
    (area / "once.yaml").write_text(IDEMPOTENT)
    results = tmp_path / "r.json"
    proc = opslabs("verify", "once", "--results", str(results), labs=tmp_path / "labs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    step = read_json(results)["labs"][0]["steps"][0]
    assert step["status"] == "passed" and step["guide_blocks"] == 1
    assert leftovers({"lab": "once"}) == ([], [])
