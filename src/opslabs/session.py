"""One persistent shell per host, like a learner's terminal.

A `docker exec -i` process runs a shell; each command is sent base64-encoded and
followed by a marker carrying its exit code, so `cd`, variables and functions carry
over between commands while every command still gets its own exit code, stdout,
stderr and timeout.
"""

from __future__ import annotations

import base64
import queue
import secrets
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from opslabs import engine
from opslabs.errors import OpslabsError

DEFAULT_TIMEOUT = 300.0
SESSION_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8", "PAGER": "cat", "TERM": "dumb"}
# bash where the image has it (a learner's shell), else POSIX sh.
SHELL_BOOTSTRAP = "command -v bash >/dev/null 2>&1 && exec bash --noprofile --norc; exec sh"


class SessionError(OpslabsError):
    pass


class ShellKilled(SessionError):
    """The shell was ended by a signal (e.g. `pkill bash`, `kill -9 -1` run inside the host)."""

    def __init__(self, container: str, signum: int):
        self.container, self.signum = container, signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = "an unknown signal"
        super().__init__(f"the shell on {container} was killed by signal {signum} ({name})")


class EngineLost(SessionError):
    """docker exec lost the engine: the Docker daemon stopped or became unreachable."""


# What the docker CLI says when no daemon answers at its socket.
ENGINE_GONE = ("Cannot connect to the Docker daemon", "error during connect", "Is the docker daemon running")

# Solution commands run like lines typed into a terminal (see `Session.run(terminal=True)`):
# a child bash reads the command text (lines after `exec bash` are read by the new shell),
# and at its exit writes its working directory and exported variables to a state file
# that the next solution command on this host starts from. BASH_ENV is sourced by every
# non-interactive bash; it acts only in the solution's own shell (same PID after `exec`).
TERMINAL_DIR = "/var/lib/opslabs/terminal"
TERMINAL_BASH_ENV = r"""if [ -z "${__OPSLABS_PID:-}" ]; then export __OPSLABS_PID=$$; fi
if [ "$__OPSLABS_PID" = "$$" ]; then
  set -eu
  __opslabs_save() {
    local rc=$? state=${__OPSLABS_STATE:-}
    unset BASH_ENV __OPSLABS_PID __OPSLABS_EXECED __OPSLABS_STATE SHLVL
    # One `if` block: a file cut short (a full disk) is a syntax error and changes nothing.
    if [ -n "$state" ]; then
      { echo 'if :; then'
        echo 'for __opslabs_v in $(compgen -e); do unset "$__opslabs_v" 2>/dev/null; done'
        printf 'cd -- %q 2>/dev/null\n' "$PWD"
        export -p
        echo 'fi'; } >"$state" 2>/dev/null || :
    fi
    exit "$rc"
  }
  trap __opslabs_save EXIT
  if [ -n "${__OPSLABS_EXECED:-}" ] && [ -e /proc/$$/fd/7 ]; then exec 0<&7 7<&-; fi
  export __OPSLABS_EXECED=1
fi
"""
TERMINAL_FUNCTION = r"""__opslabs_terminal() (
  __opslabs_d=%(dir)s
  [ -d "$__opslabs_d" ] || mkdir -p "$__opslabs_d" 2>/dev/null
  [ -w "$__opslabs_d" ] || { __opslabs_d=/tmp/.opslabs-terminal-$EUID; mkdir -p "$__opslabs_d"; }
  printf '%%s' %(env)s >"$__opslabs_d/bash_env" 2>/dev/null
  [ -r "$__opslabs_d/state" ] && . "$__opslabs_d/state" 2>/dev/null
  export BASH_ENV="$__opslabs_d/bash_env" __OPSLABS_STATE="$__opslabs_d/state"
  unset __OPSLABS_PID __OPSLABS_EXECED
  exec bash --noprofile --norc -eu /dev/fd/7 7< <(printf '%%s' "$__opslabs_cmd") </dev/null
)"""


class CommandTimeout(SessionError):
    def __init__(self, command: str, timeout: float, stdout: bytes, stderr: bytes):
        self.command, self.timeout = command, timeout
        self.stdout, self.stderr = stdout, stderr
        super().__init__(f"command did not finish within {timeout:g} s")


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout_bytes: bytes
    stderr_bytes: bytes
    duration: float

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8", "replace")

    @property
    def succeeded(self) -> bool:
        return self.exit_status == 0

    def tail(self, lines: int = 15) -> str:
        """The last lines of output, stderr after stdout, for failure messages."""
        text = "\n".join(part.rstrip() for part in (self.stdout, self.stderr) if part.strip())
        return "\n".join(text.splitlines()[-lines:])


