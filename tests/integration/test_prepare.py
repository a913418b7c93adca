"""`opslabs prepare -j N`: several labs' setup layers built at once, each distinct one once."""

import secrets

from conftest import leftovers, opslabs
from opslabs import engine, images
from opslabs.model import Host

LAB = """\
id: {id}
title: Lab {id}
summary: A host whose setup leaves a mark.
level: beginner
guide: Fixture.
lab:
  duration: 5m
  objectives: [Boot]
  hosts:
    app:
      setup: ["echo {mark} > /mark"]
  steps:
    - title: Look
      solution: [{{host: app, run: "cat /mark"}}]
      checks: [{{host: app, file: /mark, exists: true}}]
"""


def test_parallel_prepare_builds_each_distinct_layer_once(tmp_path):
    token = secrets.token_hex(4)  # fresh setups: nothing of this test is cached yet
    area = tmp_path / "labs" / "fixtures"
    area.mkdir(parents=True)
    (area / "area.yaml").write_text("id: fixtures\ntitle: Fixtures\norder: 1\nsummary: Prepare test.\noverview: Test.\n")
    # Three labs, each with a host named app: two distinct setups (the same host name in two
    # builds at once must not clash), and one setup shared by two labs (built once).
    ids = [f"one-{token}", f"two-{token}", f"also-one-{token}"]
    for lab, mark in zip(ids, (f"one-{token}", f"two-{token}", f"one-{token}")):
        (area / f"{lab}.yaml").write_text(LAB.format(id=lab, mark=mark))
    labs = tmp_path / "labs"
    # The layers' tags follow from their setups (the cache key), so only they are looked at.
    tags = {mark: f"{images.CACHE_REPOSITORY}:{images.setup_key(Host(setup=[f'echo {mark} > /mark']))}"
            for mark in (f"one-{token}", f"two-{token}")}
    try:
        proc = opslabs("prepare", "-j", "2", labs=labs, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Built 2 setup layer(s)" in proc.stdout, proc.stdout
        assert "Ready: 3 lab(s)" in proc.stdout
        for mark, tag in tags.items():
            assert engine.docker("run", "--rm", "--entrypoint", "sh", tag, "-c", "cat /mark").stdout.strip() == mark
        for lab in ids:  # (make test builds other labs' layers beside this test)
            assert leftovers({"lab": lab}) == ([], [])

        again = opslabs("prepare", "-j", "2", labs=labs, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "Built" not in again.stdout  # all cached now
    finally:
        engine.docker("rmi", "--force", *tags.values(), check=False)
