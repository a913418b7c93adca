"""The knowledge-base model: areas, tasks and their labs.

Every model is frozen and forbids unknown keys, so a typo in a YAML file is an
error with a line number instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
)

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]
Text = Annotated[str, StringConstraints(min_length=1)]
AbsolutePath = Annotated[str, StringConstraints(pattern=r"^/")]


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as err:
        raise ValueError(f"not a valid regular expression: {err}") from None
    return pattern


Regex = Annotated[str, AfterValidator(_compiles)]
FileMode = Annotated[str, StringConstraints(pattern=r"^0?[0-7]{3,4}$")]
Duration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(m|h)$")]
Level = Literal["beginner", "intermediate", "advanced"]
Requirement = Literal["kubernetes", "systemd"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(Model):
    title: Text
    url: Annotated[str, StringConstraints(pattern=r"^https?://")]


# --- checks ---------------------------------------------------------------


class BaseCheck(Model):
    host: Id
    message: str | None = None
    retries: Annotated[int, Field(ge=0, le=120)] = 0
    interval: Annotated[float, Field(gt=0, le=60)] = 1.0
    precheck: bool = True  # False: this check may already pass before the solution
    timeout: Annotated[float, Field(gt=0, le=3600)] | None = None  # seconds per attempt; default: the step's check_timeout


class FileCheck(BaseCheck):
    file: AbsolutePath
    exists: bool = True
    directory: bool | None = None
    mode: FileMode | None = None
    owner: str | None = None
    group: str | None = None
    contains: list[str] = []
    not_contains: list[str] = []
    matches: list[Regex] = []

    def describe(self) -> str:
        if not self.exists:
            return f"`{self.file}` does not exist"
        parts = [f"`{self.file}` is a {'directory' if self.directory else 'file'}"
                 if self.directory is not None else f"`{self.file}` exists"]
        if self.mode:
            parts.append(f"has mode `{self.mode}`")
        if self.owner:
            parts.append(f"is owned by `{self.owner}`")
        if self.group:
            parts.append(f"belongs to group `{self.group}`")
        parts += [f"contains `{text}`" for text in self.contains]
        parts += [f"does not contain `{text}`" for text in self.not_contains]
        parts += [f"matches `{pattern}`" for pattern in self.matches]
        return join_clauses(parts)


class PackageCheck(BaseCheck):
    package: Text
    installed: bool = True
    version: str | None = None

    def describe(self) -> str:
        if not self.installed:
            return f"package `{self.package}` is not installed"
        version = f" (version {self.version}…)" if self.version else ""
        return f"package `{self.package}` is installed{version}"


class ServiceCheck(BaseCheck):
    service: Text
    running: bool = True

    def describe(self) -> str:
        return f"service `{self.service}` is {'running' if self.running else 'stopped'}"


class PortCheck(BaseCheck):
    port: Annotated[int, Field(ge=1, le=65535)]
    protocol: Literal["tcp", "udp"] = "tcp"
    address: str = "0.0.0.0"
    listening: bool = True

    def describe(self) -> str:
        state = "listening" if self.listening else "closed"
        return f"{self.protocol.upper()} port {self.port} is {state}"


class ProcessCheck(BaseCheck):
    process: Text
    user: str | None = None
    running: bool = True

    def describe(self) -> str:
        owner = f" as `{self.user}`" if self.user else ""
        return f"a `{self.process}` process is {'running' if self.running else 'not running'}{owner}"


class CommandCheck(BaseCheck):
    command: Text
    exit_status: int = 0
    stdout_contains: list[str] = []
    stdout_not_contains: list[str] = []
    stdout_matches: list[Regex] = []
    stderr_contains: list[str] = []
    stderr_matches: list[Regex] = []

    def describe(self) -> str:
        parts = [f"`{one_line(self.command)}` exits with {self.exit_status}"]
        parts += [f"prints `{text}`" for text in self.stdout_contains]
        parts += [f"does not print `{text}`" for text in self.stdout_not_contains]
        parts += [f"prints a line matching `{p}`" for p in self.stdout_matches]
        parts += [f"reports `{text}` on stderr" for text in self.stderr_contains]
        parts += [f"reports a match for `{p}` on stderr" for p in self.stderr_matches]
        return join_clauses(parts)


class HttpCheck(BaseCheck):
    http: Annotated[str, StringConstraints(pattern=r"^https?://")]
    status: Annotated[int, Field(ge=100, le=599)] = 200
    body_contains: list[str] = []
    body_matches: list[Regex] = []

    def describe(self) -> str:
        parts = [f"`{self.http}` answers {self.status}"]
        parts += [f"its body contains `{text}`" for text in self.body_contains]
        parts += [f"its body matches `{p}`" for p in self.body_matches]
        return join_clauses(parts)


class UserCheck(BaseCheck):
    user: Text
    exists: bool = True
    uid: int | None = None
    home: str | None = None
    shell: str | None = None
    groups: list[str] = []

    def describe(self) -> str:
        if not self.exists:
            return f"user `{self.user}` does not exist"
        parts = [f"user `{self.user}` exists"]
        if self.uid is not None:
            parts.append(f"has uid {self.uid}")
        if self.home:
            parts.append(f"has home `{self.home}`")
        if self.shell:
            parts.append(f"uses shell `{self.shell}`")
        parts += [f"is in group `{g}`" for g in self.groups]
        return join_clauses(parts)


class GroupCheck(BaseCheck):
    group: Text
    exists: bool = True
    gid: int | None = None

    def describe(self) -> str:
        if not self.exists:
            return f"group `{self.group}` does not exist"
        gid = f" with gid {self.gid}" if self.gid is not None else ""
        return f"group `{self.group}` exists{gid}"


CHECK_KINDS: dict[str, type[BaseCheck]] = {
    "file": FileCheck,
    "package": PackageCheck,
    "service": ServiceCheck,
    "port": PortCheck,
    "process": ProcessCheck,
    "command": CommandCheck,
    "http": HttpCheck,
    "user": UserCheck,
    "group": GroupCheck,
}


def check_kind(value: Any) -> str | None:
    """The kind of a check is the one kind key it carries, e.g. `file:` or `http:`."""
    if isinstance(value, BaseCheck):
        return next(k for k, cls in CHECK_KINDS.items() if isinstance(value, cls))
    if not isinstance(value, dict):
        return None
    present = [key for key in CHECK_KINDS if key in value]
    # "user"/"group" double as options of a file or process check, so prefer
    # the kind key that is not also an option of another present kind.
    if len(present) > 1:
        primary = [k for k in present if k not in ("user", "group")]
        present = primary or present
    return present[0] if len(present) == 1 else None


Check = Annotated[
    Union[tuple(Annotated[cls, Tag(kind)] for kind, cls in CHECK_KINDS.items())],
    Discriminator(
        check_kind,
        custom_error_type="check_kind",
        custom_error_message="a check needs exactly one kind key: " + ", ".join(CHECK_KINDS),
    ),
]


# --- labs -----------------------------------------------------------------


class HostFile(Model):
    path: AbsolutePath
    content: str
    mode: FileMode = "0644"


TMPFS_MAX_BYTES = 1 << 30  # a lab's small disk, not a place to store data; also charged to its memory limit
SYSTEM_DIRS = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sbin", "/sys", "/usr", "/var")


def _tmpfs_size(size: str) -> str:
    if int(size[:-1]) * {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[size[-1]] > TMPFS_MAX_BYTES:
        raise ValueError(f"a tmpfs may hold at most 1g, not {size}")
    return size


def _tmpfs_mount(path: str) -> str:
    clean = "/" + "/".join(part for part in path.split("/") if part)
    if clean in SYSTEM_DIRS or clean.startswith(("/proc/", "/sys/", "/dev/")):
        raise ValueError(f"a tmpfs cannot hide the system directory {clean}")
    return path


TmpfsMount = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]*$", max_length=200), AfterValidator(_tmpfs_mount)]
TmpfsSize = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,6}[kmg]$"), AfterValidator(_tmpfs_size)]


class Host(Model):
    image: Text = "debian:bookworm-slim"
    setup: list[Text] = []  # build time: cached as an image layer
    start: list[Text] = []  # every boot: daemons do not survive `docker commit`
    # TCP ports the start commands open. A daemon such as sshd returns before it listens, so
    # the lab waits until each port accepts a connection on the host before its first step.
    listens: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], Field(max_length=16)] = []
    files: list[HostFile] = []
    env: dict[str, str] = {}
    cap_add: list[Annotated[str, StringConstraints(pattern=r"^[A-Z_]+$")]] = []
    privileged: bool = False
    memory: Annotated[str, StringConstraints(pattern=r"^[0-9]+[kmg]$")] = "768m"
    pids: Annotated[int, Field(ge=64, le=65536)] = 2048
    # A CPU quota (docker --cpus), for a host that spins on purpose: `nice` inside a container
    # does not yield to other containers, each is its own cgroup. At most one core, so it is
    # valid on every machine; None: no quota.
    cpus: Annotated[float, Field(ge=0.05, le=1.0)] | None = None
    # Size-limited scratch disks, e.g. {"/data": "16m"}: a lab about a full disk fills one
    # of these, never the machine's disk.
    tmpfs: Annotated[dict[TmpfsMount, TmpfsSize], Field(max_length=4)] = {}


class SolutionCommand(Model):
    host: Id
    run: Text


class Step(Model):
    title: Text
    text: str = ""
    solution: Annotated[list[SolutionCommand], Field(min_length=1)]
    checks: Annotated[list[Check], Field(min_length=1)]
    hints: list[Text] = []
    timeout: Annotated[int, Field(ge=1, le=3600)] = 300  # seconds for each solution command
    check_timeout: Annotated[float, Field(gt=0, le=3600)] = 60  # seconds for each attempt of each check
    precheck: bool = True  # False: the checks may already pass before the solution
    # After setup a lab's hosts reach only each other; a step that teaches installing says so
    # here, and reaches the package registries while it runs (the page shows it).
    online: bool = False

    def timeout_of(self, check: BaseCheck) -> float:
        return check.timeout if check.timeout is not None else self.check_timeout


class Lab(Model):
    duration: Duration
    objectives: Annotated[list[Text], Field(min_length=1)]
    requires: list[Requirement] = []
    idempotent: bool = False
    hosts: Annotated[dict[Id, Host], Field(min_length=1)]
    steps: Annotated[list[Step], Field(min_length=1)]


# --- the knowledge base ---------------------------------------------------


class Area(Model):
    id: Id
    title: Text
    order: Annotated[int, Field(ge=0)]
    summary: Text
    icon: Annotated[str, StringConstraints(pattern=r"^(material|fontawesome|octicons|simple)/[a-z0-9/-]+$")] = "material/book-open-variant"
    overview: Text


class Task(Model):
    id: Id
    title: Text
    summary: Text
    level: Level
    tags: list[Id] = []
    order: Annotated[int, Field(ge=0)] = 100
    guide: Text
    references: list[Reference] = []
    lab: Lab | None = None


def one_line(command: str) -> str:
    first = command.strip().splitlines()[0] if command.strip() else ""
    return first + (" …" if "\n" in command.strip() else "")


def join_clauses(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
