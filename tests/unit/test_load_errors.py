"""The loader reports every problem with file, line, column and field path."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opslabs.errors import ValidationFailed
from opslabs.load import load_catalog

AREA = "id: web\ntitle: Web\norder: 1\nsummary: s\noverview: o\n"
TASK = textwrap.dedent("""\
    id: serve
    title: Serve
    summary: s
    level: beginner
    guide: g
    lab:
      duration: 5m
      objectives: [o]
      hosts:
        box: {}
      steps:
        - title: t
          solution:
            - {host: box, run: "true"}
          checks:
            - {host: box, file: /tmp/x}
    """)


def make_kb(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    root = tmp_path / "labs"
    for rel, content in {"web/area.yaml": AREA, **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def problems(root: Path) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        load_catalog(root)
    return [str(p) for p in caught.value.problems]


def test_valid_knowledge_base_loads(tmp_path):
    catalog = load_catalog(make_kb(tmp_path, {"web/serve.yaml": TASK}))
    assert [t.id for t in catalog.labs()] == ["serve"]
    assert catalog.labs()[0].line_of("lab", "steps", 0) == 12


def test_unknown_key_names_file_line_field_and_allowed_keys(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": TASK.replace("level: beginner", "level: beginner\ncolour: red")})
    [problem] = problems(root)
    assert problem.startswith(f"{root}/web/serve.yaml:5:1: colour: unknown key (expected one of:")
    assert "guide" in problem and "summary" in problem


def test_unknown_key_inside_a_check_lists_that_check_kind_s_keys(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": TASK.replace("file: /tmp/x}", "file: /tmp/x, contain: [a]}")})
    [problem] = problems(root)
    assert ":16:37: lab.steps.0.checks.0.contain: unknown key" in problem
    assert "contains" in problem and "not_contains" in problem


def test_unknown_key_inside_a_host_is_located(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": TASK.replace("box: {}", "box: {imag: x}")})
    [problem] = problems(root)
    assert "serve.yaml:10:11: lab.hosts.box.imag: unknown key" in problem
    assert "image" in problem


def test_syntax_error_reports_line(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": "id: serve\ntitle: [unclosed\nsummary: s\n"})
    [problem] = problems(root)
    assert problem.startswith(f"{root}/web/serve.yaml:3:")
    assert "YAML syntax error" in problem


def test_tab_indentation_gets_a_plain_explanation(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": "id: serve\nlab:\n\tduration: 5m\n"})
    [problem] = problems(root)
    assert "serve.yaml:3:1:" in problem and "tab" in problem


@pytest.mark.parametrize("content, expected", [
    ("", "empty file"),
    ("- a\n- b\n", "expected a mapping of fields at the top level, found a list"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a UTF-8 text file"),
    (b"id: x\x00\n", "binary content"),
])
def test_malformed_files(tmp_path, content, expected):
    root = make_kb(tmp_path, {"web/serve.yaml": content})
    [problem] = problems(root)
    assert "serve.yaml:1:1:" in problem and expected in problem


def test_wrong_type_and_missing_field(tmp_path):
    task = TASK.replace("level: beginner", "level: expert").replace("  duration: 5m\n", "").replace("summary: s", "summary: [a, b]")
    found = problems(make_kb(tmp_path, {"web/serve.yaml": task}))
    assert any(":4:1: level: expected 'beginner', 'intermediate' or 'advanced', got 'expert'" in p for p in found)
    assert any(":3:1: summary: expected text, got a list ['a', 'b']" in p for p in found)
    assert any(":6:1: lab.duration: required field is missing" in p for p in found)


def test_step_naming_an_undeclared_host(tmp_path):
    [problem] = problems(make_kb(tmp_path, {"web/serve.yaml": TASK.replace("{host: box, run", "{host: bxo, run")}))
    assert ":14:12: lab.steps.0.solution.0.host: host 'bxo' is not declared in lab.hosts (declared: box)" in problem


def test_check_without_a_kind(tmp_path):
    [problem] = problems(make_kb(tmp_path, {"web/serve.yaml": TASK.replace("file: /tmp/x", "flie: /tmp/x")}))
    assert "lab.steps.0.checks.0: a check needs exactly one kind key: file, package" in problem


def test_duplicate_ids_and_duplicate_keys(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": TASK, "web2/area.yaml": AREA.replace("web", "web2"), "web2/serve.yaml": TASK,
                              "web/dup.yaml": "id: dup\nid: dup\ntitle: t\nsummary: s\nlevel: beginner\nguide: g\n"})
    found = problems(root)
    assert any("web2/serve.yaml:1:1: id: duplicate task id, also used by" in p for p in found)
    assert any("dup.yaml:2:1: id: duplicate key" in p for p in found)


def test_id_must_match_file_name_and_area_folder(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": TASK.replace("id: serve", "id: served")})
    [problem] = problems(root)
    assert "serve.yaml:1:1: id: must equal the file name 'serve', got 'served'" in problem


def test_all_problems_of_all_files_are_reported_together(tmp_path):
    root = make_kb(tmp_path, {
        "web/a.yaml": TASK.replace("id: serve", "id: a").replace("level: beginner", "level: x"),
        "web/b.yaml": "id: b\n  bad: [\n",
        "other/task.yaml": TASK.replace("id: serve", "id: c"),  # folder without area.yaml
    })
    found = problems(root)
    assert len(found) == 3
    assert {Path(p.split(":")[0]).name for p in found} == {"a.yaml", "b.yaml", "area.yaml"}


def test_cli_validate_exits_1_without_traceback(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": TASK.replace("level: beginner", "level: beginner\nextra: 1")})
    proc = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(root), "validate"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "serve.yaml:5:1: extra: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_validate_on_a_syntax_error(tmp_path):
    root = make_kb(tmp_path, {"web/serve.yaml": "id: serve\ntitle: 'unterminated\n"})
    proc = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(root), "validate"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "serve.yaml:3:1: YAML syntax error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_repository_knowledge_base_is_valid(repo):
    proc = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(repo / "labs"), "validate"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_guide_markdown_problems_point_at_the_file_line(tmp_path):
    guide = "guide: |\n  ## Steps\n\n  1. Install:\n\n     ```bash\n     apt-get install nginx\n     ```\n\n  ```\n  no language\n  ```\n"
    task = TASK.replace("guide: g\n", guide)
    found = problems(make_kb(tmp_path, {"web/serve.yaml": task}))
    assert any("serve.yaml:10:1: guide: code block indented by 3 spaces; content of a list item needs 4" in p for p in found)
    assert any("serve.yaml:14:1: guide: code block without a language" in p for p in found)


def test_unclosed_code_block_in_an_area_overview(tmp_path):
    root = make_kb(tmp_path, {})
    (root / "web" / "area.yaml").write_text(AREA.replace("overview: o\n", "overview: |\n  Text\n\n  ```bash\n  echo open\n"))
    [problem] = problems(root)
    assert "area.yaml:8:1: overview: code block is never closed" in problem


@pytest.mark.parametrize("value, expected", [
    ("title: !include other.yaml", "serve.yaml:2:8: title: cannot read this value:"),
    ("title: 2024-13-45", "serve.yaml:2:8: title: cannot read this value:"),
    ("? [a, b]\n: x\ntitle: t", "serve.yaml:2:3: a key must be plain text"),
])
def test_unreadable_values_and_keys_are_located_problems(tmp_path, value, expected):
    task = TASK.replace("title: Serve", value)
    found = problems(make_kb(tmp_path, {"web/serve.yaml": task}))
    assert any(expected in p for p in found), found


def test_an_invalid_regular_expression_is_a_validation_error(tmp_path):
    task = TASK.replace("file: /tmp/x}", "file: /tmp/x, matches: ['(unclosed']}")
    [problem] = problems(make_kb(tmp_path, {"web/serve.yaml": task}))
    assert "lab.steps.0.checks.0.matches.0: not a valid regular expression: missing ), unterminated subpattern" in problem
