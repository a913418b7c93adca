"""Learner commands: start, shell, check, solve, status, stop, prepare.

A workshop lab outlives the command that started it. Its containers and network are found
again through labels (kind=workshop, lab=ID, run=RUN), and its progress lives in the
progress store on the machine that runs opslabs (opslabs.store.progress), keyed by the run
id: a learner can close the terminal and come back, and a host that was removed by hand
can be recreated and the steps already done replayed on it.

The browser workshop (opslabs.web) runs the same lab for many learners at once: each
learner's containers also carry owner=LEARNER, and every function here takes that owner
("" is the CLI's own labs, which never see the browser learners' ones).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from opslabs import engine, images
from opslabs.catalog import TaskEntry
from opslabs.errors import UserError
from opslabs.model import Host
from opslabs.runner import CheckResult, LabEnvironment, SolutionError, run_checks, run_solution, skip_reason
from opslabs.session import SessionError
from opslabs.store.progress import ProgressStore

KIND = "workshop"
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


@dataclass
class RunningLab:
    """What the engine has of one workshop lab: its hosts' container states and its network."""

    lab: str
    run_id: str
    hosts: dict[str, str] = field(default_factory=dict)  # host -> container state
    network: bool = False
    owner: str = ""

    def problems(self, entry: TaskEntry | None) -> dict[str, str]:
        """{host: what is wrong}: removed (no container) or stopped (container not running)."""
        wanted = list(entry.task.lab.hosts) if entry else list(self.hosts)
        found = {}
        for host in wanted:
            state = self.hosts.get(host)
            if state is None:
                found[host] = "was removed"
            elif state != "running":
                found[host] = f"is {state}"
        return found


def running_runs() -> dict[str, RunningLab]:
    """{run id: RunningLab} of every workshop lab on this engine, whoever owns it."""
    runs: dict[str, RunningLab] = {}

    def of(item: dict[str, str]) -> RunningLab:
        run_id = item[f"{engine.LABEL}.run"]
        return runs.setdefault(run_id, RunningLab(item[f"{engine.LABEL}.lab"], run_id, owner=item.get(f"{engine.LABEL}.owner", "")))

    for container in engine.find("container", {"kind": KIND}):
        of(container).hosts[container[f"{engine.LABEL}.host"]] = container.get("state", "running")
    for network in engine.find("network", {"kind": KIND}):
        of(network).network = True
    return runs


def running_labs(owner: str = "") -> dict[str, RunningLab]:
    """{lab id: RunningLab} of one owner's workshop labs on this engine (found by container or network)."""
    return {run.lab: run for run in running_runs().values() if run.owner == owner}


def only_running_lab() -> str:
    """The lab a learner command means when it names none: the one that runs."""
    engine.ensure_engine()
    running = sorted(running_labs())
    if not running:
        raise UserError("no lab is running; `opslabs start LAB` starts one (`opslabs list` shows them)")
    if len(running) > 1:
        raise UserError(f"{len(running)} labs are running ({', '.join(running)}): name the one you mean")
    return running[0]


def broken_message(entry: TaskEntry, problems: dict[str, str]) -> str:
    what = "; ".join(f"host {host!r} {why}" for host, why in problems.items())
    return (f"lab {entry.id} is broken: {what}. `opslabs start {entry.id}` repairs it "
            "(recreates the host and replays the steps you finished on it)")


def attach(entry: TaskEntry, owner: str = "") -> LabEnvironment:
    """The running lab, whole: a lab with a removed or stopped host is refused with one sentence."""
    engine.ensure_engine()
    running = running_labs(owner).get(entry.id)
    if running is None:
        raise UserError(f"lab {entry.id} is not running; start it with `opslabs start {entry.id}`")
    problems = running.problems(entry)
    if problems:
        raise UserError(broken_message(entry, problems))
    return LabEnvironment(entry, kind=KIND, run_id=running.run_id, owner=owner)


def _host_went_away(entry: TaskEntry, err: SessionError, owner: str = "") -> UserError:
    """A host removed while a command ran: say so as `attach` would, not with the engine's words."""
    running = running_labs(owner).get(entry.id)
    problems = running.problems(entry) if running else {}
    if problems:
        return UserError(broken_message(entry, problems))
    raise err


