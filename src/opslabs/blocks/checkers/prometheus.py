"""Prometheus rules and configuration (promtool) and Alertmanager configuration (amtool).

Debian's `prometheus` and `prometheus-alertmanager` packages ship both tools; where they are
not on this machine they run in a container built once from the base image and cached.
"""

from __future__ import annotations

import shutil

from opslabs.blocks.checkers.base import Finding, Outcome, ToolMissing, run_tool, temp_files

COMMANDS = {
    "prometheus-rules": ("promtool", "check", "rules"),
    "prometheus-config": ("promtool", "check", "config", "--syntax-only"),
    "promtool-test": None,  # unit tests need their rule files beside them
    "alertmanager-config": ("amtool", "check-config"),
}
LABELS = {
    "prometheus-rules": "promtool check rules",
    "prometheus-config": "promtool check config",
    "promtool-test": "promtool test rules",
    "alertmanager-config": "amtool check-config",
}
TIMEOUT = 60  # seconds for one run of promtool or amtool on this machine
TOOLS_SETUP = ("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
               "--no-install-recommends prometheus prometheus-alertmanager >/dev/null")


def check(kind: str, text: str) -> Outcome:
    command = COMMANDS[kind]
    if command is None:
        return Outcome(LABELS[kind], unchecked="a promtool unit test needs its rule files beside it; "
                                                "the lab that owns it runs it")
    if shutil.which(command[0]):
        tmp, (path,) = temp_files([text], ".yml")
        with tmp:  # run_tool: a tool that hangs leaves the block unchecked with the reason
            done = run_tool([*command, str(path)], timeout=TIMEOUT)
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        returncode = done.returncode
    else:
        returncode, output = _in_container(command, text)
    if returncode == 0:
        return Outcome(LABELS[kind])
    lines = [line.strip() for line in output.splitlines() if line.strip() and "SUCCESS" not in line]
    return Outcome(LABELS[kind], (Finding(0, " ".join(lines)[-600:] or f"exited with {returncode}"),))


_broken: list[str] = []  # the image could not be built: say so once per run, not once per block


def _in_container(command: tuple[str, ...], text: str) -> tuple[int, str]:
    from opslabs import engine, images
    from opslabs.model import Host

    if not engine.engine_answers():
        raise ToolMissing(f"{command[0]} is not on this machine and no Docker engine answers to run it in a container")
    from opslabs.errors import OpslabsError

    run_id = "blocks"
    if _broken:
        raise ToolMissing(_broken[0])
    try:
        image, _ = images.setup_image(Host(setup=[TOOLS_SETUP]), "tools", "block-checkers", run_id)
    except OpslabsError as err:
        _broken.append(f"could not build the image that holds {command[0]}: {err}")
        raise ToolMissing(_broken[0]) from None
    script = 'cat > /tmp/block.yml && exec "$@" /tmp/block.yml'
    try:
        done = engine.docker("run", "--rm", "-i", "--network", "none", *engine.labels("run", run_id, "block-checkers"),
                             "--entrypoint", "sh", image, "-c", script, "sh", *command, input=text.encode(), timeout=120, check=False)
    except OpslabsError as err:  # no answer in time: no verdict on the block
        raise ToolMissing(f"{command[0]} in a container: {err}") from None
    if done.returncode in (125, 126, 127):  # docker, or sh, could not start the tool: not the block's fault
        said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise ToolMissing(f"{command[0]} could not run in its container: {said}")
    return done.returncode, done.stdout + done.stderr
