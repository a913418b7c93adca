"""The results store keyed by content (issue 12): the key, --changed, --shard, baselines."""

import http.server
import json
import random
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from opslabs import engine, images
from opslabs.load import load_catalog
from opslabs.render import lab_status
from opslabs.store import keys, plan
from opslabs.store.keys import content_commit, lab_key
from opslabs.store.results import SourceUnavailable, merge_results, merge_sources, read_results, read_source

FIXTURE = Path(__file__).parent / "fixtures" / "labs"


@pytest.fixture
def kb(tmp_path):
    root = tmp_path / "labs"
    shutil.copytree(FIXTURE, root)
    return root


def key_of(root: Path, lab: str = "hello-lab") -> str:
    catalog = load_catalog(root)
    return lab_key(catalog.find_lab(lab), catalog.versions)


def edit(root: Path, old: str, new: str, lab: str = "hello-lab") -> None:
    path = root / "demo" / f"{lab}.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# --- the key -----------------------------------------------------------------


def test_the_key_is_the_same_for_the_same_content_wherever_it_lies(kb, tmp_path):
    elsewhere = tmp_path / "other" / "labs"
    shutil.copytree(FIXTURE, elsewhere)
    assert key_of(kb) == key_of(elsewhere) == key_of(FIXTURE)
    assert len(key_of(kb)) == 64


def test_the_key_does_not_hold_the_local_image_id(kb, monkeypatch):
    """A bootstrapped base image gets a new id on every machine: the key must not change with it."""
    before = key_of(kb)
    monkeypatch.setattr(engine, "image_id", lambda name: "sha256:" + "f" * 64)
    monkeypatch.setattr(engine, "image_exists", lambda name: False)
    assert key_of(kb) == before


@pytest.mark.parametrize("old, new", [
    ("lab:\n", "# a comment is a change of the file too\nlab:\n"),  # touching the YAML
    ('content: "hello\\n"', 'content: "hello again\\n"'),  # a file it ships
    ("apt-get install -y -qq nginx curl", "apt-get install -y -qq nginx curl jq"),  # a setup command
    ("start: [service nginx start]", "start: [service nginx start, 'true']"),
    ("    client: {}", "    client: {image: 'debian:bookworm'}"),  # another base image
    ("Install Nginx and write a page.", "Install Nginx, then write a page."),  # the guide (its run= blocks execute)
])
def test_the_key_changes_with_what_the_run_depends_on(kb, old, new):
    before = key_of(kb)
    edit(kb, old, new)
    assert key_of(kb) != before


def test_the_key_changes_with_the_base_image_definition_and_the_opslabs_version(kb, monkeypatch):
    before = key_of(kb)
    monkeypatch.setattr(images, "SLIM_DPKG_CONFIG", images.SLIM_DPKG_CONFIG + "path-exclude /usr/share/groff/*\n")
    slimmer = key_of(kb)
    monkeypatch.undo()
    monkeypatch.setattr(images, "BOOTSTRAPPABLE", {**images.BOOTSTRAPPABLE, "debian:bookworm-slim": "trixie"})
    other_suite = key_of(kb)
    monkeypatch.undo()
    monkeypatch.setattr(keys, "opslabs_version", lambda: "99.0.0")
    newer_tool = key_of(kb)
    assert len({before, slimmer, other_suite, newer_tool}) == 4


def test_the_key_takes_the_versions_yaml_values_the_lab_uses(kb):
    (kb / "versions.yaml").write_text("tools: {nginx: '1.26', trivy: '0.75.0'}\n")
    edit(kb, "Install Nginx and", "Install Nginx [[version:nginx]] and")
    before = key_of(kb)
    (kb / "versions.yaml").write_text("tools: {nginx: '1.26', trivy: '0.76.0'}\n")  # a value it does not use
    assert key_of(kb) == before
    (kb / "versions.yaml").write_text("tools: {nginx: '1.27', trivy: '0.76.0'}\n")  # one it uses
    assert key_of(kb) != before


def test_line_endings_of_a_checkout_are_not_content(kb):
    before = key_of(kb)
    path = kb / "demo" / "hello-lab.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert key_of(kb) == before


