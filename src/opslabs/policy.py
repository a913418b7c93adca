"""What a lab file may ask of the machine, decided by the operator, never by the lab.

A lab arriving in a pull request runs in CI, and a trainer runs labs that others wrote,
so a lab's host may not ask for `privileged`, for capabilities outside a short allowlist,
or for more memory or processes than the operator's maxima. The operator raises these
limits with command-line flags (`--allow-privileged`, `--allow-cap`, `--max-memory`,
`--max-pids`); `check_host` turns every excess into a message that names the flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Capabilities a lab may add without the operator's flag. Every host already runs with
# engine.DEFAULT_CAPS; these are Docker's own defaults that opslabs drops unless asked
# (AUDIT_WRITE for sshd/PAM, NET_RAW for ping/tcpdump, MKNOD, SETFCAP), plus NET_ADMIN,
# which acts only on the lab's own network namespace (firewall rules, routes): the
# nftables labs need it. Everything else (SYS_ADMIN, SYS_PTRACE, SYS_MODULE, ALL, ...)
# reaches beyond the container and needs `--allow-cap NAME`.
ALLOWED_CAPS = frozenset({"AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "NET_ADMIN"})

DEFAULT_MAX_MEMORY = "2g"
DEFAULT_MAX_PIDS = 4096
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker's minimum; 0 would mean "no limit at all"

_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(size: str) -> int:
    """`768m` -> bytes; the model's pattern (digits and one of k, m, g) is assumed."""
    match = re.fullmatch(r"([0-9]+)([kmgKMG])", size.strip())
    if match is None:
        raise ValueError(f"expected a size such as 512m or 2g, got {size!r}")
    return int(match[1]) * _UNITS[match[2].lower()]


def normalize_cap(name: str) -> str:
    """Docker accepts SYS_ADMIN, CAP_SYS_ADMIN and sys_admin alike: compare one spelling."""
    name = name.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


@dataclass(frozen=True)
class Policy:
    allow_privileged: bool = False
    allow_caps: frozenset[str] = frozenset()  # beyond ALLOWED_CAPS; "ALL" allows every one
    max_memory: str = DEFAULT_MAX_MEMORY
    max_pids: int = DEFAULT_MAX_PIDS

    def __post_init__(self) -> None:
        memory_bytes(self.max_memory)  # a bad operator value fails at once, not per lab
        object.__setattr__(self, "allow_caps", frozenset(normalize_cap(c) for c in self.allow_caps))

    def cap_allowed(self, cap: str) -> bool:
        cap = normalize_cap(cap)
        if "ALL" in self.allow_caps:
            return True
        return cap in self.allow_caps or (cap != "ALL" and cap in ALLOWED_CAPS)

    def check_host(self, privileged: bool, cap_add: list[str], memory: str, pids: int) -> list[tuple[str, str]]:
        """[(field, message)] for everything the host asks beyond this policy."""
        refused: list[tuple[str, str]] = []
        if privileged and not self.allow_privileged:
            refused.append(("privileged", "a privileged host is root on the machine that runs the lab; "
                                          "refused unless the operator passes --allow-privileged"))
        for i, cap in enumerate(cap_add):
            if not self.cap_allowed(cap):
                allowed = ", ".join(sorted(ALLOWED_CAPS))
                what = "every capability" if normalize_cap(cap) == "ALL" else f"capability {normalize_cap(cap)}"
                refused.append((f"cap_add.{i}", f"{what} is refused unless the operator passes --allow-cap "
                                                f"{normalize_cap(cap)} (a lab may add: {allowed})"))
        size = memory_bytes(memory)
        if size < MIN_MEMORY_BYTES:
            refused.append(("memory", f"expected at least 6m, got {memory} (0 would mean no limit)"))
        elif size > memory_bytes(self.max_memory):
            refused.append(("memory", f"{memory} is above the operator's maximum of {self.max_memory}; "
                                      f"refused unless the operator passes --max-memory {memory} (or more)"))
        if pids > self.max_pids:
            refused.append(("pids", f"{pids} is above the operator's maximum of {self.max_pids}; "
                                    f"refused unless the operator passes --max-pids {pids} (or more)"))
        return refused

    def pytest_args(self) -> list[str]:
        """The same policy as options of the pytest plugin (`opslabs verify` runs pytest)."""
        args = ["--opslabs-max-memory", self.max_memory, "--opslabs-max-pids", str(self.max_pids)]
        if self.allow_privileged:
            args.append("--opslabs-allow-privileged")
        for cap in sorted(self.allow_caps):
            args += ["--opslabs-allow-cap", cap]
        return args


DEFAULT_POLICY = Policy()
