"""Checking every code block of the knowledge base, cold (empty cache) and warm (cached),
beside a `mkdocs build` of this site measured in the same run (these machines are shared and
noisy, so only ratios measured together mean something). Warm must stay under 10 % of the build."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opslabs.blocks.cache import Cache
from opslabs.blocks.check import judge_all
from opslabs.load import load_catalog

REPO = Path(__file__).resolve().parent.parent


def check(catalog, cache_path: Path) -> tuple[float, int, int]:
    cache = Cache(cache_path)
    started = time.perf_counter()
    judged = judge_all(catalog, cache, [])
    cache.save()
    return time.perf_counter() - started, len(judged), cache.hits


def main() -> None:
    catalog = load_catalog(REPO / "labs")
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "blocks.json"
        cold, blocks, _ = check(catalog, cache_path)
        warm, _, hits = check(catalog, cache_path)
        site = Path(tmp) / "site"
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        subprocess.run([sys.executable, "-m", "opslabs", "render"], cwd=REPO, check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", str(site)],
                       cwd=REPO, env=env, check=True, capture_output=True)
        build = time.perf_counter() - started
    print(f"code blocks: {blocks} checked; cold {cold:.2f} s, warm {warm:.2f} s ({hits} cache hits)")
    print(f"mkdocs build of this site (same run): {build:.2f} s")
    print(f"warm check / site build: {100 * warm / build:.1f} %  (target < 10 %)")
    print(f"cold check / site build: {100 * cold / build:.1f} %")
    if warm >= 0.10 * build:
        sys.exit("warm block checks take 10 % of a site build or more")


if __name__ == "__main__":
    main()