def test_the_commit_is_the_content_repository_head_and_local_changes_are_named(kb):
    lab = kb / "demo" / "hello-lab.yaml"
    keys._git_state.cache_clear()
    assert content_commit(lab) == (None, False)  # not in a repository
    git = ["git", "-C", str(kb), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "labs"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    keys._git_state.cache_clear()
    assert content_commit(lab) == (head, False)
    lab.write_text(lab.read_text() + "# edited\n")
    keys._git_state.cache_clear()
    assert content_commit(lab) == (head, True)
    assert content_commit(kb / "demo" / "plain-guide.yaml") == (head, False)


# --- --changed ----------------------------------------------------------------


def test_only_labs_without_a_passing_result_for_their_current_key_run():
    keys_now = {"a": "k1", "b": "k2", "c": "k3", "d": "k4", "e": "k5"}
    stored = {
        "a": {"status": "passed", "key": "k1"},  # unchanged, passed: kept
        "b": {"status": "passed", "key": "old"},  # changed since
        "c": {"status": "failed", "key": "k3"},  # failed last time
        "d": {"status": "skipped", "key": "k4"},  # skipped is not a pass
        # e: never verified
    }
    assert plan.changed(keys_now, stored) == ["b", "c", "d", "e"]
    assert plan.changed({"a": "k1"}, {"a": {"status": "passed"}}) == ["a"]  # a record from before keys


# --- --shard ------------------------------------------------------------------


RECORDED = {f"lab-{i:02d}": {"duration": d} for i, d in enumerate(
    [173.5, 6.2, 89.7, 11.1, 30.5, 6.6, 97.1, 44.3, 38.4, 3.8, 47.4, 15.3, 102.9, 6.7, 63.6, 349.8, 2.1, 42.0, 51.3,
     33.5, 1.4, 4.1, 6.0, 262.8, 23.2, 26.2, 24.0, 36.7, 18.9, 110.2, 16.5, 71.4, 87.0, 12.7, 24.0, 20.1, 4.8])}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_shards_partition_the_labs(n):
    labs = sorted(RECORDED) + ["new-lab"]  # one never recorded
    parts = [plan.shard(labs, RECORDED, k, n) for k in range(1, n + 1)]
    flat = [lab for part in parts for lab in part]
    assert sorted(flat) == sorted(labs) and len(flat) == len(set(flat))
    assert all(part == [lab for lab in labs if lab in part] for part in parts)  # in the order given


def test_shards_are_the_same_whatever_order_the_labs_come_in():
    labs = sorted(RECORDED)
    shuffled = labs[:]
    random.Random(7).shuffle(shuffled)
    for k in range(1, 5):
        assert set(plan.shard(labs, RECORDED, k, 4)) == set(plan.shard(shuffled, RECORDED, k, 4))
    ties = {"b": {"duration": 5}, "a": {"duration": 5}, "c": {"duration": 5}, "d": {"duration": 5}}
    assert plan.shards(plan.durations(["d", "c", "b", "a"], ties), 2) == [["a", "c"], ["b", "d"]]


def test_shards_are_balanced_by_recorded_duration():
    seconds = plan.durations(sorted(RECORDED), RECORDED)
    for n in (2, 3, 4):
        totals = [sum(seconds[lab] for lab in part) for part in plan.shards(seconds, n)]
        # 1,966 s of labs, the longest 350 s: greedy longest-first evens them out within 5 s
        assert max(totals) - min(totals) < 5, (n, totals)
    halves = [sum(seconds[lab] for lab in part) for part in plan.shards(seconds, 2)]
    naive = [sum(seconds[lab] for lab in sorted(RECORDED)[i::2]) for i in range(2)]
    assert abs(naive[0] - naive[1]) > abs(halves[0] - halves[1])  # better than dealing the labs out


def makespan(order, seconds, workers=2):
    """Wall time when each free worker takes the next lab in the order (how -j runs them)."""
    free = [0.0] * workers
    for lab in order:
        free[free.index(min(free))] += seconds[lab]
    return max(free)


def test_parallel_runs_start_the_longest_labs_first():
    labs = sorted(RECORDED) + ["new-lab"]
    order = plan.longest_first(labs, RECORDED)
    seconds = plan.durations(labs, RECORDED)
    assert [seconds[lab] for lab in order] == sorted(seconds.values(), reverse=True)
    assert plan.longest_first(["b", "a"], {"a": {"duration": 5}, "b": {"duration": 5}}) == ["a", "b"]
    # when the catalog lists the 350 s lab last, it runs alone while the other worker idles
    longest = order[0]
    catalog = [lab for lab in labs if lab != longest] + [longest]
    assert makespan(order, seconds) <= sum(seconds.values()) / 2 + 1
    assert makespan(order, seconds) < makespan(catalog, seconds) - 100


def test_a_lab_without_a_recorded_duration_counts_as_the_median():
    seconds = plan.durations(["a", "b", "c", "new"], {"a": {"duration": 10}, "b": {"duration": 30}, "c": {"duration": 200},
                                                    "new": {"duration": None}})
    assert seconds == {"a": 10.0, "b": 30.0, "c": 200.0, "new": 30.0}
    assert plan.durations(["x", "y"], {}) == {"x": 1.0, "y": 1.0}


def test_given_step_counts_a_lab_never_recorded_counts_its_steps_at_the_median_pace():
    recorded = {"a": {"duration": 10}, "b": {"duration": 90}, "c": {"duration": 40}}  # 5, 30 and 20 s per step
    steps = {"a": 2, "b": 3, "c": 2, "new": 4}
    assert plan.durations(["a", "b", "c", "new"], recorded, steps)["new"] == 80.0  # 4 steps x 20 s
    # No history at all: more steps first, as xdist would order them.
    assert plan.longest_first(["one", "three", "two"], {}, {"one": 1, "three": 3, "two": 2}) == ["three", "two", "one"]


@pytest.mark.parametrize("text, said", [("0/4", "1 <= K <= N"), ("5/4", "1 <= K <= N"), ("2", "expected K/N"), ("a/b", "expected K/N")])
def test_a_bad_shard_is_refused(text, said):
    with pytest.raises(ValueError, match=said):
        plan.parse_shard(text)
    assert plan.parse_shard(" 2/4 ") == (2, 4)


# --- baselines: the store between CI runs -------------------------------------


def test_a_baseline_fills_the_store_and_the_newer_record_per_lab_wins(tmp_path):
    local = tmp_path / "results.json"
    merge_results(local, [{"id": "a", "status": "failed", "key": "a2", "verified_at": "2026-12-02T08:00:00+00:00"},
                          {"id": "b", "status": "passed", "key": "b1", "verified_at": "2026-11-01T08:00:00+00:00"}],
                  {"generated": "local"})
    published = tmp_path / "opslabs-results.json"
    published.write_text(json.dumps({"labs": [
        {"id": "a", "status": "passed", "key": "a1", "verified_at": "2026-12-01T08:00:00+00:00"},  # older: loses
        {"id": "b", "status": "passed", "key": "b2", "verified_at": "2026-12-01T08:00:00+00:00"},  # newer: wins
        {"id": "c", "status": "passed", "key": "c1", "finished": "2026-10-01T08:00:00+00:00"},  # new here
    ]}))
    assert merge_sources(local, [str(published)]) == [(str(published), 3)]
    found = read_results(local)
    assert {lab: r["key"] for lab, r in found.items()} == {"a": "a2", "b": "b2", "c": "c1"}
    assert json.loads(local.read_text())["generated"] == "local"  # the file's own fields are kept


def test_a_baseline_is_fetched_over_http(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "opslabs-results.json").write_text(json.dumps({"labs": [{"id": "a", "status": "passed", "key": "k"}]}))
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(site))  # noqa: E731
    http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert read_source(f"{base}/opslabs-results.json") == [{"id": "a", "status": "passed", "key": "k"}]
        with pytest.raises(SourceUnavailable, match="HTTP 404"):
            read_source(f"{base}/missing.json")
    finally:
        server.shutdown()


