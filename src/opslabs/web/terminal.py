"""A learner's terminal: `docker exec -it` on a pseudo-terminal of the server, bridged to a
websocket. The browser sends JSON text messages (input, resize); the server sends the
terminal's bytes as binary messages (UTF-8 decoding happens in xterm.js) and JSON text
messages for errors and the end of the shell."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import signal
import struct
import subprocess
import termios
from dataclasses import dataclass

MAX_MESSAGE = 64 * 1024  # one message from the browser; a paste larger than this is refused
MAX_SIZE = 1000  # columns or rows
LOGIN = "cd ~; command -v bash >/dev/null 2>&1 && exec bash -l || exec sh -l"


class BadMessage(ValueError):
    """A message from the browser that is not one of ours; the text says what was expected."""


@dataclass(frozen=True)
class Input:
    data: str


@dataclass(frozen=True)
class Resize:
    cols: int
    rows: int


def parse_message(raw: str | bytes) -> Input | Resize:
    """{"type": "input", "data": "ls\\r"} or {"type": "resize", "cols": 120, "rows": 30}."""
    if len(raw) > MAX_MESSAGE:
        raise BadMessage(f"message too large: {len(raw)} bytes, at most {MAX_MESSAGE} (paste less at a time)")
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadMessage(f"expected a JSON message, got invalid JSON ({err})") from None
    if not isinstance(message, dict) or message.get("type") not in ("input", "resize"):
        raise BadMessage('expected {"type": "input", "data": TEXT} or {"type": "resize", "cols": N, "rows": N}')
    if message["type"] == "input":
        if not isinstance(message.get("data"), str):
            raise BadMessage('an input message needs "data", a string')
        return Input(message["data"])
    cols, rows = message.get("cols"), message.get("rows")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIZE for v in (cols, rows)):
        raise BadMessage(f'a resize message needs "cols" and "rows", whole numbers from 1 to {MAX_SIZE}')
    return Resize(cols, rows)


# Ending the docker CLI does not end what it started in the container: the engine keeps the
# exec's shell. As closing a terminal does, SIGHUP goes to the shell's session (the exec's
# process is its session leader, found by the marker in its environment); a job the learner
# started with nohup or setsid keeps running, as it would.
HANGUP = r"""for p in /proc/[0-9]*; do
  tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx "OPSLABS_TERMINAL=$1" || continue
  s=$(cat "$p/stat" 2>/dev/null) || continue; s=${s##*) }; set -- "$1" $s
  [ "$5" = "${p#/proc/}" ] && leader=$5 && break
done
[ -n "${leader:-}" ] || exit 0
for p in /proc/[0-9]*; do
  s=$(cat "$p/stat" 2>/dev/null) || continue; s=${s##*) }; set -- x $s
  [ "$5" = "$leader" ] && kill -HUP "${p#/proc/}" 2>/dev/null
done
exit 0"""


def exec_command(container: str, marker: str) -> list[str]:
    return ["docker", "exec", "--interactive", "--tty", "--env", "TERM=xterm-256color", "--env", "LANG=C.UTF-8",
            "--env", "LC_ALL=C.UTF-8", "--env", f"OPSLABS_TERMINAL={marker}", container, "sh", "-c", LOGIN]


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyProcess:
    """`docker exec -it` with its stdin, stdout and stderr on a pseudo-terminal of ours.

    The docker CLI reads the terminal's size at start and again on SIGWINCH, and passes it to
    the engine, so a resize sets the size on the pty and signals the CLI."""

    def __init__(self, container: str, engine_url: str = "", cols: int = 80, rows: int = 24):
        self.container, self.marker = container, secrets.token_hex(8)
        self.size = (cols, rows)
        self.env = {**os.environ}
        if engine_url:
            self.env["DOCKER_HOST"] = engine_url
        self.master, slave = os.openpty()
        try:
            set_size(slave, cols, rows)
            self.proc = subprocess.Popen(exec_command(container, self.marker), stdin=slave, stdout=slave, stderr=slave,
                                         env=self.env, start_new_session=True, close_fds=True)
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(self.master, False)

    def resize(self, cols: int, rows: int) -> None:
        self.size = (cols, rows)
        try:
            set_size(self.master, cols, rows)
        except OSError:
            return  # closed meanwhile
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGWINCH)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.master, view)
            except BlockingIOError:
                import select

                select.select([], [self.master], [], 1.0)
                continue
            view = view[written:]

    def read(self) -> bytes | None:
        """What the terminal wrote so far; b"" when nothing is ready, None at its end."""
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return b""
        except OSError:  # EIO: every process on the slave side has gone
            return None
        return data or None

    def close(self) -> None:
        """End the terminal: hang up its shell in the container, then the docker CLI."""
        if self.proc.poll() is None:
            try:
                subprocess.run(["docker", "exec", self.container, "sh", "-c", HANGUP, "hangup", self.marker],
                               env=self.env, capture_output=True, timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass  # the container is gone, or the engine: nothing left to hang up
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)
        try:
            os.close(self.master)
        except OSError:
            pass
