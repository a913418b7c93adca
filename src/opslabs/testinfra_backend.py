"""A testinfra backend that runs commands through an opslabs Session.

Stock `docker://` spawns a `docker exec` per command (about 100 ms); the session
reuses one shell (a few ms). Commands run in a subshell, so a check can never
change the state of the shell it borrows.
"""

from __future__ import annotations

from typing import Any

import testinfra.host
from testinfra.backend.base import BaseBackend, CommandResult

from opslabs.session import Session

CHECK_COMMAND_TIMEOUT = 60.0


class SessionBackend(BaseBackend):
    NAME = "opslabs"

    def __init__(self, session: Session, hostname: str, timeout: float = CHECK_COMMAND_TIMEOUT, **kwargs: Any):
        self.session = session
        self.timeout = timeout
        super().__init__(hostname, **kwargs)

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        cmd = self.get_command(command, *args)
        result = self.session.run(cmd, timeout=self.timeout, subshell=True)
        return self.result(result.exit_status, self.encode(cmd), result.stdout_bytes, result.stderr_bytes)

    def get_encoding(self) -> str:
        return "utf-8"


def session_host(session: Session, hostname: str) -> testinfra.host.Host:
    backend = SessionBackend(session, hostname)
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host
