"""libyaml (CSafeLoader) parses the knowledge base with the same result as PyYAML's Python parser."""

import pytest

from opslabs import load
from opslabs.load import load_catalog

pytestmark = pytest.mark.skipif(load.FAST_LOADER is None, reason="PyYAML built without libyaml")


def test_the_knowledge_base_loads_the_same_with_either_parser(repo, monkeypatch):
    fast = load_catalog(repo / "labs")
    monkeypatch.setattr(load, "FAST_LOADER", None)
    slow = load_catalog(repo / "labs")
    assert fast == slow
    for a, b in zip(fast.tasks(), slow.tasks()):
        assert (a.marks, a.text_start) == (b.marks, b.text_start), a.path  # error locations and block lines
    for a, b in zip(fast.areas, slow.areas):
        assert (a.marks, a.text_start) == (b.marks, b.text_start), a.path


@pytest.mark.parametrize("text, expected", [
    ("id: x\n\ttitle: y\n", ":2:1: YAML syntax error: a tab character cannot indent YAML; use spaces"),
    ("id: [x\n", "YAML syntax error: "),
    ("id: *nowhere\n", ":1:5: YAML syntax error: found undefined alias 'nowhere'"),
])
def test_a_syntax_error_is_worded_by_the_python_parser(tmp_path, text, expected, monkeypatch):
    path = tmp_path / "task.yaml"
    path.write_text(text)
    fast: list = []
    assert load.parse_yaml(path, fast) is None
    monkeypatch.setattr(load, "FAST_LOADER", None)
    slow: list = []
    assert load.parse_yaml(path, slow) is None
    assert [str(p) for p in fast] == [str(p) for p in slow]
    assert expected in str(fast[0])