def start(entry: TaskEntry, say: Say, reset: bool = False, store: ProgressStore | None = None,
          owner: str = "", run_id: str | None = None) -> tuple[LabEnvironment, list[str]]:
    """Start a lab, or repair a broken one. Returns the environment and what was repaired.

    run_id: a run whose containers are gone but whose progress the store kept (the browser
    workshop after a restart or an idle stop): it is recreated whole, the finished steps replayed.
    """
    reason = skip_reason(entry.task.lab)
    if reason:
        raise UserError(f"lab {entry.id} cannot run here: it {reason}")
    engine.ensure_engine()
    store = store or ProgressStore()
    if reset:
        stop(entry.id, store, owner=owner)
    running = running_labs(owner).get(entry.id)
    if running is None and run_id is not None and not reset and store.run(run_id):
        running = RunningLab(entry.id, run_id, owner=owner)  # nothing left of it: every host is recreated
    if running is not None:
        problems = running.problems(entry)
        if not problems:
            raise UserError(f"lab {entry.id} is already running: `opslabs shell {entry.id}` to work in it, `opslabs stop {entry.id}` to remove it")
        return repair(entry, running, problems, say, store), sorted(problems)
    env = LabEnvironment(entry, kind=KIND, on_progress=say, owner=owner, run_id=run_id)
    env.provision()
    try:
        store.begin(env.run_id, entry.id)
        env.set_online(env.lab.steps[0].online)
    except BaseException:
        env.teardown()
        raise
    finally:
        env.close_sessions()
    return env, []


def repair(entry: TaskEntry, running: RunningLab, problems: dict[str, str], say: Say, store: ProgressStore) -> LabEnvironment:
    """Bring back removed or stopped hosts; replay the finished steps' commands on recreated ones."""
    env = LabEnvironment(entry, kind=KIND, run_id=running.run_id, on_progress=say, owner=running.owner)
    try:
        if not running.network:
            engine.create_network(env.network, engine.labels(KIND, env.run_id, entry.id, owner=running.owner))
        recreated = []
        for name in problems:
            host = env.lab.hosts[name]
            if name in running.hosts:  # stopped (e.g. the engine restarted): its files are still there
                say(f"restarting host {name}")
                engine.docker("start", env.container_name(name), timeout=120)
            else:
                say(f"recreating host {name} from its cached setup")
                image, _ = images.setup_image(host, name, entry.id, env.run_id)
                engine.run_container(env._spec(name, host, image))
                recreated.append(name)
            env.session(name)
            env._start(name, host)  # services do not survive a restart
        done = [n for n in store.done(env.run_id) if 1 <= n <= len(env.lab.steps)] if store.run(env.run_id) else []
        # Step by step (not host by host): a later step's commands may rely on another host's earlier one.
        for number in done:
            step = env.lab.steps[number - 1]
            mine = [command for command in step.solution if command.host in recreated]
            if not mine:
                continue
            names = list(dict.fromkeys(command.host for command in mine))
            say(f"replaying step {number} on {', '.join(names)}")
            try:
                run_solution(env, step.model_copy(update={"solution": mine}), f"lab {entry.id}, step {number} ({step.title})")
            except SolutionError as err:
                name = next((n for n in names if f"on host {n!r}" in str(err)), names[0])
                raise UserError(
                    f"host {name!r} of lab {entry.id} was recreated, but replaying step {number} ({step.title}) on it failed:\n{err}\n"
                    f"Your progress is kept: fix the host by hand (`opslabs shell {entry.id} {name}`), "
                    f"or start the lab afresh with `opslabs start {entry.id} --reset` (progress is lost)."
                ) from None
        if not store.run(env.run_id):  # started by an opslabs that kept progress elsewhere
            store.begin(env.run_id, entry.id)
        if recreated and len(recreated) == len(env.lab.hosts):  # a whole lab: the network access of the step reached
            current = next((n for n in range(1, len(env.lab.steps) + 1) if n not in done), None)
            if current is not None:
                env.set_online(env.lab.steps[current - 1].online)
    finally:
        env.close_sessions()
    return env


def load_progress(env: LabEnvironment, store: ProgressStore | None = None) -> Progress:
    total = len(env.lab.steps)
    done = (store or ProgressStore()).done(env.run_id)
    return Progress(sorted({n for n in done if 1 <= n <= total}), total)


def choose_step(progress: Progress, step: int | None, entry: TaskEntry) -> int:
    if step is None:
        if progress.current is None:
            raise UserError(f"every step of {entry.id} is done; `opslabs stop {entry.id}` removes the lab")
        return progress.current
    if not 1 <= step <= progress.total:
        raise UserError(f"lab {entry.id} has steps 1 to {progress.total}, not {step}")
    return step


def check(entry: TaskEntry, step: int | None = None, store: ProgressStore | None = None, owner: str = "") -> tuple[CheckReport, Progress]:
    store = store or ProgressStore()
    env = attach(entry, owner)
    try:
        progress = load_progress(env, store)
        number = choose_step(progress, step, entry)
        try:
            results = run_checks(env, env.lab.steps[number - 1])
        except SessionError as err:
            raise _host_went_away(entry, err, owner) from None
        passed = all(r.passed for r in results)
        if passed and number not in progress.done:
            if not store.run(env.run_id):
                store.begin(env.run_id, entry.id)
            store.mark_done(env.run_id, number)
            progress.done = sorted({*progress.done, number})
            if progress.current is not None:  # the next step may teach installing, or no longer
                env.set_online(env.lab.steps[progress.current - 1].online)
        return CheckReport(number, passed, results), progress
    finally:
        env.close_sessions()


