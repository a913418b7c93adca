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
