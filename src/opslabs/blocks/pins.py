"""Package pins in the guides' shell blocks, compared with what PyPI, npm and Debian serve.

A pin that no longer resolves fails; a newer release is only reported (so an unchanged commit
does not turn red overnight); a registry that cannot be reached skips the pin with the reason.
Each registry is asked through its ordinary client as configured on this machine.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from opslabs.blocks.extract import Block

PIP_LINE = re.compile(r"\b(pip3?|pipx|uv\s+pip)\b[^\n]*\b(install|download)\b")
NPM_LINE = re.compile(r"\b(npm\s+(install|i|add)|npx|pnpm\s+add|yarn\s+add)\b")
APT_LINE = re.compile(r"\bapt(-get)?\b[^\n]*\binstall\b")
PIP_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\d[\w.+!-]*)$")
NPM_PIN = re.compile(r"^(@?[a-z0-9][\w.-]*(?:/[\w.-]+)?)@(\d[\w.+-]*)$")
APT_PIN = re.compile(r"^([a-z0-9][a-z0-9.+-]+)=(\d[\w.:~+-]*)$")
TIMEOUT = 60


@dataclass(frozen=True)
class Pin:
    registry: str  # pypi | npm | debian
    name: str
    version: str
    block: Block

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}" \
            if self.registry == "npm" else f"{self.name}={self.version}"


@dataclass(frozen=True)
class PinResult:
    pin: Pin
    status: str  # current | newer | missing | skipped
    detail: str = ""

    def as_dict(self) -> dict:
        return {"registry": self.pin.registry, "pin": self.pin.spec, "where": self.pin.block.where,
                "status": self.status, "detail": self.detail}


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def find_pins(blocks: list[Block]) -> list[Pin]:
    pins: list[Pin] = []
    for block in blocks:
        if block.language not in ("bash", "sh", "shell"):
            continue
        for line in block.text.replace("\\\n", " ").splitlines():
            for registry, line_pattern, pin_pattern in (("pypi", PIP_LINE, PIP_PIN), ("npm", NPM_LINE, NPM_PIN),
                                                        ("debian", APT_LINE, APT_PIN)):
                if not line_pattern.search(line):
                    continue
                for word in _words(line):
                    match = pin_pattern.match(word)
                    if match and "$" not in word:
                        pins.append(Pin(registry, match.group(1), match.group(2), block))
    return pins


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def available(registry: str, name: str) -> list[str]:
    """Versions the registry serves, newest first as the client lists them; raises OSError when unreachable."""
    try:
        if registry == "pypi":
            done = _run([sys.executable, "-m", "pip", "index", "versions", name])
            found = re.search(r"Available versions: (.*)", done.stdout)
            if found:
                return [v.strip() for v in found.group(1).split(",")]
            if "No matching distribution" in done.stderr:
                return []
            raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "pip gave no answer")
        if registry == "npm":
            done = _run(["npm", "view", name, "versions", "--json"])
            if done.returncode != 0:
                if "E404" in done.stderr or "404" in done.stdout:
                    return []
                raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "npm gave no answer")
            versions = json.loads(done.stdout or "[]")
            return list(reversed(versions if isinstance(versions, list) else [versions]))
        done = _run(["apt-cache", "madison", name])
        return [row.split("|")[1].strip() for row in done.stdout.splitlines() if row.count("|") >= 2]
    except FileNotFoundError as err:
        raise OSError(f"{err.filename} is not installed") from None
    except subprocess.TimeoutExpired:
        raise OSError(f"no answer within {TIMEOUT} s") from None


def check_pins(pins: list[Pin]) -> list[PinResult]:
    results, served = [], {}
    for pin in pins:
        key = (pin.registry, pin.name)
        if key not in served:
            try:
                served[key] = available(pin.registry, pin.name)
            except OSError as err:
                served[key] = err
        versions = served[key]
        if isinstance(versions, OSError):
            results.append(PinResult(pin, "skipped", f"{pin.registry} could not be reached: {versions}"))
        elif pin.registry == "debian" and not versions:
            results.append(PinResult(pin, "skipped", "not in Debian's archive (a third-party repository the guide adds)"))
        elif pin.version not in versions:
            results.append(PinResult(pin, "missing", f"{pin.registry} does not serve {pin.spec}"
                                     + (f" (it serves {', '.join(versions[:3])}…)" if versions else " (no such package)")))
        elif versions[0] != pin.version and pin.registry != "debian":
            results.append(PinResult(pin, "newer", f"{versions[0]} is out (the guide pins {pin.version})"))
        else:
            results.append(PinResult(pin, "current"))
    return results
