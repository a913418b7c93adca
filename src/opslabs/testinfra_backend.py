"""A testinfra backend that runs commands through an opslabs Session.

Stock `docker://` spawns a `docker exec` per command (about 100 ms); the session
reuses one shell (a few ms). Commands run in a subshell, so a check can never
change the state of the shell it borrows.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

import testinfra.host
from testinfra.backend.base import BaseBackend, CommandResult

from opslabs.session import CommandTimeout, Session

CHECK_COMMAND_TIMEOUT = 60.0


class SessionBackend(BaseBackend):
    NAME = "opslabs"

    def __init__(self, session: Session, hostname: str, timeout: float = CHECK_COMMAND_TIMEOUT, **kwargs: Any):
        self.session = session
        self.timeout = timeout
        self.deadline: float | None = None  # set by time_limit()
        super().__init__(hostname, **kwargs)

    @contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """Every command run inside shares one budget (one attempt of a check may run several)."""
        self.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self.deadline = None

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        cmd = self.get_command(command, *args)
        timeout = self.timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                raise CommandTimeout(cmd, 0, b"", b"")
        result = self.session.run(cmd, timeout=timeout, subshell=True)
        return self.result(result.exit_status, self.encode(cmd), result.stdout_bytes, result.stderr_bytes)

    def get_encoding(self) -> str:
        return "utf-8"

    def decode(self, data: bytes) -> str:
        # A check is judged by what it declares; output that is not UTF-8 must not make it fail.
        return data.decode("utf-8", "replace")


def session_host(session: Session, hostname: str) -> testinfra.host.Host:
    backend = SessionBackend(session, hostname)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host
