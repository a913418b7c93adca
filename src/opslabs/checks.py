"""Check kinds mapped onto testinfra modules: kind -> function(host, check) -> Outcome."""

from __future__ import annotations

import re
import shlex
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

from testinfra.host import Host

from opslabs import model
from opslabs.model import BaseCheck, check_kind
from opslabs.session import CommandTimeout, SessionError
from opslabs.testinfra_backend import CHECK_COMMAND_TIMEOUT


@dataclass(frozen=True)
class Outcome:
    passed: bool
    expected: str
    actual: str

    @classmethod
    def compare(cls, problems: list[tuple[str, str]], expected: str, actual: str = "as expected") -> "Outcome":
        """Passed when there are no problems; otherwise every (expected, actual) pair explains it."""
        if not problems:
            return cls(True, expected, actual)
        return cls(False, "; ".join(p[0] for p in problems), "; ".join(p[1] for p in problems))


CheckFunction = Callable[[Host, BaseCheck], Outcome]
REGISTRY: dict[str, CheckFunction] = {}


def register(kind: str) -> Callable[[CheckFunction], CheckFunction]:
    def decorate(function: CheckFunction) -> CheckFunction:
        REGISTRY[kind] = function
        return function

    return decorate


def evaluate(host: Host, check: BaseCheck, with_retries: bool = True, timeout: float = CHECK_COMMAND_TIMEOUT) -> Outcome:
    """Run a check, retrying while it fails (for state that settles); `timeout` bounds each attempt."""
    attempts = 1 + (check.retries if with_retries else 0)
    outcome = Outcome(False, check.describe(), "not run")
    time_limit = getattr(host.backend, "time_limit", None)
    for attempt in range(attempts):
        try:
            with time_limit(timeout) if time_limit else nullcontext():
                outcome = REGISTRY[check_kind(check)](host, check)
        except CommandTimeout:
            # The timed-out command's shell was killed with it: a retry would find no shell.
            return Outcome(False, check.describe(), f"the check did not finish within {timeout:g} s (its timeout)")
        except SessionError:
            raise  # the host itself is gone: not something a retry fixes
        except Exception as err:  # a module that cannot work here (e.g. `ss` missing) is a failed check
            outcome = Outcome(False, check.describe(), f"the check could not run: {err}")
        if outcome.passed or attempt == attempts - 1:
            break
        time.sleep(check.interval)
    return outcome


def _text_problems(text: str, what: str, contains=(), not_contains=(), matches=()) -> list[tuple[str, str]]:
    problems = []
    excerpt = _excerpt(text)
    problems += [(f"{what} contains {s!r}", f"it does not; {what}: {excerpt}") for s in contains if s not in text]
    problems += [(f"{what} does not contain {s!r}", f"it does; {what}: {excerpt}") for s in not_contains if s in text]
    problems += [(f"{what} matches /{p}/", f"no match; {what}: {excerpt}") for p in matches if not re.search(p, text, re.MULTILINE)]
    return problems


def _presence(check: BaseCheck, present: bool, what: str) -> Outcome | None:
    """The outcome when presence alone decides (it is absent, or absence is wanted); None to go on."""
    if not present:
        return Outcome(not check.exists, check.describe(), f"{what} does not exist")
    if not check.exists:
        return Outcome(False, check.describe(), f"{what} exists")
    return None


def _excerpt(text: str, limit: int = 300) -> str:
    text = text.strip()
    if not text:
        return "(empty)"
    return repr(text if len(text) <= limit else "…" + text[-limit:])


@register("file")
def check_file(host: Host, check: model.FileCheck) -> Outcome:
    f = host.file(check.file)
    if (decided := _presence(check, f.exists, check.file)) is not None:
        return decided
    problems: list[tuple[str, str]] = []
    if check.directory is not None and f.is_directory != check.directory:
        problems.append((f"a {'directory' if check.directory else 'file'}", "a directory" if f.is_directory else "not a directory"))
    if check.mode and f.mode != int(check.mode, 8):
        problems.append((f"mode {int(check.mode, 8):04o}", f"mode {f.mode:04o}"))
    if check.owner and f.user != check.owner:
        problems.append((f"owner {check.owner}", f"owner {f.user}"))
    if check.group and f.group != check.group:
        problems.append((f"group {check.group}", f"group {f.group}"))
    if check.contains or check.not_contains or check.matches:
        problems += _text_problems(f.content_string, "the file", check.contains, check.not_contains, check.matches)
    return Outcome.compare(problems, check.describe())


