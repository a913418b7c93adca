"""Fixes from a code review of the block checkers and versions file, each with the case that showed it."""

import textwrap
from pathlib import Path

import pytest

from opslabs.blocks.cache import Cache
from opslabs.blocks.check import judge_all
from opslabs.blocks.extract import extract
from opslabs.load import load_catalog

AREA = "id: web\ntitle: Web\norder: 1\nsummary: s\noverview: o\n"

TASK = textwrap.dedent("""\
    id: serve
    title: Serve
    summary: s
    level: beginner
    guide: |
      ## Steps

      BLOCK
    lab:
      duration: 5m
      objectives: [o]
      hosts:
        box:
          files:
            - {path: /etc/app.ini, content: "[app]\\nport = 80\\n"}
      steps:
        - title: t
          solution:
            - {host: box, run: "mkdir -p /srv/www"}
          checks:
            - {host: box, file: /srv/www, directory: true}
    """)


def make_kb(tmp_path: Path, block: str) -> Path:
    root = tmp_path / "labs"
    (root / "web").mkdir(parents=True)
    (root / "web" / "area.yaml").write_text(AREA)
    body = "\n".join("  " + line if line else "" for line in block.split("\n")).lstrip()
    (root / "web" / "serve.yaml").write_text(TASK.replace("BLOCK", body))
    return root


@pytest.mark.parametrize("block", [
    # the runner never runs a from= block (it is the lab's own text), so run= on one claimed "executed" falsely
    "```ini from=file:box:/etc/app.ini run=box after=1\n```",
    "```bash from=solution:1 run=box after=1\n```",
    # the runner would hand these to bash: a YAML file or an example output is not a command
    "```yaml run=box after=1\nkey: value\n```",
    "```text output run=box after=1\nhello\n```",
])
def test_run_is_refused_where_the_runner_cannot_run_the_block_as_shown(tmp_path, block):
    catalog = load_catalog(make_kb(tmp_path, block))
    problems = []
    judged = judge_all(catalog, Cache(None), problems)
    assert [p.line for p in problems] == [8], problems
    assert "run=" in problems[0].message
    assert not [j for j in judged if j.status == "executed"]


def test_run_on_a_shell_block_is_still_executed(tmp_path):
    catalog = load_catalog(make_kb(tmp_path, "```bash run=box after=1\ntest -d /srv/www\n```"))
    problems = []
    judged = judge_all(catalog, Cache(None), problems)
    assert problems == [] and [j.status for j in judged] == ["executed"]


@pytest.mark.parametrize("written", ["[[version:trivy", "[[version:trivy]", "[[uses: actions/checkout]]", "[[version:trivy 0.75]]"])
def test_a_malformed_version_placeholder_is_located_not_shown_as_written(tmp_path, written):
    from opslabs.errors import ValidationFailed

    root = tmp_path / "labs"
    (root / "ci").mkdir(parents=True)
    (root / "versions.yaml").write_text("actions:\n  actions/checkout: v6\ntools:\n  trivy: '0.75.0'\n")
    (root / "ci" / "area.yaml").write_text(
        "id: ci\ntitle: CI\norder: 1\nsummary: s\noverview: |\n  Intro.\n\n"
        f"  ```bash\n  echo {written}\n  ```\n")
    with pytest.raises(ValidationFailed) as caught:
        load_catalog(root)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (9, "overview")
    assert "placeholder" in problem.message and "]]" in problem.message


@pytest.mark.parametrize("field", ["guide", "overview"])
def test_blocks_of_a_quoted_text_are_located_at_its_key_not_at_an_unrelated_line(tmp_path, field):
    # A quoted text has no line-for-line mapping to the file: the problem belongs at the key
    # (line 6 here), with the line inside the block in words, never at `level:` or `summary:`.
    root = tmp_path / "labs"
    (root / "web").mkdir(parents=True)
    quoted = '"Intro.\\n\\n```bash\\nif true; then\\n```\\n"'
    area, task = AREA, "id: serve\ntitle: Serve\nsummary: s\nlevel: beginner\n# a comment\nguide: |\n  Plain.\n"
    if field == "guide":
        task = task.replace("guide: |\n  Plain.\n", f"guide: {quoted}\n")
    else:
        area = "id: web\ntitle: Web\norder: 1\nsummary: s\n# a comment\noverview: " + quoted + "\n"
    (root / "web" / "area.yaml").write_text(area)
    (root / "web" / "serve.yaml").write_text(task)
    problems = []
    judge_all(load_catalog(root), Cache(None), problems)
    assert problems and {p.line for p in problems} == {6}, [str(p) for p in problems]
    assert all("line 2 of the block" in p.message or "line 1 of the block" in p.message for p in problems), [str(p) for p in problems]


