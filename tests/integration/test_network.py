"""After setup a lab's hosts reach only each other; a step declared `online` reaches the registries."""

from conftest import FIXTURES, leftovers, opslabs, read_json

NETWORK = FIXTURES / "network" / "labs"


def test_a_lab_is_offline_except_in_its_declared_online_step(tmp_path):
    results = tmp_path / "r.json"
    proc = opslabs("verify", "cut-off", "--results", str(results), labs=NETWORK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert [s["status"] for s in read_json(results)["labs"][0]["steps"]] == ["passed", "passed", "passed"]
    assert leftovers({"lab": "cut-off"}) == ([], [])
