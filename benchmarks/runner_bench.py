"""Lab-runner benchmarks, each measured side by side in this run:

1. per-check overhead: a testinfra check through our session backend vs testinfra's
   stock `docker://` backend (a `docker exec` per command), same container (target: 10x lower);
2. per-lab framework overhead: a one-host, one-step lab vs a bare `docker run` + `docker rm`
   (target: under 1 s beyond it);
3. the setup cache: first run of a lab with setup (built) vs the second (cached);
4. workshop start with a warm cache vs a bare `docker run` of the same image.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import testinfra

from opslabs import engine, images, workshop
from opslabs.load import load_catalog
from opslabs.runner import LabEnvironment, run_step
from opslabs.session import Session
from opslabs.testinfra_backend import session_host

BASE = "debian:bookworm-slim"
CHECKS = 40
ROUNDS = 5


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def bench_checks() -> tuple[float, float]:
    name = f"opslabs-bench-{os.getpid()}"
    engine.run_container(engine.ContainerSpec(name, BASE, "bench", None, engine.labels("run", "bench")))
    try:
        with Session(name) as session:
            ours_host = session_host(session, "bench")
            stock_host = testinfra.get_host(f"docker://{name}")

            def run(host):
                for _ in range(CHECKS):
                    assert host.file("/etc/hostname").exists

            run(ours_host), run(stock_host)  # warm up
            ours = statistics.median(timed(lambda: run(ours_host)) for _ in range(3)) / CHECKS
            stock = statistics.median(timed(lambda: run(stock_host)) for _ in range(3)) / CHECKS
    finally:
        engine.remove_containers([name])
    return ours, stock


def write_kb(root: Path, salt: str) -> None:
    area = root / "bench"
    area.mkdir(parents=True)
    (area / "area.yaml").write_text("id: bench\ntitle: Bench\norder: 1\nsummary: s\noverview: o\n")
    (area / "minimal.yaml").write_text(
        "id: minimal\ntitle: t\nsummary: s\nlevel: beginner\nguide: g\nlab:\n  duration: 1m\n  objectives: [o]\n"
        "  hosts:\n    box: {}\n  steps:\n    - title: t\n      solution: [{host: box, run: touch /tmp/done}]\n"
        "      checks: [{host: box, file: /tmp/done}]\n")
    (area / "with-setup.yaml").write_text(
        "id: with-setup\ntitle: t\nsummary: s\nlevel: beginner\nguide: g\nlab:\n  duration: 1m\n  objectives: [o]\n"
        f"  hosts:\n    box: {{setup: ['apt-get update -qq && apt-get install -y -qq git >/dev/null # {salt}']}}\n"
        "  steps:\n    - title: t\n      solution: [{host: box, run: git init -q /srv/repo}]\n"
        "      checks: [{host: box, file: /srv/repo/.git, directory: true}]\n")


def run_lab(entry) -> LabEnvironment:
    with LabEnvironment(entry) as env:
        for index in range(len(entry.task.lab.steps)):
            run_step(env, index)
    return env


def bare_run() -> None:
    name = f"opslabs-bench-bare-{os.getpid()}"
    subprocess.run(["docker", "run", "-d", "--name", name, "--entrypoint", "sleep", BASE, "infinity"], check=True, capture_output=True)
    subprocess.run(["docker", "rm", "-f", name], check=True, capture_output=True)


def main() -> int:
    engine.ensure_engine()
    images.ensure_image(BASE)
    ours, stock = bench_checks()
    print("runner benchmark (medians; measured side by side in this run)")
    print(f"  per check: session backend {ours * 1000:6.1f} ms, stock docker:// {stock * 1000:6.1f} ms"
          f"  -> {stock / ours:4.1f}x lower (target >= 10x)")

    with tempfile.TemporaryDirectory(prefix="opslabs-bench-") as tmp:
        write_kb(Path(tmp) / "labs", salt=str(time.time_ns()))
        catalog = load_catalog(Path(tmp) / "labs")
        minimal, with_setup = catalog.find_lab("minimal"), catalog.find_lab("with-setup")
        bare_run()
        bare = statistics.median(timed(bare_run) for _ in range(ROUNDS))
        lab = statistics.median(timed(lambda: run_lab(minimal)) for _ in range(ROUNDS))
        print(f"  per lab:   one-host lab {lab:5.2f} s, bare docker run + rm {bare:5.2f} s"
              f"  -> {lab - bare:+.2f} s framework overhead (target < 1 s)")

        cold = timed(lambda: run_lab(with_setup))
        warm = statistics.median(timed(lambda: run_lab(with_setup)) for _ in range(3))
        print(f"  setup cache: first run {cold:5.1f} s (builds the layer), second {warm:5.2f} s  -> {cold / warm:4.1f}x faster")

        def start_and_stop():
            workshop.start(with_setup, lambda message: None)

        starts = []
        for _ in range(3):
            starts.append(timed(start_and_stop))
            workshop.stop("with-setup")
        print(f"  workshop start (warm cache): {statistics.median(starts):5.2f} s vs bare docker run + rm {bare:5.2f} s")
    return 0 if stock / ours >= 10 and lab - bare < 1 else 2


if __name__ == "__main__":
    sys.exit(main())