RULES = "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n"


def test_promtool_whose_container_cannot_start_leaves_the_block_unchecked_not_failed(monkeypatch):
    # docker's own failure (exit 125: no container ran) says nothing about the block.
    import subprocess

    from opslabs import engine, images
    from opslabs.blocks.checkers import prometheus
    from opslabs.blocks.checkers.base import Item
    from opslabs.blocks.checkers.registry import checker_for

    monkeypatch.setattr(prometheus.shutil, "which", lambda name: None)
    monkeypatch.setattr(prometheus, "_broken", [])
    monkeypatch.setattr(engine, "engine_answers", lambda: True)
    monkeypatch.setattr(images, "setup_image", lambda *args: ("opslabs-tools:x", False))
    said = "docker: Error response from daemon: failed to create task for container: cannot allocate memory.\n"
    monkeypatch.setattr(engine, "docker", lambda *args, **kwargs: subprocess.CompletedProcess(args, 125, "", said))
    outcome = checker_for("yaml").judge(Item(RULES, "yaml"))
    assert outcome.findings == () and "cannot allocate memory" in outcome.unchecked


def test_promtool_on_this_machine_that_hangs_leaves_the_block_unchecked(monkeypatch, tmp_path):
    from opslabs.blocks.checkers import prometheus
    from opslabs.blocks.checkers.base import Item
    from opslabs.blocks.checkers.registry import checker_for

    fake = tmp_path / "promtool"
    fake.write_text("#!/bin/sh\nsleep 5\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(prometheus, "TIMEOUT", 0.5, raising=False)
    outcome = checker_for("yaml").judge(Item(RULES, "yaml"))
    assert outcome.findings == () and "did not answer within 0.5 s" in outcome.unchecked


def test_a_billion_laughs_in_a_guide_yaml_block_is_refused_fast_not_expanded(tmp_path):
    # The file-level YAML limits never see a code block's text: the YAML checker loaded it
    # without them, and the schema error printed the expanded value (a 456-byte block took
    # 4.5 s and a 52 MB message at 7 levels, 10x more per level).
    import subprocess
    import sys

    script = textwrap.dedent("""\
        import time
        from opslabs.blocks.checkers.base import Item
        from opslabs.blocks.checkers.registry import checker_for
        lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
        for i in range(1, 9):
            lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 10) + "]")
        anchors = "\\n".join("    " + line for line in lines)
        text = f"apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: x\\n  labels:\\n{anchors}\\ndata:\\n  big: *a8\\n"
        started = time.monotonic()
        outcome = checker_for("yaml").judge(Item(text, "yaml"))
        print(round(time.monotonic() - started, 2), outcome.findings[0].line, outcome.findings[0].message)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds, line, message = done.stdout.split(" ", 2)
    assert float(seconds) < 2 and int(line) == 10 and "more than 50000 values" in message and len(message) < 400


@pytest.mark.parametrize("language,text", [
    ("json", "[" * 100_000 + "]" * 100_000),
    ("toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n"),
], ids=["json", "toml"])
def test_a_block_nested_past_the_parsers_recursion_is_a_finding_not_an_internal_error(language, text):
    from opslabs.blocks.checkers.base import Item
    from opslabs.blocks.checkers.registry import checker_for

    (outcome,) = checker_for(language).judge_many([Item(text, language)])
    assert len(outcome.findings) == 1 and "nests too deeply" in outcome.findings[0].message


@pytest.mark.parametrize("text", ["SELECT 'unterminated;\n", "SELECT `x;\n"], ids=["quote", "backtick"])
def test_sql_that_sqlglot_cannot_tokenize_is_a_finding_not_an_internal_error(text):
    from opslabs.blocks.checkers.base import Item
    from opslabs.blocks.checkers.registry import checker_for

    (outcome,) = checker_for("sql").judge_many([Item(text, "sql", {"dialect": "mysql"})])
    assert outcome.checker == "mysql parser (sqlglot)" and len(outcome.findings) == 1 and not outcome.unchecked


ARGO_TASK = TASK.replace("BLOCK", "```yaml\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web}\n"
                         "spec:\n  project: default\n  source: {repoURL: 'https://example.org/r.git', path: web}\n"
                         "  destination: {server: 'https://kubernetes.default.svc'}\n```".replace("\n", "\n  "))


def _judge_twice(tmp_path, change) -> Cache:
    root = tmp_path / "labs"
    (root / "web").mkdir(parents=True)
    (root / "web" / "area.yaml").write_text(AREA)
    (root / "web" / "serve.yaml").write_text(ARGO_TASK)
    catalog = load_catalog(root)
    first = Cache(tmp_path / "cache.json")
    judged = judge_all(catalog, first, [])
    assert [j.checker for j in judged] == ["argoproj.io/v1alpha1 Application schema"]
    first.save()
    change()
    again = Cache(tmp_path / "cache.json")
    judge_all(catalog, again, [])
    return again


def test_a_changed_crd_schema_is_an_input_of_the_cache_key(tmp_path, monkeypatch):
    import shutil

    from opslabs.blocks.checkers import yaml_

    schemas = tmp_path / "schemas"
    shutil.copytree(yaml_.SCHEMAS, schemas)
    monkeypatch.setattr(yaml_, "SCHEMAS", schemas)
    yaml_._custom.cache_clear()
    target = schemas / "application-argoproj.io-v1alpha1.json"
    again = _judge_twice(tmp_path, lambda: target.write_text(target.read_text() + "\n"))
    yaml_._custom.cache_clear()
    assert again.misses == 1, "a verdict made with the old schema was reused"


def test_an_upgraded_checker_package_is_an_input_of_the_cache_key(tmp_path, monkeypatch):
    from importlib import metadata

    real = metadata.version
    again = _judge_twice(tmp_path, lambda: monkeypatch.setattr(
        metadata, "version", lambda name: "99.0" if name.lower() == "jsonschema" else real(name)))
    assert again.misses == 1, "a verdict made by the old jsonschema was reused"


@pytest.mark.parametrize("value", ["&a [*a]", "&a {b: *a}", "&a [1, [2, *a]]"])
def test_a_recursive_alias_is_refused_at_its_line_not_an_internal_error(tmp_path, value):
    import subprocess
    import sys

    root = tmp_path / "labs"
    (root / "web").mkdir(parents=True)
    (root / "web" / "area.yaml").write_text(AREA)
    (root / "web" / "serve.yaml").write_text(f"id: serve\ntitle: Serve\nsummary: s\nlevel: beginner\nguide: |\n  Hi.\nx: {value}\n")
    done = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(root), "validate"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "internal error" not in done.stderr, done.stderr
    assert f"{root}/web/serve.yaml:7:" in done.stderr and "*a" in done.stderr and "contains" in done.stderr, done.stderr


def test_a_recursive_alias_in_a_yaml_block_is_a_finding():
    from opslabs.blocks.checkers.base import Item
    from opslabs.blocks.checkers.registry import checker_for

    (outcome,) = checker_for("yaml").judge_many([Item("apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: x, labels: *m}\n", "yaml")])
    assert [f.line for f in outcome.findings] == [3] and "contains" in outcome.findings[0].message


DEPLOYMENT = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n"
              "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n"
              "          image: nginx\n        - name: 5\n          image: redis\n")


@pytest.mark.parametrize("text,line", [
    # the failing field's name appears earlier (metadata.name on line 4): the finding named that line
    (DEPLOYMENT, 13),
    # the second document's field, not the first document's key of the same name
    ("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports:\n    - port: 80\n---\n"
     "apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec:\n  ports:\n    - port: eighty\n", 13),
    # a Compose file whose second service has the wrong value, the same key right in the first
    ('services:\n  web:\n    image: nginx\n    ports: ["80:80"]\n  db:\n    image: postgres\n    ports: 5432\n', 7),
])
def test_a_schema_finding_names_the_line_of_the_failing_field_itself(text, line):
    from opslabs.blocks.checkers.base import Item
    from opslabs.blocks.checkers.registry import checker_for

    outcome = checker_for("yaml").judge(Item(text, "yaml"))
    assert outcome.findings and outcome.findings[0].line == line, outcome.findings
