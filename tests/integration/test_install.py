"""From a clean clone: `pip wheel .`, the wheel installed in a fresh virtualenv elsewhere,
`opslabs new demo`, then the demo's README commands (`make serve`, `make test`), its pre-commit
hook, and its workflow's pull-request jobs run by act. Network: PyPI and npm only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOW = ".github/workflows/verify.yml"
TIMINGS: dict[str, float] = {}


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: none of this run's make, virtualenv or Makefile variables.
    pip skips byte-compiling what it installs (PIP_COMPILE=0: Python compiles on first import
    instead); its cache is the user's, as on a developer's machine."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV", "VENV", "PORT", "SHARD", "SHARDS", "BASELINE", "PYTHON"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PIP_COMPILE"] = "0"
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    return env


def run(cmd: list[str], cwd: Path, timeout: float, what: str, **kwargs) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=clean_env(), **kwargs)
    TIMINGS[what] = time.monotonic() - started
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("install")
    yield path
    sys.stderr.write("\n" + "\n".join(f"  {what}: {seconds:.1f} s" for what, seconds in TIMINGS.items()) + "\n")


@pytest.fixture(scope="module")
def wheel(work) -> Path:
    clone = work / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=300)
    tracked = subprocess.run(["git", "ls-files"], cwd=clone, capture_output=True, text=True, check=True).stdout
    assert "node_modules/" not in tracked and "static/vendor/" not in tracked  # generated, never committed
    out = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", ".", "-w", str(out), "--no-deps", "--quiet"], clone, 900, "pip wheel . (clean clone)")
    (found,) = out.glob("opslabs-*.whl")
    return found


def test_wheel_carries_templates_assets_schemas_scaffold_and_browser_assets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"opslabs/templates/home.md.j2", "opslabs/templates/lab.md.j2", "opslabs/assets/opslabs.css",
                "opslabs/web/static/vendor/xterm.js", "opslabs/web/static/vendor/xterm.css",
                "opslabs/web/static/vendor/addon-fit.js", "opslabs/web/static/vendor/axe.min.js",
                "opslabs/scaffold/files/.github/workflows/verify.yml", "opslabs/scaffold/files/.gitignore",
                "opslabs/scaffold/files/.pre-commit-config.yaml", "opslabs/scaffold/files/Makefile",
                "opslabs/scaffold/files/labs/runbooks/archive-old-logs.yaml"}
    assert expected <= names, sorted(expected - names)
    assert any(n.startswith("opslabs/blocks/schemas/") and n.endswith(".json") for n in names)
    assert not [n for n in names if "node_modules" in n]


@pytest.fixture(scope="module")
def demo(work, wheel) -> Path:
    venv = work / "venv"
    # This run's pip installs into the new virtualenv (`pip --python`): no second pip to bootstrap.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work, 300, "python -m venv")
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", str(wheel)],
        work, 1800, "pip install WHEEL (fresh venv)")
    result = run([str(venv / "bin" / "opslabs"), "new", "demo"], work, 120, "opslabs new demo")
    assert "make serve" in result.stdout
    demo = work / "demo"
    assert str(wheel) in (demo / "requirements.txt").read_text().splitlines()  # where it installs from
    return demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_serve_answers_on_its_port(demo):
    port = free_port()
    log = demo.parent / "serve.log"
    started = time.monotonic()
    with open(log, "w") as out:
        server = subprocess.Popen(["make", "serve", f"PORT={port}"], cwd=demo, stdout=out, stderr=subprocess.STDOUT,
                                  env=clean_env(), start_new_session=True)
    try:
        status, body = None, ""
        deadline = started + 1500  # the first `make serve` creates .venv and installs the wheel
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    status, body = response.status, response.read().decode()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        TIMINGS["make serve until HTTP 200"] = time.monotonic() - started
        assert status == 200, f"no answer on port {port}:\n{log.read_text()[-4000:]}"
        assert "Runbooks" in body and "Archive log files older than a week" in body
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(30)
    with pytest.raises(OSError):  # stopped: nothing answers on the port any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_make_test_verifies_the_example_lab(demo):
    result = run(["make", "test"], demo, 1800, "make test (demo)")
    assert "labs: 1 passed, 0 failed, 0 skipped" in result.stdout
    results = json.loads((demo / ".opslabs" / "results.json").read_text())
    assert [(r["id"], r["status"]) for r in results["labs"]] == [("archive-old-logs", "passed")]
    assert (demo / "site" / "runbooks" / "archive-old-logs" / "lab" / "index.html").exists()


def test_zensical_builds_the_demo_with_its_area_navigation(demo, tmp_path):
    """The scaffold follows this repository's layout: `opslabs render` (run by make) wrote the
    navigation that Zensical, which runs no plugins, reads through mkdocs.yml's INHERIT."""
    copy = tmp_path / "demo"
    shutil.copytree(demo, copy, ignore=shutil.ignore_patterns(".venv", "site"))
    run([str(BIN / "zensical"), "build"], copy, 300, "zensical build (demo)")
    home = (copy / "site" / "index.html").read_text()
    assert 'href="./runbooks/archive-old-logs/lab/"' in home