def solve(entry: TaskEntry, step: int | None = None, store: ProgressStore | None = None, owner: str = "") -> tuple[CheckReport, Progress]:
    store = store or ProgressStore()
    env = attach(entry, owner)
    try:
        number = choose_step(load_progress(env, store), step, entry)
        try:
            run_solution(env, env.lab.steps[number - 1], f"lab {entry.id}, step {number}")
        except SolutionError as err:
            raise UserError(str(err)) from None
        except SessionError as err:
            raise _host_went_away(entry, err, owner) from None
    finally:
        env.close_sessions()
    return check(entry, number, store, owner)


def status(owner: str = "") -> list[RunningLab]:
    """Running workshop labs, whole or broken (the caller reads progress and judges per lab)."""
    return sorted(running_labs(owner).values(), key=lambda lab: lab.lab)


def stop(lab_id: str | None, store: ProgressStore | None = None, owner: str | None = "",
         forget: bool = True) -> tuple[list[str], list[str]]:
    """Remove a lab's containers and network (every lab without lab_id) of one owner (every
    owner with None); forget its progress unless `forget` is False (an idle or server stop)."""
    filters = {"kind": KIND, **({"lab": lab_id} if lab_id else {})}
    mine = (lambda item: True) if owner is None else (lambda item: item.get(f"{engine.LABEL}.owner", "") == owner)
    found_containers = [c for c in engine.find("container", filters) if mine(c)]
    found_networks = [n for n in engine.find("network", filters) if mine(n)]
    containers = [c["name"] for c in found_containers]
    networks = [n["name"] for n in found_networks]
    engine.remove_containers(containers)
    engine.remove_networks(networks)
    runs = sorted({item[f"{engine.LABEL}.run"] for item in found_containers + found_networks})
    if runs and forget:
        (store or ProgressStore()).forget(runs)
    return containers, networks


def shell_command(entry: TaskEntry, host: str | None, owner: str = "") -> list[str]:
    env = attach(entry, owner)
    host = host or next(iter(entry.task.lab.hosts))
    if host not in env.containers:
        raise UserError(f"lab {entry.id} has no host {host!r}; its hosts are {', '.join(env.containers)}")
    login = "cd ~; command -v bash >/dev/null 2>&1 && exec bash -l || exec sh -l"
    return engine.cli("exec", "--interactive", "--tty", "--env", "TERM=" + os.environ.get("TERM", "xterm"),
                      env.containers[host], "sh", "-c", login)


@dataclass
class Prepared:
    """One image a lab host boots from, and what getting it ready took."""
    lab: str
    host: str
    built: bool  # False: it was cached already
    seconds: float


def layers(entries: list[TaskEntry]) -> list[tuple[TaskEntry, list[tuple[str, Host]]]]:
    """Per lab, the hosts whose image it must get ready: hosts with the same image and setup
    share one layer, which goes to the first lab that lists it."""
    seen: set[str] = set()
    plan = []
    for entry in entries:
        mine = []
        for name, host in entry.task.lab.hosts.items():
            images.ensure_image(host.image)
            key = images.setup_key(host) if host.setup or host.files else host.image
            if key not in seen:
                seen.add(key)
                mine.append((name, host))
        if mine:
            plan.append((entry, mine))
    return plan


def prepare(plan: list[tuple[TaskEntry, list[tuple[str, Host]]]], jobs: int = 1,
            begin: Callable[[TaskEntry], None] = lambda entry: None,
            end: Callable[[TaskEntry, list[Prepared]], None] = lambda entry, done: None) -> list[Prepared]:
    """Build every image the labs need now, `jobs` labs at a time (a build waits on downloads
    and dpkg as much as on the CPU), so the workshop later starts without a network."""
    def one(number: int, entry: TaskEntry, hosts: list[tuple[str, Host]]) -> list[Prepared]:
        begin(entry)
        done = []
        for name, host in hosts:
            started = time.monotonic()
            # A run id of its own: two labs' hosts may share a name, and build containers are named by both.
            _, built = images.setup_image(host, name, entry.id, f"prep{os.getpid()}x{number}")
            done.append(Prepared(entry.id, name, built, round(time.monotonic() - started, 1)))
        end(entry, done)
        return done

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="prepare")
    try:
        futures = [pool.submit(one, number, entry, hosts) for number, (entry, hosts) in enumerate(plan)]
        return [prepared for future in futures for prepared in future.result()]
    finally:  # a failed build or Ctrl-C: start no more, let the running ones clean up
        pool.shutdown(wait=True, cancel_futures=True)