"""Versions that guides share live in labs/versions.yaml; nothing writes them by hand."""

import re
from pathlib import Path

import pytest
import yaml

from opslabs.errors import ValidationFailed
from opslabs.load import load_catalog

LABS = Path(__file__).resolve().parents[2] / "labs"
FILES = sorted(p for p in LABS.glob("*/*.yaml"))
ACTION_LITERAL = re.compile(r"uses:\s*['\"]?[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@", re.I)


def versions() -> dict:
    return yaml.safe_load((LABS / "versions.yaml").read_text())


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_no_action_reference_is_written_by_hand(path):
    offending = [f"{path.name}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
                 if ACTION_LITERAL.search(line)]
    assert not offending, "write `uses: [[uses:owner/action]]` (labs/versions.yaml):\n" + "\n".join(offending)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_no_shared_tool_version_is_written_by_hand(path):
    tools = versions().get("tools") or {}
    offending = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        for name in tools:
            # the tool's name, then a version number on the same line, not through a placeholder
            if re.search(rf"(?<![\w/-]){re.escape(name)}\b[^\n\[]{{0,24}}?\bv?\d+\.\d+", line, re.I):
                offending.append(f"{path.name}:{n}: {line.strip()}  -> [[version:{name}]]")
    assert not offending, "take these versions from labs/versions.yaml:\n" + "\n".join(offending)


def test_placeholders_expand_and_unknown_names_are_located(tmp_path):
    root = tmp_path / "labs"
    (root / "ci").mkdir(parents=True)
    (root / "versions.yaml").write_text("actions:\n  actions/checkout: v6\ntools:\n  trivy: '0.75.0'\n")
    (root / "ci" / "area.yaml").write_text(
        "id: ci\ntitle: CI\norder: 1\nsummary: s\noverview: |\n  Trivy [[version:trivy]].\n\n"
        "  ```yaml\n  steps:\n    - uses: [[uses:actions/checkout]]\n    - uses: [[uses:actions/chekout]]\n  ```\n")
    with pytest.raises(ValidationFailed) as caught:
        load_catalog(root)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (11, "overview")
    assert "[[uses:actions/chekout]]: 'actions/chekout' is not in versions.yaml under actions" in problem.message
    (root / "ci" / "area.yaml").write_text((root / "ci" / "area.yaml").read_text().replace("chekout", "checkout"))
    overview = load_catalog(root).areas[0].area.overview
    assert "Trivy 0.75.0." in overview and overview.count("uses: actions/checkout@v6") == 2
