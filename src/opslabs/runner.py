"""The verification protocol: provision a lab's hosts, then per step pre-check,
solution, post-check and (opt-in) idempotence. Returns plain result objects."""

from __future__ import annotations

import contextvars
import secrets
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

from opslabs import engine, images, live
from opslabs.catalog import TaskEntry
from opslabs.checks import evaluate
from opslabs.errors import OpslabsError
from opslabs.model import SolutionCommand, Host, Lab, Step, check_kind
from opslabs.session import CommandTimeout, EngineLost, Session, SessionError, indent, run_required
from opslabs.testinfra_backend import session_host

START_TIMEOUT = 180
# cgroup v2 prints `usage_usec N` among other lines, v1 one number of nanoseconds.
CPU_READ = "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null; true"
LISTEN_TIMEOUT = 60  # seconds for a started host to listen on each port it declares
UNAVAILABLE_REQUIREMENTS = {
    "kubernetes": "needs a Kubernetes cluster, which plain containers do not provide",
    "systemd": "needs systemd as PID 1, which opslabs containers do not run",
}


class LabSkipped(OpslabsError):
    """The lab cannot run here; the reason says why. Never counted as passed."""


class LabError(OpslabsError):
    """Provisioning failed (a host's setup or start command): the lab is broken."""


@dataclass
class CheckResult:
    index: int
    kind: str
    host: str
    description: str
    message: str
    passed: bool
    expected: str = ""
    actual: str = ""


@dataclass
class StepResult:
    index: int
    title: str
    status: str = "passed"  # passed | failed | skipped
    message: str = ""
    duration: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    guide_blocks: int = 0  # guide blocks run after the solution (run=HOST after=N) ...
    guide_seconds: float = 0.0  # ... and their time, reported apart from the lab's own

    def as_dict(self) -> dict:
        return asdict(self)


class StepFailed(OpslabsError):
    def __init__(self, result: StepResult):
        self.result = result
        super().__init__(result.message)


def new_run_id() -> str:
    return secrets.token_hex(4)


def skip_reason(lab: Lab) -> str | None:
    for requirement in lab.requires:
        if requirement in UNAVAILABLE_REQUIREMENTS:
            return f"requires {requirement}: {UNAVAILABLE_REQUIREMENTS[requirement]}"
    return None


