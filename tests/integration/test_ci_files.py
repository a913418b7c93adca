"""The CI files checked offline with real tools: the Jenkinsfile with npm-groovy-lint (CodeNarc's
Groovy parser and its Jenkinsfile rules; Jenkins' own declarative linter needs a running Jenkins
controller), the pre-commit hook definitions with pre-commit's own validators."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = ROOT / "tools" / "node_modules" / ".bin" / "npm-groovy-lint"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def test_jenkinsfile_passes_the_jenkinsfile_rules(tmp_path):
    """One linter run (a JVM start) over the Jenkinsfile and a copy with a syntax error in it,
    so the test also shows that the check can fail."""
    if not LINT.exists() or shutil.which("java") is None:
        pytest.fail("npm-groovy-lint or java missing: `make test` installs them (tools/package-lock.json, scripts/ensure-test-tools.sh)")
    text = (ROOT / "Jenkinsfile").read_text()
    for name, content in (("good", text), ("broken", text.replace("    stages {\n", "    stages {\n        stage('Broken' {\n", 1))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Jenkinsfile").write_text(content)
    result = subprocess.run([str(LINT), "--noserver", "--config", "recommended-jenkinsfile", "--failon", "warning",
                             "--output", "json", "good/Jenkinsfile", "broken/Jenkinsfile"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    found = {Path(path).parent.name: [(e["severity"], e["rule"], e.get("line")) for e in report["errors"]]
             for path, report in json.loads(result.stdout)["files"].items()}
    assert [e for e in found["good"] if e[0] != "info"] == [], found["good"]
    assert [e[:2] for e in found["broken"]] == [("error", "NglParseError")], found["broken"]


@pytest.mark.parametrize("command, name", [("validate-manifest", ".pre-commit-hooks.yaml"),
                                           ("validate-config", ".pre-commit-config.yaml")])
def test_pre_commit_files_are_valid(command, name, tmp_path):
    result = subprocess.run([str(PRE_COMMIT), command, str(ROOT / name)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / name).write_text((ROOT / name).read_text().replace("pass_filenames: false", "pass_filenames: maybe"))
    bad = subprocess.run([str(PRE_COMMIT), command, str(tmp_path / name)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