@register("package")
def check_package(host: Host, check: model.PackageCheck) -> Outcome:
    package = host.package(check.package)
    installed = package.is_installed
    if installed != check.installed:
        state = "installed" if installed else "not installed"
        return Outcome(False, check.describe(), f"package {check.package} is {state}")
    if installed and check.version and not package.version.startswith(check.version):
        return Outcome(False, check.describe(), f"version {package.version}")
    return Outcome(True, check.describe(), "as expected")


@register("service")
def check_service(host: Host, check: model.ServiceCheck) -> Outcome:
    running = host.service(check.service).is_running
    return Outcome(running == check.running, check.describe(), f"service {check.service} is {'running' if running else 'not running'}")


@register("port")
def check_port(host: Host, check: model.PortCheck) -> Outcome:
    listening = host.socket(f"{check.protocol}://{check.address}:{check.port}").is_listening
    if not listening and check.address == "0.0.0.0":  # a daemon bound to :: serves IPv4 too
        listening = host.socket(f"{check.protocol}://:::{check.port}").is_listening
    state = "listening" if listening else "not listening"
    return Outcome(listening == check.listening, check.describe(), f"port {check.port} is {state}")


@register("process")
def check_process(host: Host, check: model.ProcessCheck) -> Outcome:
    filters = {"comm": check.process}
    if check.user:
        filters["user"] = check.user
    found = host.process.filter(**filters)
    running = bool(found)
    return Outcome(running == check.running, check.describe(), f"{len(found)} matching process(es)")


@register("command")
def check_command(host: Host, check: model.CommandCheck) -> Outcome:
    result = host.run(check.command)  # stdout/stderr decoded as UTF-8 with replacement: any bytes are fine
    problems: list[tuple[str, str]] = []
    if result.rc != check.exit_status:
        output = _excerpt((result.stdout + result.stderr))
        problems.append((f"exit status {check.exit_status}", f"exit status {result.rc}; output: {output}"))
    problems += _text_problems(result.stdout, "stdout", check.stdout_contains, check.stdout_not_contains, check.stdout_matches)
    problems += _text_problems(result.stderr, "stderr", check.stderr_contains, (), check.stderr_matches)
    return Outcome.compare(problems, check.describe())


@register("http")
def check_http(host: Host, check: model.HttpCheck) -> Outcome:
    if not host.exists("curl"):
        return Outcome(False, check.describe(), f"curl is not installed on host {check.host}; the lab's setup must install it")
    # The status code comes last, on a line of its own, after the body.
    result = host.run(f"curl --silent --show-error --max-time 10 --write-out '\\n%{{http_code}}' {shlex.quote(check.http)}")
    if result.rc != 0:
        return Outcome(False, check.describe(), f"request failed: {result.stderr.strip() or f'curl exit {result.rc}'}")
    body, _, status_text = result.stdout.rpartition("\n")
    status = int(status_text.strip() or 0)
    problems: list[tuple[str, str]] = []
    if status != check.status:
        problems.append((f"HTTP status {check.status}", f"HTTP status {status}"))
    problems += _text_problems(body, "the body", check.body_contains, (), check.body_matches)
    return Outcome.compare(problems, check.describe())


@register("user")
def check_user(host: Host, check: model.UserCheck) -> Outcome:
    user = host.user(check.user)
    if (decided := _presence(check, user.exists, f"user {check.user}")) is not None:
        return decided
    problems: list[tuple[str, str]] = []
    if check.uid is not None and user.uid != check.uid:
        problems.append((f"uid {check.uid}", f"uid {user.uid}"))
    if check.home and user.home != check.home:
        problems.append((f"home {check.home}", f"home {user.home}"))
    if check.shell and user.shell != check.shell:
        problems.append((f"shell {check.shell}", f"shell {user.shell}"))
    groups = set(user.groups)
    problems += [(f"member of {g}", f"groups: {', '.join(sorted(groups))}") for g in check.groups if g not in groups]
    return Outcome.compare(problems, check.describe())


@register("group")
def check_group(host: Host, check: model.GroupCheck) -> Outcome:
    group = host.group(check.group)
    if (decided := _presence(check, group.exists, f"group {check.group}")) is not None:
        return decided
    if check.gid is not None and group.gid != check.gid:
        return Outcome(False, check.describe(), f"gid {group.gid}")
    return Outcome(True, check.describe(), "as expected")


assert set(REGISTRY) == set(model.CHECK_KINDS), "every check kind needs a function"