class LabEnvironment:
    """A lab's network and hosts, each with a persistent session. Always torn down."""

    def __init__(self, entry: TaskEntry, kind: str = "run", run_id: str | None = None,
                 on_progress: Callable[[str], None] | None = None, owner: str = ""):
        assert entry.task.lab is not None
        self.entry, self.lab, self.kind = entry, entry.task.lab, kind
        self.owner = owner  # the browser workshop's learner, labelled on every container and network
        self.say = on_progress or (lambda message: live.note(entry.id, message))  # a verify board shows it
        self.run_id = run_id or new_run_id()
        self.network = f"opslabs-{entry.id}-{self.run_id}"
        self.sessions: dict[str, Session] = {}
        self.built: list[str] = []  # hosts whose setup layer had to be built (cache miss)
        self.oom_kills_seen: dict[str, int] = {}  # host -> its cgroup's oom_kill count last reported

    def container_name(self, host: str) -> str:
        return f"{self.network}-{host}"

    @property
    def containers(self) -> dict[str, str]:
        """{host: container name}: derived from the run id, so an attached lab knows them too."""
        return {host: self.container_name(host) for host in self.lab.hosts}

    def provision(self) -> "LabEnvironment":
        reason = skip_reason(self.lab)
        if reason:
            raise LabSkipped(reason)
        try:
            boot_images = {}
            for name, host in self.lab.hosts.items():
                if host.setup or host.files:
                    self.say(f"preparing host {name} (its setup is built once, then cached)")
                boot_images[name], built = images.setup_image(host, name, self.entry.id, self.run_id)
                if built:
                    self.built.append(name)
            engine.create_network(self.network, engine.labels(self.kind, self.run_id, self.entry.id, owner=self.owner))
            # The hosts start in parallel: each `docker run` is mostly waiting for the engine.
            # Each runs in a copy of this context, so all talk to this context's engine.
            specs = [self._spec(name, host, boot_images[name]) for name, host in self.lab.hosts.items()]
            with ThreadPoolExecutor(max_workers=len(specs)) as pool:
                started = [pool.submit(contextvars.copy_context().run, engine.run_container, spec) for spec in specs]
                for future in started:
                    future.result()  # the first failure is raised, once every start has ended
            for name, host in self.lab.hosts.items():
                self.sessions[name] = Session(self.container_name(name), env=host.env)
                if host.start:
                    self.say(f"starting services on {name}")
                self._start(name, host)
        except BaseException:
            self.teardown(quiet=True)  # the provisioning error is the one to report
            raise
        return self

    def _spec(self, name: str, host: Host, image: str) -> engine.ContainerSpec:
        return engine.ContainerSpec(
            name=self.container_name(name), image=image, hostname=name, network=self.network,
            labels=engine.labels(self.kind, self.run_id, self.entry.id, name, owner=self.owner),
            memory=host.memory, pids=host.pids, cap_add=tuple(host.cap_add),
            privileged=host.privileged, env=tuple(host.env.items()), tmpfs=tuple(host.tmpfs.items()),
            cpus=host.cpus,
        )

    def _start(self, name: str, host: Host) -> None:
        for command in host.start:
            run_required(self.sessions[name], command, START_TIMEOUT, f"lab {self.entry.id}: start command on host {name!r}", LabError)
        for port in host.listens:
            self.say(f"waiting for {name} to listen on TCP port {port}")
            probe = f"bash -c 'until (: </dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 0.05; done'"
            try:
                result = self.sessions[name].run(probe, timeout=LISTEN_TIMEOUT, strict=True)
            except CommandTimeout:
                raise LabError(f"lab {self.entry.id}: host {name!r} does not listen on TCP port {port} "
                               f"{LISTEN_TIMEOUT} s after its start commands (its `listens`)") from None
            except SessionError as err:
                raise LabError(f"lab {self.entry.id}: waiting for host {name!r} to listen on TCP port {port} failed: {err}") from None
            if not result.succeeded:
                raise LabError(f"lab {self.entry.id}: cannot wait for host {name!r} to listen on TCP port {port} "
                               f"(exit {result.exit_status}; the wait needs bash)\n  last output:\n{indent(result.tail())}")

    def set_online(self, online: bool) -> None:
        """Let every host reach the outside (a step that teaches installing), or cut it off again."""
        for container in self.containers.values():
            engine.set_online(container, online)

    def host(self, name: str):
        return session_host(self.session(name), name)

    def session(self, name: str) -> Session:
        session = self.sessions.get(name)
        if session is None or not session.usable:  # a timeout or a killed shell: open a fresh one
            session = self.sessions[name] = Session(self.container_name(name), env=self.lab.hosts[name].env)
        return session

    def cpu_seconds(self) -> float | None:
        """CPU time the lab's hosts have used so far (their cgroups, v2 or v1): with its duration,
        it tells a lab that mostly computes from one that mostly waits. None if unreadable."""
        total = 0.0
        for name in self.lab.hosts:
            try:
                out = self.session(name).run(CPU_READ, timeout=10, subshell=True).stdout
            except SessionError:
                return None
            words = out.split()
            usec = words[words.index("usage_usec") + 1] if "usage_usec" in words[:-1] else ""
            if usec.isdigit():
                total += int(usec) / 1e6
            elif len(words) == 1 and words[0].isdigit():
                total += int(words[0]) / 1e9
            else:
                return None
        return round(total, 2)

    def close_sessions(self) -> None:
        for session in self.sessions.values():
            session.close(kill=True)
        self.sessions.clear()

    def teardown(self, quiet: bool = False) -> None:
        self.close_sessions()
        try:
            engine.remove_containers(list(self.containers.values()))
            engine.remove_networks([self.network])
        except engine.DockerError:
            if not quiet:
                raise  # otherwise `opslabs gc` collects the rest by label

    def __enter__(self) -> "LabEnvironment":
        return self.provision()

    def __exit__(self, *exc) -> None:
        self.teardown()


def run_checks(env: LabEnvironment, step: Step, with_retries: bool = True, only_prechecks: bool = False) -> list[CheckResult]:
    """The step's checks in order, numbered as declared; `only_prechecks`: just those that must
    fail before the solution (a `precheck: false` check may pass then, so running it proves nothing)."""
    results = []
    for i, check in enumerate(step.checks, start=1):
        if only_prechecks and not check.precheck:
            continue
        outcome = evaluate(env.host(check.host), check, with_retries=with_retries, timeout=step.timeout_of(check))
        results.append(CheckResult(i, check_kind(check), check.host, check.describe(), check.message or "",
                                   outcome.passed, outcome.expected, outcome.actual))
    return results


def run_solution(env: LabEnvironment, step: Step, where: str, commands: list | None = None) -> None:
    """Run the step's solution commands as a terminal would (session.run terminal=True: each
    under `set -eu`, working directory and exported variables carried per host); raise
    SolutionError with a located message on failure. `commands` replaces the step's own
    (the guide's blocks marked to run after this step)."""
    for command in step.solution if commands is None else commands:
        try:
            result = env.session(command.host).run(command.run, timeout=step.timeout, terminal=True)
        except CommandTimeout as err:  # a SessionError too: handled first
            output = (err.stdout + err.stderr).decode("utf-8", "replace").strip().splitlines()[-10:]
            raise SolutionError(
                f"{where}: the solution on host {command.host!r} did not finish within {step.timeout} s\n"
                f"  command:\n{indent(command.run.strip(), '    | ')}\n  last output:\n{indent(chr(10).join(output))}"
            ) from None
        except SessionError as err:  # e.g. `pkill bash` killed the shell; the next command gets a fresh one
            if isinstance(err, EngineLost) or not engine.engine_answers():  # or the engine went away
                raise EngineLost(f"{where}: {err}") from None
            raise SolutionError(
                f"{where}: the solution on host {command.host!r} ended its shell: {err}\n"
                f"  command:\n{indent(command.run.strip(), '    | ')}"
            ) from None
        if not result.succeeded:
            raise SolutionError(
                f"{where}: the solution on host {command.host!r} {exit_reason(env, command.host, result.exit_status)}{disk_full_note(env, command.host, result)}\n"
                f"  command:\n{indent(command.run.strip(), '    | ')}\n  last output:\n{indent(result.tail())}"
            )


