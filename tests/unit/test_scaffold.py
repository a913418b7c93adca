"""`opslabs new` and the CI files it shares with this repository: written, refused, recorded, valid."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from opslabs.errors import UserError
from opslabs.load import load_catalog
from opslabs.scaffold import new

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ".github/workflows/verify.yml"
# This repository is the first user of the layout: the same CI files, byte for byte.
SHARED = [WORKFLOW, "Jenkinsfile", ".pre-commit-config.yaml"]


def opslabs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opslabs", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", SHARED)
def test_this_repository_uses_the_scaffolds_ci_files(name):
    assert (ROOT / name).read_bytes() == (new.FILES / name).read_bytes(), \
        f"{name} differs from src/opslabs/scaffold/files/{name}: change both"


def test_new_writes_a_valid_content_repository(tmp_path):
    target = tmp_path / "kb"
    result = opslabs("new", str(target), "--install-from", "opslabs==0.1.0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert {"mkdocs.yml", "Makefile", "README.md", "requirements.txt", ".gitignore", ".pre-commit-config.yaml",
            WORKFLOW, "Jenkinsfile", "labs/runbooks/area.yaml", "labs/runbooks/archive-old-logs.yaml"} <= written
    assert not [p for p in written if p.endswith(".j2")]
    assert "opslabs==0.1.0" in (target / "requirements.txt").read_text().splitlines()
    assert yaml.safe_load((target / "mkdocs.yml").read_text())["site_name"] == "kb"
    catalog = load_catalog(target / "labs", policy=None)
    assert [lab.id for lab in catalog.labs()] == ["archive-old-logs"]
    readme = (target / "README.md").read_text()
    assert "make serve" in readme and "make test" in readme and "opslabs==0.1.0" in readme


def test_new_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    result = opslabs("new", str(tmp_path), "--install-from", "opslabs", cwd=tmp_path)
    assert result.returncode == 1
    assert "not empty (notes.txt)" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_new_accepts_a_fresh_clone_with_only_git(tmp_path):
    (tmp_path / ".git").mkdir()
    created = new.create(tmp_path, "opslabs")
    assert Path("Makefile") in created.files


def test_install_from_a_path_is_recorded_absolute_and_must_exist(tmp_path, monkeypatch):
    wheel = tmp_path / "dist" / "opslabs-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert new.install_line("dist/opslabs-0.1.0-py3-none-any.whl") == str(wheel)
    assert new.install_line("https://example.org/opslabs-0.1.0-py3-none-any.whl").startswith("https://")
    assert new.install_line("opslabs>=0.1") == "opslabs>=0.1"
    with pytest.raises(UserError, match="no such file"):
        new.install_line("./missing.whl")


def test_default_install_spec_is_where_this_opslabs_came_from():
    # The development install is editable from this clone: pip recorded the folder (PEP 610).
    info = json.loads(new.metadata.distribution("opslabs").read_text("direct_url.json") or "{}")
    if not info.get("url", "").startswith("file://"):
        pytest.skip("opslabs is not installed from a local folder here")
    assert Path(new.installed_from()) == ROOT


def test_default_install_spec_names_a_wheel_that_is_gone(monkeypatch, tmp_path):
    class Dist:
        version = "0.1.0"

        def read_text(self, name):
            return json.dumps({"url": (tmp_path / "gone.whl").as_uri(), "archive_info": {}})

    monkeypatch.setattr(new.metadata, "distribution", lambda name: Dist())
    with pytest.raises(UserError, match="no longer exists.*--install-from"):
        new.installed_from()


def test_workflow_matches_the_github_schema(tmp_path):
    check = [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    assert subprocess.run([*check, str(ROOT / WORKFLOW)], capture_output=True, text=True).returncode == 0
    broken = yaml.safe_load((ROOT / WORKFLOW).read_text())
    broken["jobs"]["site"]["runs-on"] = {"unknown": True}  # the check can fail
    (tmp_path / "verify.yml").write_text(yaml.safe_dump(broken))
    assert subprocess.run([*check, str(tmp_path / "verify.yml")], capture_output=True, text=True).returncode == 1


def _workflow():
    data = yaml.safe_load((ROOT / WORKFLOW).read_text())
    return data[True] if True in data else data["on"], data["jobs"]  # YAML 1.1 reads `on:` as True


def test_pull_request_jobs_never_run_the_test_suite():
    """The act test runs these jobs; a test suite among them would run that test again."""
    events, jobs = _workflow()
    assert "pull_request" in events
    pr_jobs = {name: job for name, job in jobs.items() if "pull_request" in job.get("if", "") and "!=" not in job["if"]}
    assert set(pr_jobs) == {"site", "changed-labs"}
    commands = [step["run"] for job in pr_jobs.values() for step in job["steps"] if "run" in step]
    assert commands == ["make validate site", "make verify-changed"]
    for command in commands:
        assert not re.search(r"\b(pytest|act|test|unit|browser)\b", command), command


def test_steps_that_download_an_action_are_skipped_under_act():
    _, jobs = _workflow()
    for name, job in jobs.items():
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses and not uses.startswith("actions/checkout@"):
                assert "!env.ACT" in step.get("if", ""), f"{name}: {uses} runs under act"


def test_action_majors_are_the_ones_labs_versions_yaml_names():
    known = yaml.safe_load((ROOT / "labs" / "versions.yaml").read_text())["actions"]
    _, jobs = _workflow()
    used = [step["uses"].split("@") for job in jobs.values() for step in job["steps"] if "uses" in step]
    stale = [f"{action}@{major} (versions.yaml: {known[action]})" for action, major in used
             if action in known and known[action] != major]
    assert not stale, stale
    assert {action for action, _ in used} <= set(known), "every action the workflow uses has its major in versions.yaml"


def test_this_repository_and_the_scaffold_offer_the_same_make_targets_for_ci_and_the_readme():
    """The workflow and the Jenkinsfile call these targets, in both repositories."""
    def targets(makefile: Path) -> set[str]:
        return set(re.findall(r"^([a-z][a-z-]*):", makefile.read_text(), re.M))

    needed = {"serve", "test", "site", "validate", "verify", "verify-changed", "merge-results"}
    assert needed <= targets(ROOT / "Makefile"), needed - targets(ROOT / "Makefile")
    assert needed <= targets(new.FILES / "Makefile"), needed - targets(new.FILES / "Makefile")
    for makefile in (ROOT / "Makefile", new.FILES / "Makefile"):
        text = makefile.read_text()
        assert "$(if $(SHARD),--shard $(SHARD))" in text and "--changed" in text and "127.0.0.1:$(PORT)" in text
