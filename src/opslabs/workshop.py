"""Learner commands: start, shell, check, solve, status, stop, prepare.

A workshop lab outlives the command that started it. Everything about it is found
again through labels (kind=workshop, lab=ID), and its progress lives in a file inside
its first host, so a learner can close the terminal and come back.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from typing import Callable

from opslabs import engine, images
from opslabs.catalog import TaskEntry
from opslabs.errors import UserError
from opslabs.runner import CheckResult, LabEnvironment, SolutionError, run_checks, run_solution, skip_reason

KIND = "workshop"
PROGRESS_FILE = "/var/lib/opslabs/progress.json"
Say = Callable[[str], None]


@dataclass
class Progress:
    done: list[int]  # 1-based step numbers
    total: int

    @property
    def current(self) -> int | None:
        """The first step not done yet, or None when the lab is complete."""
        return next((n for n in range(1, self.total + 1) if n not in self.done), None)


@dataclass
class CheckReport:
    step: int
    passed: bool
    checks: list[CheckResult]


def running_labs() -> dict[str, str]:
    """{lab id: run id} of the workshop labs on this engine."""
    found = {}
    for container in engine.find("container", {"kind": KIND}):
        found[container[f"{engine.LABEL}.lab"]] = container[f"{engine.LABEL}.run"]
    return found


def attach(entry: TaskEntry) -> LabEnvironment:
    engine.ensure_engine()
    run_id = running_labs().get(entry.id)
    if run_id is None:
        raise UserError(f"lab {entry.id} is not running; start it with `opslabs start {entry.id}`")
    return LabEnvironment(entry, kind=KIND, run_id=run_id)


def start(entry: TaskEntry, say: Say) -> LabEnvironment:
    reason = skip_reason(entry.task.lab)
    if reason:
        raise UserError(f"lab {entry.id} cannot run here: it {reason}")
    engine.ensure_engine()
    if entry.id in running_labs():
        running = {c[f"{engine.LABEL}.host"] for c in engine.find("container", {"kind": KIND, "lab": entry.id})}
        missing = sorted(set(entry.task.lab.hosts) - running)
        if missing:  # a start that was killed half-way
            raise UserError(f"lab {entry.id} is only half started (missing: {', '.join(missing)}): `opslabs stop {entry.id}`, then start it again")
        raise UserError(f"lab {entry.id} is already running: `opslabs shell {entry.id}` to work in it, `opslabs stop {entry.id}` to remove it")
    env = LabEnvironment(entry, kind=KIND, on_progress=say)
    env.provision()
    try:
        save_progress(env, Progress([], len(entry.task.lab.steps)))
    except BaseException:
        env.teardown()
        raise
    finally:
        env.close_sessions()
    return env


def progress_host(entry: TaskEntry) -> str:
    return next(iter(entry.task.lab.hosts))


def load_progress(env: LabEnvironment) -> Progress:
    total = len(env.lab.steps)
    result = env.session(progress_host(env.entry)).run(f"cat {PROGRESS_FILE} 2>/dev/null", timeout=30, subshell=True)
    try:
        done = [int(n) for n in json.loads(result.stdout)["done"] if 1 <= int(n) <= total]
    except (ValueError, KeyError, TypeError):
        done = []
    return Progress(sorted(set(done)), total)


def save_progress(env: LabEnvironment, progress: Progress) -> None:
    payload = shlex.quote(json.dumps({"done": progress.done}))
    command = f"mkdir -p {os.path.dirname(PROGRESS_FILE)} && printf '%s\\n' {payload} > {PROGRESS_FILE}"
    result = env.session(progress_host(env.entry)).run(command, timeout=30, subshell=True)
    if not result.succeeded:
        raise UserError(f"could not save progress in host {progress_host(env.entry)}: {result.tail()}")


def choose_step(progress: Progress, step: int | None, entry: TaskEntry) -> int:
    if step is None:
        if progress.current is None:
            raise UserError(f"every step of {entry.id} is done; `opslabs stop {entry.id}` removes the lab")
        return progress.current
    if not 1 <= step <= progress.total:
        raise UserError(f"lab {entry.id} has steps 1 to {progress.total}, not {step}")
    return step


def check(entry: TaskEntry, step: int | None = None) -> tuple[CheckReport, Progress]:
    env = attach(entry)
    try:
        progress = load_progress(env)
        number = choose_step(progress, step, entry)
        results = run_checks(env, env.lab.steps[number - 1])
        passed = all(r.passed for r in results)
        if passed and number not in progress.done:
            progress.done = sorted({*progress.done, number})
            save_progress(env, progress)
        return CheckReport(number, passed, results), progress
    finally:
        env.close_sessions()


def solve(entry: TaskEntry, step: int | None = None) -> tuple[CheckReport, Progress]:
    env = attach(entry)
    try:
        number = choose_step(load_progress(env), step, entry)
        try:
            run_solution(env, env.lab.steps[number - 1], f"lab {entry.id}, step {number}")
        except SolutionError as err:
            raise UserError(str(err)) from None
    finally:
        env.close_sessions()
    return check(entry, number)


def status() -> list[dict]:
    """Running workshop labs with their hosts (progress is read by the caller per lab)."""
    labs: dict[str, dict] = {}
    for container in engine.find("container", {"kind": KIND}):
        lab = labs.setdefault(container[f"{engine.LABEL}.lab"], {"lab": container[f"{engine.LABEL}.lab"], "hosts": []})
        lab["hosts"].append(container[f"{engine.LABEL}.host"])
    return sorted(labs.values(), key=lambda lab: lab["lab"])


def stop(lab_id: str | None) -> tuple[list[str], list[str]]:
    filters = {"kind": KIND, **({"lab": lab_id} if lab_id else {})}
    containers = [c["name"] for c in engine.find("container", filters)]
    networks = [n["name"] for n in engine.find("network", filters)]
    engine.remove_containers(containers)
    engine.remove_networks(networks)
    return containers, networks


def shell_command(entry: TaskEntry, host: str | None) -> list[str]:
    env = attach(entry)
    host = host or progress_host(entry)
    if host not in env.containers:
        raise UserError(f"lab {entry.id} has no host {host!r}; its hosts are {', '.join(env.containers)}")
    login = "cd ~; command -v bash >/dev/null 2>&1 && exec bash -l || exec sh -l"
    return ["docker", "exec", "--interactive", "--tty", "--env", "TERM=" + os.environ.get("TERM", "xterm"),
            env.containers[host], "sh", "-c", login]


def prepare(entries: list[TaskEntry], say: Say) -> None:
    """Build every image the labs need now, so the workshop runs without a network."""
    for entry in entries:
        for name, host in entry.task.lab.hosts.items():
            say(f"{entry.id}/{name}: preparing {host.image}" + (" with its setup (first time takes a while)" if host.setup else ""))
            _, built = images.setup_image(host, name, entry.id, f"prep{os.getpid()}")
            say(f"{entry.id}/{name}: {'built' if built else 'already cached'}")