@pytest.mark.parametrize("content, said", [
    (None, "cannot be read"), ("<html>", "invalid JSON"), ('{"labs": 3}', "expected an object with a `labs` list"),
])
def test_an_unusable_baseline_is_named_and_nothing_is_taken(tmp_path, content, said):
    source = tmp_path / "published.json"
    if content is not None:
        source.write_text(content)
    local = tmp_path / "r.json"
    [(name, outcome)] = merge_sources(local, [str(source)])
    assert name == str(source) and said in outcome and str(source) in outcome
    assert not local.exists()
    with pytest.raises(SourceUnavailable, match="expected a path or an http"):
        read_source("ftp://example.org/r.json")


# --- the page -----------------------------------------------------------------


def test_the_lab_page_says_when_and_at_which_commit_it_was_verified():
    record = {"status": "passed", "duration": 4.1, "verified_at": "2026-12-02T07:10:43+00:00", "commit": "1a2b3c4d5e6f" + "0" * 28}
    assert lab_status(record)["text"] == "Verified on 2026-12-02 at 1a2b3c4 (passed in 4 s)"
    assert lab_status({**record, "modified": True})["text"] == "Verified on 2026-12-02 at 1a2b3c4 with local changes (passed in 4 s)"
    assert lab_status({**record, "status": "failed"})["text"] == "Verification failed on 2026-12-02 at 1a2b3c4"
    assert lab_status({**record, "commit": None})["text"] == "Verified: passed on 2026-12-02 in 4 s"


