"""The knowledge base itself: coverage of the 22 areas, structure, and the lab authoring rules."""

import re
from pathlib import Path

import pytest

from opslabs.load import load_catalog

AREA_HEADINGS = ["## Why it matters", "## Tools and practice in 2026", "## Worked example", "## Common pitfalls", "## Checklist"]


@pytest.fixture(scope="module")
def catalog(repo):
    return load_catalog(repo / "labs")


def test_all_22_areas_with_at_least_40_task_guides(catalog):
    assert len(catalog.areas) == 22
    assert len(catalog.tasks()) >= 40
    assert all(len(area.tasks) >= 2 for area in catalog.areas), [a.id for a in catalog.areas if len(a.tasks) < 2]


@pytest.mark.parametrize("heading", AREA_HEADINGS)
def test_every_area_overview_has_the_required_sections(catalog, heading):
    missing = [a.id for a in catalog.areas if heading not in a.area.overview]
    assert not missing, f"{heading!r} missing in {missing}"


def test_every_area_overview_ends_with_a_checklist_of_tasks(catalog):
    for area in catalog.areas:
        checklist = area.area.overview.split("## Checklist", 1)[1]
        assert checklist.count("- [ ]") >= 5, area.id


def _markdown_texts(catalog):
    for area in catalog.areas:
        yield f"{area.id}/area.yaml overview", area.area.overview
        for entry in area.tasks:
            yield f"{entry.path.name} guide", entry.task.guide


def test_every_lab_step_has_a_hint_and_every_check_a_message(catalog):
    problems = []
    for entry in catalog.labs():
        for number, step in enumerate(entry.task.lab.steps, 1):
            if not step.hints:
                problems.append(f"{entry.id} step {number}: no hint")
            problems += [f"{entry.id} step {number} check {i}: no message" for i, c in enumerate(step.checks, 1) if not c.message]
    assert not problems, "\n".join(problems)


def test_argo_cd_password_comes_from_the_secret_not_a_pod_name(catalog):
    install = next(t for t in catalog.tasks() if t.id == "argocd-install-login").task.guide
    assert "argocd-initial-admin-secret" in install and "argocd admin initial-password" in install
    pod_name_as_password = re.compile(r"get pods?\b.*argocd-server.*-o name", re.IGNORECASE)
    everything = [text for _, text in _markdown_texts(catalog)]
    everything += [c.run for t in catalog.labs() for s in t.task.lab.steps for c in s.solution]
    assert not [text for text in everything if pod_name_as_password.search(text)]


# Steps that reach the outside after setup (issue 11): each one teaches installing.
ONLINE_STEPS: dict[str, list[int]] = {}


def test_only_steps_that_teach_installing_reach_the_outside():
    from opslabs.load import load_catalog

    catalog = load_catalog(Path(__file__).resolve().parents[2] / "labs")
    online = {t.id: [n for n, s in enumerate(t.task.lab.steps, 1) if s.online] for t in catalog.labs()}
    assert {lab: steps for lab, steps in online.items() if steps} == ONLINE_STEPS


def _guide_blocks(task_id: str):
    from opslabs.blocks.extract import blocks_of_task

    catalog = load_catalog(Path(__file__).resolve().parents[2] / "labs")
    entry = next(t for t in catalog.tasks() if t.id == task_id)
    return blocks_of_task(entry, [])


def test_pre_commit_guide_commits_the_files_its_lab_creates():
    """The guide ran `git add .pre-commit-config.yaml .yamllint` without ever creating .yamllint:
    every block that stages them must be the lab's own text, which creates both."""
    staging = [b for b in _guide_blocks("pre-commit-quality-gate") if ".yamllint" in b.text and "git add" in b.text]
    assert staging, "the guide no longer shows how the configuration is committed"
    for block in staging:
        assert block.origin.startswith("lab step"), f"{block.where} is a hand-copied twin of the lab"
        assert "cat > .yamllint" in block.text or "> .yamllint" in block.text or ".yamllint <<" in block.text


def test_redis_guide_verify_reads_what_its_worker_writes():
    """The guide's worker lacked `import redis` and never wrote billing:by_consumer, which its
    verify step read: the worker and the verify step are now the lab's, executed by CI."""
    blocks = _guide_blocks("redis-streams-consumer-group")
    worker = [b for b in blocks if "xreadgroup" in b.text]
    assert worker and all(b.origin.startswith("lab step") for b in worker)
    assert any("import redis" in b.text and 'hincrby("billing:by_consumer"' in b.text for b in worker)
    readers = [b for b in blocks if "billing:by_consumer" in b.text and "HGETALL" in b.text]
    assert readers and all(b.origin.startswith("lab step") or b.after for b in readers)


# A system file that two guides write: following both must still work. Each entry says what every
# writer must write, so that the second guide does not undo the first.
SHARED_SYSTEM_FILES = {
    # only the include line: each table lives in its own /etc/nftables.d/*.nft file
    "/etc/nftables.conf": ('include "/etc/nftables.d/*.nft"', "table "),
    # the same repository line in both Trivy guides
    "/etc/apt/sources.list.d/trivy.list": ("deb [signed-by=/usr/share/keyrings/trivy.gpg] https://get.trivy.dev/deb generic main", None),
}
WRITES = re.compile(r"(?:(?<![>&0-9])>\s*|\btee\s+(?!-a)(?:-\S+\s+)*|\bcp\s+(?:-\S+\s+)*\S+\s+|\binstall\s+(?:-\S+\s+)*\S+\s+)(/etc/[\w.@/-]+)")


def _writers() -> dict[str, list[tuple[str, str]]]:
    """{system file: [(guide page, the command that writes it, with its here-document)]}"""
    from opslabs.blocks.extract import extract

    found: dict[str, list[tuple[str, str]]] = {}
    for block in extract(load_catalog(Path(__file__).resolve().parents[2] / "labs")):
        if block.language not in ("bash", "sh"):
            continue
        lines = block.text.replace("\\\n", " ").splitlines()
        for i, line in enumerate(lines):
            for match in WRITES.finditer(line):
                command = line
                heredoc = re.search(r"<<-?\s*'?\"?(\w+)", line)
                if heredoc:
                    end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == heredoc.group(1)), len(lines))
                    command += "\n" + "\n".join(lines[i + 1:end])
                elif i and lines[i - 1].rstrip().endswith("|"):
                    command = lines[i - 1] + "\n" + line
                found.setdefault(match.group(1), []).append((block.page, command))
    return found


def test_system_files_written_by_two_guides_are_written_compatibly():
    writers = _writers()
    shared = {path: w for path, w in writers.items() if len({page for page, _ in w}) > 1}
    unexplained = sorted(set(shared) - set(SHARED_SYSTEM_FILES))
    assert not unexplained, f"two guides write {unexplained}: make one of them use a drop-in file, or add it here with what both must write"
    for path, commands in shared.items():
        required, forbidden = SHARED_SYSTEM_FILES[path]
        for page, command in commands:
            assert required in command, f"{page} writes {path} without {required!r}:\n{command}"
            assert forbidden is None or forbidden not in command, f"{page} writes more than {required!r} into {path}"