@pytest.fixture(scope="module")
def committed_demo(demo) -> Path:
    git = ["git", "-c", "user.name=opslabs test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", "init", "--quiet", "-b", "main"], cwd=demo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=demo, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "opslabs new demo"], cwd=demo, check=True)
    return demo


def test_pre_commit_hook_runs_opslabs_validate(committed_demo, tmp_path):
    pre_commit = [str(BIN / "pre-commit"), "run", "--all-files"]
    env = {**clean_env(), "PRE_COMMIT_HOME": str(tmp_path / "pre-commit")}
    ok = subprocess.run(pre_commit, cwd=committed_demo, capture_output=True, text=True, timeout=900, env=env)
    assert ok.returncode == 0 and "opslabs validate" in ok.stdout, ok.stdout + ok.stderr
    lab = committed_demo / "labs" / "runbooks" / "archive-old-logs.yaml"
    original = lab.read_text()
    lab.write_text(original.replace("level: beginner", "level: expert"))
    try:
        bad = subprocess.run(pre_commit, cwd=committed_demo, capture_output=True, text=True, timeout=900, env=env)
    finally:
        lab.write_text(original)
    assert bad.returncode != 0 and "archive-old-logs.yaml:4" in bad.stdout, bad.stdout + bad.stderr


def test_act_runs_the_pull_request_jobs(committed_demo, work):
    """The workflow's pull-request jobs, as GitHub would run them, on a clone of the demo.
    act fetches every action a job names before it runs any step, even a step that `if: !env.ACT`
    skips; each such action is replaced by a local stand-in that fails if it ever runs."""
    clone = work / "act-clone"
    subprocess.run(["git", "clone", "--quiet", str(committed_demo), str(clone)], check=True, timeout=120)
    stub = work / "stub-action"
    stub.mkdir()
    (stub / "action.yml").write_text(
        "name: stand-in\ndescription: an action act must skip\nruns:\n  using: composite\n  steps:\n"
        "    - run: echo 'STAND-IN ACTION RAN' >&2; exit 1\n      shell: bash\n")
    jobs = yaml.safe_load((clone / WORKFLOW).read_text())["jobs"]
    actions = sorted({s["uses"] for j in jobs.values() for s in j["steps"] if "uses" in s and not s["uses"].startswith("actions/checkout@")})
    cmd = [str(BIN / "act"), "pull_request", "-P", "ubuntu-latest=-self-hosted", "--no-cache-server", "--action-offline-mode"]
    for action in actions:
        cmd += ["--local-repository", f"{action}={stub}"]
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=clone, capture_output=True, text=True, timeout=1800, env=clean_env())
    TIMINGS["act pull_request (2 jobs)"] = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for job in ("Validate and build the site", "Verify changed labs"):
        assert any(line.startswith(f"[verify/{job}") and "Job succeeded" in line for line in output.splitlines()), job
    assert "1 areas, 1 tasks, 1 labs: valid" in output and "labs: 1 passed, 0 failed" in output
    assert "STAND-IN ACTION RAN" not in output and "git clone 'https://" not in output
    assert "Verify every lab" not in output and "Publish the site" not in output  # not pull-request jobs