def test_the_built_site_carries_the_results_file(tmp_path):
    """The store travels with the site: the next CI run takes <site>/opslabs-results.json as its baseline."""
    import subprocess
    import sys

    shutil.copytree(FIXTURE, tmp_path / "labs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nplugins:\n  - opslabs:\n      labs: labs\n      results: r/results.json\n")
    build = [sys.executable, "-m", "mkdocs", "build", "--site-dir", str(tmp_path / "site")]
    proc = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "site" / "opslabs-results.json").exists()  # nothing verified yet: nothing published
    merge_results(tmp_path / "r" / "results.json", [{"id": "hello-lab", "status": "passed", "key": "k", "duration": 3,
                                                     "verified_at": "2026-12-02T07:00:00+00:00", "commit": "c0ffee1" + "0" * 33}], {})
    proc = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "site" / "opslabs-results.json").read_text() == (tmp_path / "r" / "results.json").read_text()
    assert "Verified on 2026-12-02 at c0ffee1 (passed in 3 s)" in (tmp_path / "site" / "demo" / "hello-lab" / "lab" / "index.html").read_text()


# --- the command's plan: baselines, then --changed, then --shard ------------------


def test_verify_plans_from_the_baseline_then_changed_then_shard(kb, tmp_path, capsys):
    from opslabs.cli import _plan

    catalog = load_catalog(kb)
    hello = catalog.find_lab("hello-lab")
    results = tmp_path / "results.json"
    published = tmp_path / "published.json"
    record = {"id": "hello-lab", "status": "passed", "key": lab_key(hello, catalog.versions), "duration": 5,
              "verified_at": "2026-12-01T00:00:00+00:00"}
    published.write_text(json.dumps({"labs": [record]}))

    assert _plan(catalog, [hello], results, True, None, (str(tmp_path / "absent.json"),)) == [hello]
    out = capsys.readouterr()
    assert "warning: baseline not used:" in out.err and "absent.json: cannot be read" in out.err
    assert "--changed: 1 of 1 lab(s) to run (hello-lab); 0 keep their passing result" in out.out

    assert _plan(catalog, [hello], results, True, None, (str(published),)) == []  # passed with this key: kept
    assert "--changed: 0 of 1 lab(s) to run; 1 keep their passing result" in capsys.readouterr().out
    assert read_results(results)["hello-lab"] == record

    edit(kb, "lab:\n", "# touched\nlab:\n")
    touched = load_catalog(kb)
    assert [e.id for e in _plan(touched, touched.labs(), results, True, None, ())] == ["hello-lab"]
    assert [e.id for e in _plan(touched, touched.labs(), results, False, (1, 2), ())] == ["hello-lab"]
    assert _plan(touched, touched.labs(), results, False, (2, 2), ()) == []
    assert "--shard 2/2: 0 lab(s)" in capsys.readouterr().out


def test_render_puts_the_results_beside_the_pages_for_generators_without_plugins(tmp_path):
    """Zensical runs no MkDocs plugin: `opslabs render` writes the results into the pages folder too."""
    from click.testing import CliRunner

    from opslabs.cli import main

    results = tmp_path / "r.json"
    out = tmp_path / "docs"
    run = CliRunner().invoke(main, ["--labs", str(FIXTURE), "render", "--out", str(out), "--results", str(results)])
    assert run.exit_code == 0, run.output
    assert not (out / "opslabs-results.json").exists()  # nothing verified yet
    merge_results(results, [{"id": "hello-lab", "status": "passed", "key": "k"}], {})
    run = CliRunner().invoke(main, ["--labs", str(FIXTURE), "render", "--out", str(out), "--results", str(results)])
    assert run.exit_code == 0, run.output
    assert (out / "opslabs-results.json").read_text() == results.read_text()
