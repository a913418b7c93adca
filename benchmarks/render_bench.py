"""Build synthetic knowledge bases of 250, 500 and 1,000 tasks with this site's real mkdocs.yml
and navigation, with MkDocs and with Zensical, side by side.

Each size is a project of its own: the repository's mkdocs.yml and hand-written pages, a synthetic
labs/ (20 areas, one task in five with a lab, about 1.2 pages a task), `opslabs render` (pages and
the navigation file), then `mkdocs build` (strict, with the opslabs plugin, as `make site`) and
`zensical build --clean` (no cache). These machines are shared: the ratios measured in one run
are what counts, the absolute times are printed with the load average.

Targets (issue 12): MkDocs builds 1,000 tasks in under 30 s, and 1,000 tasks take at most 4.5x
the time of 250 (linear, not quadratic). The ratio is taken on CPU time (user + system seconds of
the build), which other processes on the machine barely change, while they can stretch the wall
time several-fold; exit status 2 when it is missed. The absolute time depends on the machine's
load: it is reported with the load average (wall and CPU), not enforced.

    python benchmarks/render_bench.py [--sizes 250,500,1000] [--repeat N] [--no-zensical]
    python benchmarks/render_bench.py --profile 1000   # cProfile of one MkDocs build, top functions
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AREAS = 20
TARGET_SECONDS, TARGET_RATIO = 30.0, 4.5


def synthetic_kb(root: Path, tasks: int) -> None:
    """`tasks` tasks spread over AREAS areas; guides with code blocks, every fifth task a lab."""
    for a in range(AREAS):
        area = root / f"area-{a:02d}"
        area.mkdir(parents=True)
        (area / "area.yaml").write_text(yaml.safe_dump({
            "id": f"area-{a:02d}", "title": f"Area {a}", "order": a, "summary": "Synthetic area.",
            "overview": "## Why it matters\n\n" + "Synthetic text. " * 80,
        }))
    for n in range(tasks):
        a, t = n % AREAS, n // AREAS
        task = {
            "id": f"task-{a:02d}-{t:03d}", "title": f"Task {a}.{t}", "summary": "A synthetic task.",
            "level": "intermediate", "tags": ["synthetic", f"tag-{t % 10}"],
            "guide": "## Steps\n\n" + "\n".join(
                f"{i}. Do step {i}:\n\n    ```bash\n    echo step {i}\n    ```\n" for i in range(1, 6)),
        }
        if t % 5 == 0:
            task["lab"] = {
                "duration": "10m", "objectives": ["Do it"],
                "hosts": {"box": {"setup": ["apt-get update"]}},
                "steps": [{"title": f"Step {s}", "solution": [{"host": "box", "run": f"echo {s} > /tmp/{s}"}],
                           "checks": [{"host": "box", "file": f"/tmp/{s}", "contains": [str(s)], "message": "m"}],
                           "hints": ["h"]} for s in range(3)],
            }
        (root / f"area-{a:02d}" / f"{task['id']}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))


def project(root: Path, tasks: int) -> Path:
    """The site's real mkdocs.yml and hand-written pages over a synthetic labs/ folder."""
    from opslabs.navigation import NAV_FILE
    from opslabs.render import MANIFEST, previously_rendered

    root.mkdir(parents=True)
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    rendered = previously_rendered(REPO / "docs") | {MANIFEST, NAV_FILE}
    for path in (REPO / "docs").rglob("*"):
        rel = path.relative_to(REPO / "docs").as_posix()
        if path.is_file() and rel not in rendered:
            (root / "docs" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, root / "docs" / rel)
    synthetic_kb(root / "labs", tasks)
    return root


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command. The builds are single-threaded (Zensical's
    Rust side uses more threads), so on an idle machine wall ~ CPU; on a loaded one the CPU
    time is the steadier number."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cpu, started = cpu_of_children(), time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed, cpu = time.perf_counter() - started, cpu_of_children() - cpu
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return elapsed, cpu