class _Reader(threading.Thread):
    """Moves a pipe's bytes into a queue so reads can time out."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe, self.chunks = pipe, queue.Queue()

    def run(self) -> None:
        try:
            while chunk := self.pipe.read1(65536):
                self.chunks.put(chunk)
        except (OSError, ValueError):  # the pipe was closed under us
            pass
        self.chunks.put(b"")  # EOF


class Session:
    def __init__(self, container: str, env: dict[str, str] | None = None, user: str | None = None):
        self.container = container
        # The engine this shell runs on: later calls (inspect, kill) go there too, whatever context they run in.
        self.engine_url = engine.current_url()
        args = engine.cli("exec", "--interactive", url=self.engine_url)
        for key, value in {**SESSION_ENV, **(env or {})}.items():
            args += ["--env", f"{key}={value}"]
        if user:
            args += ["--user", user]
        args += [container, "sh", "-c", SHELL_BOOTSTRAP]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._out, self._err = _Reader(self._proc.stdout), _Reader(self._proc.stderr)
        self._out.start()
        self._err.start()
        self._lock = threading.Lock()
        self.alive = True
        self.bash, self.pid = False, None  # until the probe below says otherwise
        probe = self.run('echo "$$ ${BASH_VERSION:+bash}"', timeout=30).stdout.split()
        self.pid = int(probe[0])  # the shell leads its own process group inside the container
        self.bash = probe[1:] == ["bash"]
        if self.bash:
            self.run(TERMINAL_FUNCTION % {"dir": shlex.quote(TERMINAL_DIR), "env": shlex.quote(TERMINAL_BASH_ENV)}, timeout=30)

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT, subshell: bool = False, strict: bool = False,
            terminal: bool = False) -> CommandResult:
        """Run one command in the shell; `subshell` keeps it from changing the shell's state,
        `strict` runs it under `set -eu` (implies a subshell, so a failure cannot end the session).

        `terminal` runs it as a learner's terminal would (solutions): under `set -eu` in a
        child shell that starts in the working directory and with the exported variables the
        previous terminal command on this host ended with, and leaves its own for the next;
        lines after `exec bash` run in the new shell. Without bash it falls back to `strict`."""
        if not self.alive:
            raise SessionError(f"the shell on {self.container} has ended")
        token = secrets.token_hex(8)
        if self.bash:
            # bash reads a pipe byte by byte, so `read -N` takes the command text that
            # follows this line verbatim: no quoting, and no process spawned per command.
            # LC_ALL=C makes it count bytes whatever locale the host sets.
            data = command.encode("utf-8")
            body, payload = f"LC_ALL=C IFS= read -r -d '' -N {len(data)} __opslabs_cmd", command
        else:
            encoded = base64.b64encode(command.encode("utf-8")).decode("ascii")
            body, payload = '__opslabs_cmd=$(printf %s ' + encoded + ' | base64 -d)', ""
        if terminal and self.bash:
            run = "__opslabs_terminal"
        elif strict or terminal:
            run = '(set -eu; eval "$__opslabs_cmd") </dev/null'
        elif subshell:
            run = '(eval "$__opslabs_cmd") </dev/null'
        else:
            run = 'eval "$__opslabs_cmd" </dev/null'
        line = f"{body}; {run}; __opslabs_rc=$?; printf '\\n{token} %d\\n' \"$__opslabs_rc\"; printf '\\n{token}\\n' >&2\n"
        start = time.monotonic()
        with self._lock:
            try:
                self._proc.stdin.write(line.encode("ascii") + payload.encode("utf-8"))
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self.alive = False
                raise self._ended("has ended") from None
            stdout, stderr, rc = self._collect(token.encode(), command, start + timeout, timeout)
        return CommandResult(command, rc, stdout, stderr, time.monotonic() - start)

    def _collect(self, token: bytes, command: str, deadline: float, timeout: float) -> tuple[bytes, bytes, int]:
        out, err = bytearray(), bytearray()
        out_marker, err_marker = b"\n" + token + b" ", b"\n" + token + b"\n"
        rc: int | None = None
        err_done = False
        while rc is None or not err_done:
            if rc is None:
                rc = self._drain(self._out, out, out_marker, deadline, command, err, timeout)
                continue
            err_done = self._drain(self._err, err, err_marker, deadline, command, out, timeout) is not None
        out_text = bytes(out[: out.index(out_marker)])
        err_text = bytes(err[: err.index(err_marker)])
        return out_text, err_text, rc

    def _drain(self, reader: _Reader, buffer: bytearray, marker: bytes, deadline: float, command: str, other: bytearray, timeout: float) -> int | None:
        """Read one chunk; return the exit code (or 0 for stderr) once the marker is complete."""
        position = buffer.find(marker)
        if position >= 0:
            if marker.endswith(b"\n"):  # the stderr marker carries no exit code
                return 0
            end = buffer.find(b"\n", position + len(marker))
            if end >= 0:
                return int(bytes(buffer[position + len(marker): end]))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.kill_running_command()
            self.close(kill=True)
            raise CommandTimeout(command, timeout, bytes(buffer), bytes(other))
        try:
            chunk = reader.chunks.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            return None
        if chunk == b"":
            self.alive = False
            raise self._ended("ended while running a command")
        buffer += chunk
        return None

    def _ended(self, how: str) -> SessionError:
        """Why the shell is gone: killed by a signal, the engine lost, or docker exec's own words."""
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        said = bytearray()
        while not self._err.chunks.empty():
            said += self._err.chunks.get_nowait()
        text = said.decode("utf-8", "replace").strip().splitlines()[-3:]
        words = " ".join(text)
        if any(sign in words for sign in ENGINE_GONE):
            return EngineLost(f"the Docker engine stopped answering while the shell on {self.container} was open: {words}")
        # docker exec reports a process ended by signal N as 128+N, with nothing on stderr:
        # a command inside killed the shell, unless the container itself went away.
        if code is not None and 128 < code <= 128 + 64 and not text:
            state = self._container_state()
            if state == "running":
                return ShellKilled(self.container, code - 128)
            if any(sign in state for sign in ENGINE_GONE):
                return EngineLost(f"the Docker engine stopped answering while the shell on {self.container} was open: {state}")
            text = [f"the container no longer runs ({state})"]
            words = text[0]
        why = f"docker exec exited with {code}" + (f": {words}" if text else " (did the command call `exit`?)")
        return SessionError(f"the shell on {self.container} {how}: {why}")

    def _container_state(self) -> str:
        """`running`, another state, or docker's words about why it cannot say."""
        try:
            proc = subprocess.run(engine.cli("inspect", "--format", "{{.State.Status}}", self.container, url=self.engine_url),
                                  capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"docker inspect failed: {err}"
        said = (proc.stdout if proc.returncode == 0 else proc.stderr).decode("utf-8", "replace").strip()
        return said.splitlines()[-1] if said else "unknown"

    @property
    def usable(self) -> bool:
        """False once the shell is known to be gone (e.g. `pkill bash` in another shell killed it too)."""
        return self.alive and self._proc.poll() is None

    def kill_running_command(self) -> None:
        """Stop what a timed-out command left running in the container, not only our client."""
        if self.pid:
            try:
                subprocess.run(engine.cli("exec", self.container, "sh", "-c", f"kill -KILL -{self.pid}", url=self.engine_url),
                               capture_output=True, timeout=15, check=False)
            except subprocess.TimeoutExpired:
                pass  # the container is torn down anyway when the lab ends

    def close(self, kill: bool = False) -> None:
        self.alive = False
        if self._proc.poll() is None:
            try:
                if kill:
                    self._proc.kill()
                else:
                    self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
        for pipe in (self._proc.stdout, self._proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines()) or prefix + "(no output)"


def run_required(session: Session, command: str, timeout: float, what: str, error: type[Exception]) -> CommandResult:
    """Run a command that must succeed (setup, start); raise `error` saying what failed and why."""
    try:
        result = session.run(command, timeout=timeout, strict=True)
    except SessionError as err:
        raise error(f"{what} failed: {err}\n  command: {command}") from None
    if not result.succeeded:
        raise error(f"{what} exited with {result.exit_status}\n  command: {command}\n  last output:\n{indent(result.tail())}")
    return result
