"""Code blocks: every checker fails what it must fail, `validate` points at the block's YAML line,
`from=` shows the lab's own text, fences are presented plainly with how they were checked."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opslabs.blocks.cache import Cache
from opslabs.blocks.check import judge_all
from opslabs.blocks.checkers.base import Item
from opslabs.blocks.checkers.registry import checker_for
from opslabs.blocks.extract import extract, fences
from opslabs.blocks.fence import FenceError, parse_info
from opslabs.blocks.present import present
from opslabs.load import load_catalog

AREA = "id: web\ntitle: Web\norder: 1\nsummary: s\noverview: o\n"

# (language, attributes, a block the tool accepts, the same block tampered so that it must fail)
CASES = [
    ("bash", {}, 'name=world\necho "hello $name"\n', 'if [ -f x ]; then\n  echo yes\n'),
    ("bash", {}, 'for f in *.log; do gzip "$f"; done\n', 'while read -r host; do ssh "$host" uptime; done < hosts\n'),
    ("yaml", {}, "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80\n",
     "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  prots:\n    - port: 80\n"),
    ("yaml", {}, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n"
                 "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: three\n  selector: {matchLabels: {app: web}}\n"
     "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n"),
    ("yaml", {}, "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test\n",
     "on: push\njobs:\n  test:\n    runs_on: ubuntu-latest\n    steps:\n      - run: make test\n"),
    ("yaml", {}, "services:\n  web:\n    image: nginx\n    ports: ['8080:80']\n",
     "services:\n  web:\n    image: nginx\n    portz: ['8080:80']\n"),
    ("yaml", {}, "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web}\nspec:\n  project: default\n"
                 "  source: {repoURL: 'https://example.org/r.git', path: web}\n  destination: {server: 'https://kubernetes.default.svc'}\n"
                 "  syncPolicy:\n    automated: {prune: true}\n",
     "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web}\nspec:\n  project: default\n"
     "  source: {repoURL: 'https://example.org/r.git', path: web}\n  destination: {server: 'https://kubernetes.default.svc'}\n"
     "  syncPolicy:\n    automated: {prunee: true}\n"),
    ("yaml", {}, "key: value\n", "key: [unclosed\n"),
    ("dockerfile", {}, "FROM debian:bookworm-slim\nUSER nobody\nCMD [\"true\"]\n", "FROM debian:bookworm-slim\nRUN cd /tmp && make\nCMD true\nMAINTAINER x\n"),
    ("sql", {}, "SELECT id FROM orders WHERE total > 10;\n", "SELECT id FROM orders WHERE;\n"),
    ("sql", {"dialect": "mysql"}, "SELECT user, host FROM mysql.user WHERE account_locked = 'Y';\n",
     "SELECT user, host FROM mysql.user WHERE;\n"),
    ("python", {}, "import os\n\nprint(os.getcwd())\n", "print(os.getcwd())\n"),
    ("hcl", {}, 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n', 'resource "aws_s3_bucket" "b" {\n  bucket = \n}\n'),
    ("json", {}, '{"a": 1}\n', '{"a": 1,}\n'),
    ("toml", {}, '[tool.x]\na = 1\n', '[tool.x]\na = \n'),
    ("ini", {}, "[defaults]\ninventory = hosts\n", "inventory = hosts\n"),
    ("nginx", {}, "server {\n    listen 80;\n    location / { return 200; }\n}\n", "server {\n    listen 80;\n    location / { retrun 200; }\n}\n"),
    ("javascript", {}, "import http from 'k6/http';\nexport default function () { http.get('http://localhost'); }\n",
     "export default function () { http.get('http://localhost'; }\n"),
    ("markdown", {}, "# Title\n\n```bash\nls\n```\n", "# Title\n\n```bash\nls\n"),
]


@pytest.mark.parametrize("language,attrs,good,bad", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_checker_accepts_good_and_fails_tampered_blocks(language, attrs, good, bad):
    checker = checker_for(language)
    accepted, tampered = checker.judge_many([Item(good, language, attrs), Item(bad, language, attrs)])
    assert not accepted.unchecked and not tampered.unchecked
    assert accepted.findings == (), accepted.findings
    assert tampered.findings, f"{checker.name} passed a tampered {language} block"


def test_nginx_map_entries_are_data_not_unknown_directives():
    text = 'map $http_x_api_key $consumer {\n    default "";\n    "k1" alice;\n}\nserver {\n    listen 80;\n    location / { return 200 $consumer; }\n}\n'
    assert checker_for("nginx").judge(Item(text, "nginx")).findings == ()


def test_kubernetes_kind_without_a_schema_is_unchecked_with_the_reason_not_passed():
    outcome = checker_for("yaml").judge(Item("apiVersion: example.org/v1\nkind: Widget\nmetadata: {name: w}\n", "yaml"))
    assert outcome.unchecked.startswith("no schema for Widget")


def test_sql_that_sqlglot_keeps_opaque_is_unchecked_not_passed():
    outcome = checker_for("sql").judge(Item("CREATE USER 'app'@'%' IDENTIFIED BY;\n", "sql", {"dialect": "mysql"}))
    assert outcome.unchecked.startswith("sqlglot has no mysql grammar for CREATE statements")


def test_fence_attributes_are_parsed_and_unknown_ones_refused():
    fence = parse_info('sql dialect=mysql title="Grant roles"')
    assert fence.language == "sql" and fence.attrs == {"dialect": "mysql", "title": "Grant roles"}
    assert fence.rendered_info == 'sql title="Grant roles"'
    assert parse_info("yaml fragment").flags == {"fragment"}
    with pytest.raises(FenceError, match="unknown fence attribute 'dialekt'"):
        parse_info("sql dialekt=mysql")
    with pytest.raises(FenceError, match="run=HOST and after=STEP go together"):
        parse_info("bash run=app")


def test_fences_inside_list_items_are_found_with_their_lines():
    text = "1. Do this:\n\n    ```bash\n    ls\n    ```\n\n````markdown\n```bash\nnot a fence\n```\n````\n"
    found = fences(text)
    assert [(start, info, indent) for start, _end, info, _content, indent in found] == [(2, "bash", 4), (6, "markdown", 0)]


LAB_TASK = textwrap.dedent("""\
    id: serve
    title: Serve
    summary: s
    level: beginner
    guide: |
      ## Steps

      ```bash from=solution:1
      ```

      ```bash run=box after=1
      test -f /srv/www/index.html
      ```

      ```yaml
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        prots:
          - port: 80
      ```
    lab:
      duration: 5m
      objectives: [o]
      hosts:
        box: {}
      steps:
        - title: t
          solution:
            - host: box
              run: |
                mkdir -p /srv/www
                echo hello > /srv/www/index.html
          checks:
            - {host: box, file: /srv/www/index.html, contains: [hello]}
    """)


def make_kb(tmp_path: Path, task: str) -> Path:
    root = tmp_path / "labs"
    (root / "web").mkdir(parents=True)
    (root / "web" / "area.yaml").write_text(AREA)
    (root / "web" / "serve.yaml").write_text(task)
    return root


def test_from_shows_the_lab_text_and_run_blocks_are_executed(tmp_path):
    catalog = load_catalog(make_kb(tmp_path, LAB_TASK.replace("prots:", "ports:")))
    blocks = extract(catalog)
    included, snippet, manifest = blocks
    assert included.text == "mkdir -p /srv/www\necho hello > /srv/www/index.html"
    assert included.origin == "lab step 1, solution" and included.host == "box"
    assert (snippet.host, snippet.after) == ("box", 1)
    judged = judge_all(catalog, Cache(None))
    assert [j.status for j in judged] == ["executed", "executed", "validated"]
    page = present(catalog.tasks()[0].task.guide, blocks, {j.block.index: j.as_dict() for j in judged})
    assert "```bash\nmkdir -p /srv/www\necho hello > /srv/www/index.html\n```" in page
    assert "from=" not in page and "run=" not in page
    assert "Executed in CI: the lab runs it (lab step 1, solution)" in page
    assert "Checked by Kubernetes 1.37 schema" in page


def test_from_must_name_a_real_part_of_the_lab(tmp_path):
    root = make_kb(tmp_path, LAB_TASK.replace("from=solution:1", "from=solution:7"))
    problems = []
    extract(load_catalog(root), problems)
    assert [(p.line, p.message) for p in problems] == [(8, "from=solution:7: the lab has steps 1 to 1")]


def test_validate_points_at_the_tampered_block_line_in_the_yaml_file(tmp_path):
    root = make_kb(tmp_path, LAB_TASK)
    done = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(root), "validate"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    # The manifest's fence opens on line 15 of serve.yaml; `prots:` is its 6th line, so line 21.
    assert f"{root}/web/serve.yaml:21:1: guide: ```yaml block 3: Kubernetes 1.37 schema: Service: spec:" in done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / ".opslabs" / "blocks.json").read_text())
    assert [b["status"] for b in report["blocks"]] == ["executed", "executed", "failed"]


def test_unchanged_blocks_are_not_checked_twice(tmp_path):
    catalog = load_catalog(make_kb(tmp_path, LAB_TASK))
    cache = Cache(tmp_path / "cache.json")
    judge_all(catalog, cache, [])
    cache.save()
    again = Cache(tmp_path / "cache.json")
    judge_all(catalog, again, [])
    assert again.misses == 0 and again.hits >= 3


def test_a_language_without_checker_needs_a_reason(tmp_path):
    task = LAB_TASK.replace("```bash run=box after=1", "```groovy").replace("test -f", "pipeline { }\n  // test -f")
    problems = []
    judge_all(load_catalog(make_kb(tmp_path, task)), Cache(None), problems)
    assert any("no checker for ```groovy: add unchecked=" in p.message for p in problems)


TAMPERED_GUIDE = '''\
id: tampered
title: Tampered
summary: s
level: beginner
guide: |
  ```bash
  if [ -f /etc/motd ]; then
    cat /etc/motd
  ```

  ```yaml
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
  spec:
    replica: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec:
        containers: [{name: web, image: nginx}]
  ```

  ```yaml
  on: push
  jobs:
    test:
      runs_on: ubuntu-latest
      steps:
        - run: make test
  ```

  ```dockerfile
  FROM debian:bookworm-slim
  RUN cd /app && make
  ```

  ```sql dialect=mysql
  SELECT user FROM mysql.user WHERE ORDER BY user;
  ```
'''


def test_validate_locates_each_tampered_snippet_at_its_line(tmp_path):
    root = make_kb(tmp_path, LAB_TASK.replace("prots:", "ports:"))
    (root / "web" / "tampered.yaml").write_text(TAMPERED_GUIDE)
    done = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(root), "validate"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    where = f"{root}/web/tampered.yaml"
    lines = {int(line.split(":")[1]) for line in done.stderr.splitlines() if line.startswith(where)}
    # shell: the `if` opened on line 7 never closes (reported at the block); Deployment: `replica` on 16;
    # workflow: the job on 27 lacks `runs-on` (its `runs_on` on 28 is a typo); Dockerfile: `cd` on 35;
    # SQL: its block on 39 (sqlglot names no line)
    assert 7 in lines, done.stderr
    assert 16 in lines, done.stderr
    assert {27, 28} & lines and ("'runs-on' is a required property" in done.stderr or "'runs_on' was unexpected" in done.stderr), done.stderr
    assert 35 in lines, done.stderr
    assert 39 in lines or 40 in lines, done.stderr


def test_page_notes_name_the_lab_result_and_ignore_a_stale_report(tmp_path, repo):
    from opslabs.errors import ValidationFailed
    from opslabs.render import render

    root = make_kb(tmp_path, LAB_TASK.replace("prots:", "ports:"))
    catalog = load_catalog(root)
    report = {"blocks": [j.as_dict() for j in judge_all(catalog, Cache(None))]}
    results = {"serve": {"status": "passed", "finished": "2026-12-01T10:00:00", "duration": 3}}
    guide = render(catalog, None, results, report)["web/serve/index.md"]
    assert "Executed in CI: the lab runs it (lab step 1, solution) and checks its effect (verified: passed on 2026-12-01 in 3 s)" in guide
    assert "3 of 3 code blocks checked" in guide
    changed = load_catalog(make_kb(tmp_path / "changed", LAB_TASK.replace("prots:", "ports:").replace("test -f", "test -s")))
    stale = render(changed, None, results, report)["web/serve/index.md"]
    assert "2 of 2 code blocks checked" in stale and "test -s" in stale  # the changed block is not described
    broken = load_catalog(make_kb(tmp_path / "broken", LAB_TASK.replace("from=solution:1", "from=solution:9")))
    with pytest.raises(ValidationFailed, match="from=solution:9: the lab has steps 1 to 1"):
        render(broken, None, results, report)


def test_report_and_cache_live_beside_the_knowledge_base(tmp_path):
    from opslabs.blocks.report import check_and_report

    root = make_kb(tmp_path / "elsewhere", LAB_TASK.replace("prots:", "ports:"))
    check_and_report(load_catalog(root))
    assert (tmp_path / "elsewhere" / ".opslabs" / "blocks.json").exists()
    assert (tmp_path / "elsewhere" / ".opslabs" / "cache" / "blocks.json").exists()


def test_a_quote_in_a_title_does_not_end_the_attribute():
    assert parse_info("""bash title='say "hi"'""").rendered_info == 'bash title="say ' + "'hi'" + '"'