def measure(tmp: Path, tasks: int, zensical: bool) -> dict:
    root = project(tmp / f"kb-{tasks}", tasks)
    result: dict = {"tasks": tasks}
    result["render"], result["render_cpu"] = run([str(BIN / "opslabs"), "render"], root)
    result["mkdocs"], result["mkdocs_cpu"] = run([str(BIN / "mkdocs"), "build", "--strict", "--quiet", "--site-dir", "site-mkdocs"], root)
    html = list((root / "site-mkdocs").rglob("*.html"))
    result["html_pages"] = len(html)
    result["kb_per_page"] = sum(p.stat().st_size for p in html) / len(html) / 1024
    if zensical:
        result["zensical"], result["zensical_cpu"] = run([str(BIN / "zensical"), "build", "--strict", "--clean"], root)
    shutil.rmtree(root)
    return result


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def profile(tasks: int, top: int) -> None:
    """cProfile of one MkDocs build (in this process) of `tasks` synthetic tasks."""
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory(prefix="opslabs-bench-") as tmp:
        root = project(Path(tmp) / "kb", tasks)
        run([str(BIN / "opslabs"), "render"], root)
        os.environ["NO_MKDOCS_2_WARNING"] = "1"
        from mkdocs.commands.build import build
        from mkdocs.config import load_config

        os.chdir(root)
        config = load_config(str(root / "mkdocs.yml"), site_dir=str(root / "site-mkdocs"))
        profiler = cProfile.Profile(time.process_time)  # CPU time: shares that other processes on the machine do not skew
        started, cpu = time.perf_counter(), time.process_time()
        profiler.enable()
        build(config)
        profiler.disable()
        print(f"MkDocs build of {tasks} tasks under cProfile: {time.perf_counter() - started:.1f} s,"
              f" {time.process_time() - cpu:.1f} s CPU ({load()})")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250,500,1000", help="task counts, comma-separated; the first is the ratios' base")
    parser.add_argument("--repeat", type=int, default=1, help="builds per size; the fastest counts (noise on a shared machine only adds)")
    parser.add_argument("--no-zensical", action="store_true", help="skip the Zensical builds")
    parser.add_argument("--profile", type=int, metavar="TASKS", help="profile one MkDocs build of TASKS tasks instead")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.top)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    zensical = not args.no_zensical and (BIN / "zensical").exists()
    print(f"site build benchmark: the real mkdocs.yml and navigation, {AREAS} areas ({load()} at the start)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="opslabs-bench-") as tmp:
        for tasks in sizes:
            runs = [measure(Path(tmp) / f"run-{r}", tasks, zensical) for r in range(args.repeat)]
            best = {key: min(r[key] for r in runs) if isinstance(runs[0][key], float) else runs[0][key] for key in runs[0]}
            best["load"] = os.getloadavg()[0]
            rows.append(best)
            print(f"  {tasks:>5} tasks done: MkDocs {best['mkdocs']:.1f} s" + (f", Zensical {best['zensical']:.1f} s" if zensical else "")
                  + f" (load {best['load']:.2f})", flush=True)
    base = rows[0]
    print()
    header = f"{'tasks':>6} {'pages':>6} {'KB/page':>8} {'render':>7} {'MkDocs':>8} {'CPU':>7} {'x base':>7}"
    if zensical:
        header += f" {'Zensical':>9} {'CPU':>7} {'x base':>7} {'MkDocs/Zensical':>16}"
    print(header + f" {'load 1m':>8}")
    for row in rows:
        line = (f"{row['tasks']:>6} {row['html_pages']:>6} {row['kb_per_page']:>8.0f} {row['render']:>6.1f}s {row['mkdocs']:>7.1f}s"
                f" {row['mkdocs_cpu']:>6.1f}s {row['mkdocs_cpu'] / base['mkdocs_cpu']:>6.2f}x")
        if zensical:
            line += (f" {row['zensical']:>8.1f}s {row['zensical_cpu']:>6.1f}s {row['zensical_cpu'] / base['zensical_cpu']:>6.2f}x"
                     f" {row['mkdocs_cpu'] / row['zensical_cpu']:>15.2f}x")
        print(line + f" {row['load']:>8.2f}")
    print("(MkDocs, Zensical: wall seconds, the fastest of --repeat; CPU: user + system seconds of that build;\n"
          " x base and MkDocs/Zensical: ratios of CPU time, which the other processes on a shared machine do not skew)")
    last = rows[-1]
    ratio, wall_ratio = last["mkdocs_cpu"] / base["mkdocs_cpu"], last["mkdocs"] / base["mkdocs"]
    size_ratio = last["tasks"] / base["tasks"]
    print()
    print(f"MkDocs, {last['tasks']} tasks against {base['tasks']}: {ratio:.2f}x the CPU time ({wall_ratio:.2f}x the wall time) for"
          f" {size_ratio:.0f}x the tasks (target at most {TARGET_RATIO}x for 4x)")
    if last["tasks"] == 1000:
        verdict = "under" if last["mkdocs"] < TARGET_SECONDS else "OVER"
        print(f"MkDocs, 1,000 tasks: {last['mkdocs']:.1f} s ({last['mkdocs_cpu']:.1f} s CPU), {verdict} the {TARGET_SECONDS:.0f} s"
              f" target ({load()} at the end)")
    if base["tasks"] * 4 == last["tasks"] and ratio > TARGET_RATIO:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