def guide_blocks_after(entry: TaskEntry, step_number: int) -> list:
    """The guide's blocks marked `run=HOST after=N` for this step: they run after its solution,
    then the step's checks judge their effect, so the page shows commands CI ran."""
    from opslabs.blocks.extract import blocks_of_task

    return [b for b in blocks_of_task(entry, []) if b.after == step_number and "from" not in b.fence.attrs]


def disk_full_note(env: LabEnvironment, host: str, result) -> str:
    """When a command failed for lack of space, say so (and which declared tmpfs is full)."""
    if b"No space left on device" not in result.stdout_bytes + result.stderr_bytes:
        return ""
    full = []
    for mount, size in env.lab.hosts[host].tmpfs.items():
        try:
            df = env.session(host).run(f"df -Pk {shlex.quote(mount)} | tail -n 1", timeout=30, subshell=True).stdout.split()
        except SessionError:
            continue
        if len(df) >= 4 and df[3] == "0":  # available KiB
            full.append(f"{mount} ({size} tmpfs) is full")
    return f": host {host!r} ran out of disk space" + (f" ({', '.join(full)})" if full else " (No space left on device)")


class SolutionError(OpslabsError):
    pass


def exit_reason(env: LabEnvironment, host: str, status: int) -> str:
    """`exited with N`, or, for a SIGKILL (137) after which the host's cgroup counts a new
    out-of-memory kill, that the kernel killed it for want of memory, with the limit."""
    if status == 137:
        kills = engine.oom_kills(env.container_name(host))
        if kills is not None and kills > env.oom_kills_seen.get(host, 0):
            env.oom_kills_seen[host] = kills
            return (f"was killed by the kernel for running out of memory: the host's memory limit is "
                    f"{env.lab.hosts[host].memory} (`memory:` of host {host}; exit status 137)")
    return f"exited with {status}"


def describe_check_failure(where: str, check: CheckResult, phase: str) -> str:
    text = f"{where}: check {check.index} ({check.kind} on host {check.host!r}) {phase}\n    {check.description}"
    if check.message:
        text += f"\n    message: {check.message}"
    if check.passed:  # proving nothing: there is no expected/actual difference to show
        return text
    return text + f"\n    expected: {check.expected}\n    actual:   {check.actual}"


def run_step(env: LabEnvironment, index: int) -> StepResult:
    """The protocol for one step. Raises StepFailed with a message that names lab, step, host and check."""
    step = env.lab.steps[index]
    where = f"lab {env.entry.id}, step {index + 1} ({step.title})"
    result = StepResult(index + 1, step.title)
    started = time.monotonic()
    try:
        if step.precheck:
            before = run_checks(env, step, with_retries=False, only_prechecks=True)
            proving_nothing = [c for c in before if c.passed]
            if proving_nothing:
                result.checks = before
                fail(result, "\n".join(describe_check_failure(where, c, "already passes before the solution, so it proves nothing") for c in proving_nothing))
        rounds = 2 if env.lab.idempotent else 1
        if step.online:
            env.set_online(True)
        for round_number in range(rounds):
            label = where if round_number == 0 else f"{where}, second run (idempotence)"
            try:
                run_solution(env, step, label)
                # The guide's blocks run once: the idempotence round is about the solution.
                for block in guide_blocks_after(env.entry, index + 1) if round_number == 0 else []:
                    block_started = time.monotonic()
                    try:
                        run_solution(env, step, f"{label}, guide block at {block.where}",
                                     [SolutionCommand(host=block.host, run=block.text)])
                    finally:
                        result.guide_blocks += 1
                        result.guide_seconds = round(result.guide_seconds + time.monotonic() - block_started, 3)
            except SolutionError as err:
                fail(result, str(err))
            result.checks = run_checks(env, step)
            failed = [c for c in result.checks if not c.passed]
            if failed:
                fail(result, "\n".join(describe_check_failure(label, c, "failed after the solution") for c in failed))
    finally:
        result.duration = round(time.monotonic() - started, 3)
        if step.online:
            try:
                env.set_online(False)
            except engine.DockerError:
                pass  # the hosts are going away with the lab anyway
    return result


def fail(result: StepResult, message: str) -> None:
    result.status, result.message = "failed", message
    raise StepFailed(result)
