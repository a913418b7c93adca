"""Model -> Markdown pages. A pure function: same catalog and results, same pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from opslabs.catalog import Catalog
from opslabs.errors import UserError, ValidationFailed
from opslabs.model import check_kind

TEMPLATES = {"home": "home.md.j2", "area": "area.md.j2", "guide": "guide.md.j2", "lab": "lab.md.j2", "labs": "labs.md.j2",
             "verification": "verification.md.j2"}


# The package's own templates; a content repository's `macros/` overrides single files.
DEFAULT_TEMPLATES = Path(__file__).parent / "templates"
# The package's site assets (the stylesheet), written beside the pages and listed in extra_css.
ASSETS = Path(__file__).parent / "assets"
STYLESHEET = "assets/opslabs.css"


def asset_pages() -> dict[str, str]:
    """The package's site assets as {path below docs/: text}, for generators that run no plugin."""
    return {f"assets/{asset.name}": asset.read_text(encoding="utf-8") for asset in sorted(ASSETS.iterdir())}


def template_dirs(overrides: Path | None) -> list[str]:
    dirs = [str(overrides)] if overrides is not None and Path(overrides).is_dir() else []
    return [*dirs, str(DEFAULT_TEMPLATES)]


def environment(templates_dir: Path | None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dirs(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown, not HTML
    )
    env.filters["check_kind"] = check_kind
    env.filters["fence"] = fence
    env.filters["yaml_string"] = lambda text: json.dumps(str(text), ensure_ascii=False)
    env.filters["cell"] = table_cell
    env.globals["plural"] = plural
    return env


def table_cell(text: object) -> str:
    """Text safe inside a Markdown table cell or an admonition title: one line, no | or \"."""
    return " ".join(str(text).split()).replace("|", "\\|").replace('"', "'")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def fence(code: str, language: str = "bash") -> str:
    """A fenced code block that survives backticks inside the code."""
    ticks = "```"
    while ticks in code:
        ticks += "`"
    return f"{ticks}{language}\n{code.rstrip()}\n{ticks}"


def page_paths(area_id: str, task_id: str | None = None) -> dict[str, str]:
    if task_id is None:
        return {"area": f"{area_id}/index.md"}
    return {"guide": f"{area_id}/{task_id}/index.md", "lab": f"{area_id}/{task_id}/lab.md"}


def lab_status(result: dict[str, Any] | None) -> dict[str, str]:
    """What a lab page says about its last verification."""
    if not result:
        return {"state": "unverified", "text": "Not verified yet"}
    when = str(result.get("verified_at") or result.get("finished", ""))[:10]
    seconds = round(float(result.get("duration", 0)))
    status = result.get("status")
    commit = str(result.get("commit") or "")[:7]
    at = f" at {commit}{' with local changes' if result.get('modified') else ''}" if commit else ""
    if status == "passed":
        if at:  # the store's record: the date and the content commit it was verified at
            return {"state": "passed", "text": f"Verified on {when}{at} (passed in {seconds} s)"}
        return {"state": "passed", "text": f"Verified: passed on {when} in {seconds} s"}
    if status == "failed":
        return {"state": "failed", "text": f"Verification failed on {when}{at}"}
    return {"state": "skipped", "text": f"Not verified: {result.get('reason') or 'skipped'}"}


def render(catalog: Catalog, templates_dir: Path | None = None, results: dict[str, dict[str, Any]] | None = None,
           blocks_report: dict[str, Any] | None = None) -> dict[str, str]:
    """Render every page; returns {path relative to docs/: markdown}.

    `blocks_report` is what `opslabs validate` stored about the guides' code blocks: each block
    gets a line saying how it was checked, each guide a summary, the site a Verification page.
    """
    try:
        return _render(catalog, templates_dir, results, blocks_report or {})
    except jinja2.TemplateSyntaxError as err:
        raise UserError(f"{err.filename or templates_dir}:{err.lineno}: template error: {err.message}") from None
    except jinja2.TemplateError as err:
        raise UserError(f"{templates_dir or DEFAULT_TEMPLATES}: template error: {err}") from None


def _render(catalog: Catalog, templates_dir: Path | None, results: dict[str, dict[str, Any]] | None,
            blocks_report: dict[str, Any]) -> dict[str, str]:
    from opslabs.blocks.extract import blocks_of_area, blocks_of_task
    from opslabs.blocks.present import present
    from opslabs.blocks.present import current
    from opslabs.blocks.report import by_page, coverage, page_summary

    env = environment(templates_dir)
    results = results or {}
    judged = by_page(blocks_report)
    problems: list = []  # a bad fence (from= naming no part of the lab) fails the build, located
    pages: dict[str, str] = {}
    common = {"catalog": catalog, "page_paths": page_paths}
    pages["index.md"] = env.get_template(TEMPLATES["home"]).render(**common)
    labs = [(t, lab_status(results.get(t.id))) for t in catalog.labs()]
    pages["labs.md"] = env.get_template(TEMPLATES["labs"]).render(labs=labs, **common)
    table = coverage(blocks_report.get("blocks", [])) if blocks_report else None
    pages["verification.md"] = env.get_template(TEMPLATES["verification"]).render(
        coverage=table, generated=blocks_report.get("generated", ""), **common)
    for area in catalog.areas:
        overview = present(area.area.overview, blocks_of_area(area, problems), judged.get(area.id))
        pages[page_paths(area.id)["area"]] = env.get_template(TEMPLATES["area"]).render(area=area, overview=overview, **common)
        for entry in area.tasks:
            paths = page_paths(area.id, entry.id)
            page = f"{area.id}/{entry.id}"
            blocks = blocks_of_task(entry, problems)
            fresh = current(blocks, judged.get(page, {}))  # a report older than the text says nothing
            guide = present(entry.task.guide, blocks, fresh, lab_status(results.get(entry.id)) if entry.task.lab else None)
            summary = page_summary(list(fresh.values()))
            pages[paths["guide"]] = env.get_template(TEMPLATES["guide"]).render(
                area=area, entry=entry, task=entry.task, guide=guide, checked=summary, **common)
            if entry.task.lab is not None:
                status = lab_status(results.get(entry.id))
                pages[paths["lab"]] = env.get_template(TEMPLATES["lab"]).render(
                    area=area, entry=entry, task=entry.task, lab=entry.task.lab, status=status, **common
                )
    if problems:
        raise ValidationFailed(problems)
    return pages


MANIFEST = ".opslabs-pages"  # what the last `opslabs render` wrote, one path a line


def previously_rendered(out_dir: Path) -> set[str]:
    try:
        return set((Path(out_dir) / MANIFEST).read_text(encoding="utf-8").split())
    except OSError:
        return set()


def write_pages(pages: dict[str, str], out_dir: Path) -> list[Path]:
    """Write rendered pages below out_dir; only files whose content changed are touched.

    Pages the previous render wrote that have no source any more (a renamed or deleted
    task) are removed; nothing else in out_dir is ever touched.
    """
    out_dir = Path(out_dir)
    for stale in previously_rendered(out_dir) - set(pages):
        (out_dir / stale).unlink(missing_ok=True)
    written = []
    for rel, text in sorted(pages.items()):
        target = out_dir / rel
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    (out_dir / MANIFEST).write_text("".join(f"{rel}\n" for rel in sorted(pages)), encoding="utf-8")
    return written
