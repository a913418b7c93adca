"""Render 1,000 synthetic tasks and compare with a plain `mkdocs build` of the same pages.

Both are measured in this run, on this machine: the generator's share of a site build
(load + render + write) should stay under 5 %.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from opslabs.load import load_catalog
from opslabs.render import render, write_pages

REPO = Path(__file__).resolve().parent.parent
AREAS, TASKS_PER_AREA = 20, 50


def synthetic_kb(root: Path) -> None:
    for a in range(AREAS):
        area = root / f"area-{a:02d}"
        area.mkdir(parents=True)
        (area / "area.yaml").write_text(yaml.safe_dump({
            "id": f"area-{a:02d}", "title": f"Area {a}", "order": a, "summary": "Synthetic area.",
            "overview": "## Why it matters\n\n" + "Synthetic text. " * 80,
        }))
        for t in range(TASKS_PER_AREA):
            task = {
                "id": f"task-{a:02d}-{t:02d}", "title": f"Task {a}.{t}", "summary": "A synthetic task.",
                "level": "intermediate", "tags": ["synthetic", f"tag-{t % 10}"],
                "guide": "## Steps\n\n" + "\n".join(f"{i}. Do step {i}:\n\n    ```bash\n    echo step {i}\n    ```\n" for i in range(1, 6)),
            }
            if t % 5 == 0:
                task["lab"] = {
                    "duration": "10m", "objectives": ["Do it"],
                    "hosts": {"box": {"setup": ["apt-get update"]}},
                    "steps": [{"title": f"Step {s}", "solution": [{"host": "box", "run": f"echo {s} > /tmp/{s}"}],
                               "checks": [{"host": "box", "file": f"/tmp/{s}", "contains": [str(s)], "message": "m"}],
                               "hints": ["h"]} for s in range(3)],
                }
            (area / f"{task['id']}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))


PLAIN_MKDOCS = textwrap.dedent("""\
    site_name: bench
    docs_dir: docs
    site_dir: site
    theme: {name: material, features: [navigation.sections, navigation.indexes, content.code.copy]}
    plugins: [search, tags]
    markdown_extensions:
      - admonition
      - attr_list
      - md_in_html
      - tables
      - toc: {permalink: true}
      - pymdownx.details
      - pymdownx.emoji:
          emoji_index: !!python/name:material.extensions.emoji.twemoji
          emoji_generator: !!python/name:material.extensions.emoji.to_svg
      - pymdownx.highlight
      - pymdownx.superfences
      - pymdownx.tabbed: {alternate_style: true}
      - pymdownx.tasklist: {custom_checkbox: true}
    """)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="opslabs-bench-") as tmp:
        tmp = Path(tmp)
        synthetic_kb(tmp / "labs")
        started = time.perf_counter()
        catalog = load_catalog(tmp / "labs")
        loaded = time.perf_counter()
        pages = render(catalog, None)
        rendered = time.perf_counter()
        write_pages(pages, tmp / "docs")
        written = time.perf_counter()
        (tmp / "docs" / "workshops.md").write_text("# Workshops\n")  # linked from the home page
        (tmp / "mkdocs.yml").write_text(PLAIN_MKDOCS)
        build_start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet"], cwd=tmp, capture_output=True, text=True)
        build = time.perf_counter() - build_start
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            return 1
    generator = written - started
    share = generator / (generator + build)
    print(f"render benchmark: {len(catalog.tasks())} tasks, {len(catalog.labs())} labs, {len(pages)} pages")
    print(f"  load (YAML + validation) {loaded - started:7.2f} s")
    print(f"  render (Jinja2)          {rendered - loaded:7.2f} s")
    print(f"  write Markdown           {written - rendered:7.2f} s")
    print(f"  opslabs total            {generator:7.2f} s")
    print(f"  plain mkdocs build       {build:7.2f} s   (same pages, same theme, no opslabs plugin)")
    print(f"  generator share of a site build: {share:.1%} (target < 5%)")
    return 0 if share < 0.05 else 2


if __name__ == "__main__":
    sys.exit(main())
