"""Golden-file tests for the renderer. Regenerate after an intended change with:
OPSLABS_UPDATE_GOLDEN=1 pytest tests/unit/test_render.py"""

import os
from pathlib import Path

import pytest

from opslabs.load import load_catalog
from opslabs.render import lab_status, render, write_pages

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
RESULTS = {"hello-lab": {"id": "hello-lab", "status": "passed", "duration": 41.6, "finished": "2026-11-27T10:00:00+00:00"}}


@pytest.fixture(scope="module")
def pages(repo):
    catalog = load_catalog(HERE / "fixtures" / "labs")
    return render(catalog, None, RESULTS)


def test_renders_the_expected_set_of_pages(pages):
    assert sorted(pages) == [
        "demo/hello-lab/index.md", "demo/hello-lab/lab.md", "demo/index.md",
        "demo/plain-guide/index.md", "index.md", "labs.md", "verification.md",
    ]


@pytest.mark.parametrize("page", [
    "index.md", "labs.md", "demo/index.md", "demo/hello-lab/index.md", "demo/hello-lab/lab.md", "demo/plain-guide/index.md",
    "verification.md",
])
def test_page_matches_golden_file(pages, page):
    golden = GOLDEN / page.replace("/", "__")
    if os.environ.get("OPSLABS_UPDATE_GOLDEN"):
        golden.write_text(pages[page], encoding="utf-8")
    assert pages[page] == golden.read_text(encoding="utf-8"), f"{page} differs from {golden}"


def test_rendering_is_pure(repo, pages):
    again = render(load_catalog(HERE / "fixtures" / "labs"), None, RESULTS)
    assert again == pages


def test_lab_page_shows_status_commands_checks_and_folded_hints(pages):
    lab = pages["demo/hello-lab/lab.md"]
    assert '!!! success "Verified: passed on 2026-11-27 in 42 s"' in lab
    assert "opslabs start hello-lab" in lab and "opslabs check hello-lab" in lab
    assert "**web** · http — `http://localhost/` answers 200 and its body contains `hello`" in lab
    assert '??? tip "Hint"' in lab
    assert "    ```bash\n    echo hello > /var/www/html/index.html\n    ```" in lab


def test_pages_say_how_each_block_was_checked_when_a_report_exists(repo):
    from opslabs.blocks.cache import Cache
    from opslabs.blocks.check import judge_all

    catalog = load_catalog(HERE / "fixtures" / "labs")
    judged = judge_all(catalog, Cache(None))
    assert judged, "the fixture guides have code blocks"
    report = {"generated": "2026-12-01T00:00:00+00:00", "blocks": [j.as_dict() for j in judged]}
    pages = render(catalog, None, RESULTS, report)
    page = judged[0].block.page
    text = pages[f"{page}/index.md"] if "/" in page else pages[f"{page}/index.md"]
    assert '<small class="opslabs-check opslabs-' in text
    verification = pages["verification.md"]
    assert f"**{len(judged)} code blocks**" in verification and "Checked on 2026-12-01." in verification
    assert "Not checked yet" in render(catalog, None, RESULTS)["verification.md"]


def test_status_texts():
    assert lab_status(None)["text"] == "Not verified yet"
    assert lab_status({"status": "failed", "finished": "2026-01-02T00:00:00"})["text"] == "Verification failed on 2026-01-02"
    assert lab_status({"status": "skipped", "reason": "requires kubernetes"})["text"] == "Not verified: requires kubernetes"


def test_unverified_lab_says_so(repo):
    pages = render(load_catalog(HERE / "fixtures" / "labs"), None, {})
    assert '!!! info "Not verified yet"' in pages["demo/hello-lab/lab.md"]


def test_write_pages_only_touches_changed_files(tmp_path, pages):
    assert len(write_pages(pages, tmp_path)) == len(pages)
    assert write_pages(pages, tmp_path) == []
    changed = {**pages, "index.md": pages["index.md"] + "\n"}
    assert write_pages(changed, tmp_path) == [tmp_path / "index.md"]


def test_write_pages_removes_pages_whose_source_is_gone_and_nothing_else(tmp_path, pages):
    (tmp_path / "howto").mkdir()
    (tmp_path / "howto" / "notes.md").write_text("hand-written")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "extra.md").write_text("hand-written, beside generated pages")
    write_pages({**pages, "demo/renamed-task/index.md": "old"}, tmp_path)
    assert (tmp_path / "demo" / "renamed-task" / "index.md").exists()
    write_pages(pages, tmp_path)
    assert not (tmp_path / "demo" / "renamed-task" / "index.md").exists()
    assert (tmp_path / "howto" / "notes.md").read_text() == "hand-written"
    assert (tmp_path / "demo" / "extra.md").read_text() == "hand-written, beside generated pages"
    assert (tmp_path / "demo" / "hello-lab" / "lab.md").exists()


def test_a_broken_template_is_a_located_user_error(repo, tmp_path):
    import shutil

    from opslabs.errors import UserError

    (tmp_path / "macros").mkdir()
    (tmp_path / "macros" / "guide.md.j2").write_text("line one\n{% for x in y %}\n{{ x }}\n{% endfo %}\n")
    with pytest.raises(UserError, match=r"guide.md.j2:4: template error: Encountered unknown tag 'endfo'"):
        render(load_catalog(HERE / "fixtures" / "labs"), tmp_path / "macros")


def test_a_skip_reason_with_newlines_and_pipes_stays_in_its_table_cell(repo):
    results = {"hello-lab": {"status": "skipped", "reason": 'image "x" | cannot\nbe pulled'}}
    pages = render(load_catalog(HERE / "fixtures" / "labs"), None, results)
    row = next(line for line in pages["labs.md"].splitlines() if "hello-lab/lab.md" in line)
    assert row.endswith("Not verified: image 'x' \\| cannot be pulled |")
    assert '!!! warning "Not verified: image \'x\' \\| cannot be pulled"' in pages["demo/hello-lab/lab.md"]


def test_a_content_repository_overrides_a_single_template(tmp_path):
    (tmp_path / "macros").mkdir()
    (tmp_path / "macros" / "home.md.j2").write_text("# Our own home page\n")
    pages = render(load_catalog(HERE / "fixtures" / "labs"), tmp_path / "macros")
    assert pages["index.md"] == "# Our own home page\n"
    assert pages["demo/hello-lab/lab.md"] == render(load_catalog(HERE / "fixtures" / "labs"), None)["demo/hello-lab/lab.md"]
