"""Collects labs as pytest items: `pytest labs/` runs every lab, one item per step.

A lab's steps share its containers (provisioned in the file node's setup, removed in
its teardown); under xdist a lab's steps stay on one worker (load-by-file).
"""

from __future__ import annotations

import contextvars
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from opslabs import engine
from opslabs.catalog import Catalog, TaskEntry
from opslabs.errors import EngineUnavailable, ImageUnavailable, OpslabsError, UserError
from opslabs.load import AREA_FILE, load_catalog
from opslabs.policy import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIDS, Policy
from opslabs.store.keys import content_commit, lab_key
from opslabs.store.results import merge_results
from opslabs.runner import LabEnvironment, LabSkipped, StepFailed, run_step, skip_reason
from opslabs.session import EngineLost, SessionError

RESULT_KEY = "opslabs"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("opslabs")
    group.addoption("--opslabs-results", metavar="FILE", default=None, help="write per-lab results as JSON (merged into an existing file)")
    group.addoption("--opslabs-labs", metavar="DIR", default=None, help="the knowledge base folder, when it is not named `labs`")
    # The operator's limits for what a lab may ask (opslabs.policy); never taken from a lab file.
    group.addoption("--opslabs-allow-privileged", action="store_true", default=False, help="let labs run privileged hosts")
    group.addoption("--opslabs-allow-cap", metavar="CAP", action="append", default=[], help="let labs add this capability (repeatable)")
    group.addoption("--opslabs-max-memory", metavar="SIZE", default=DEFAULT_MAX_MEMORY, help="most memory a lab host may ask for")
    group.addoption("--opslabs-max-pids", metavar="N", type=int, default=DEFAULT_MAX_PIDS, help="most processes a lab host may ask for")


def policy_from(config: pytest.Config) -> Policy:
    try:
        return Policy(config.getoption("opslabs_allow_privileged"), frozenset(config.getoption("opslabs_allow_cap")),
                      config.getoption("opslabs_max_memory"), config.getoption("opslabs_max_pids"))
    except ValueError as err:
        raise pytest.UsageError(f"--opslabs-max-memory: {err}") from None


def runs_labs(config: pytest.Config) -> bool:
    """Whether this pytest run is about labs (the plugin stays out of unrelated test suites)."""
    if config.getoption("opslabs_labs") or config.getoption("opslabs_results"):
        return True
    return any("labs" in Path(arg.split("::")[0]).parts for arg in config.args)


def pytest_configure(config: pytest.Config) -> None:
    config._opslabs_catalogs = {}
    if config.getoption("opslabs_results"):
        config.pluginmanager.register(ResultsCollector(Path(config.getoption("opslabs_results"))), "opslabs-results")
    # A polite kill (SIGTERM) tears down like Ctrl-C does.
    if runs_labs(config) and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Keep every lab's steps on one worker: they share the lab's containers."""
    if config.getoption("dist") == "load" and runs_labs(config):
        from xdist.scheduler import LoadFileScheduling

        return LoadFileScheduling(config, log)
    return None


def is_lab_file(path: Path, root: Path | None = None) -> bool:
    """A task file: <root>/<area>/<task>.yaml, where root is --opslabs-labs or a folder named labs."""
    if path.suffix not in (".yaml", ".yml") or path.name == AREA_FILE:
        return False
    return path.parent.parent.resolve() == root.resolve() if root else path.parent.parent.name == "labs"


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    root = parent.config.getoption("opslabs_labs")
    if is_lab_file(file_path, Path(root) if root else None):
        return LabFile.from_parent(parent, path=file_path)
    return None


def _catalog(config: pytest.Config, root: Path) -> Catalog | UserError:
    cache = config._opslabs_catalogs
    if root not in cache:
        try:
            cache[root] = load_catalog(root, policy_from(config))
        except UserError as err:
            cache[root] = err
    return cache[root]


class LabCollectError(Exception):
    pass


def engine_lost(lab_id: str, err: OpslabsError) -> OpslabsError:
    """One sentence instead of the error of whichever call noticed that the engine is gone."""
    if not isinstance(err, EngineLost) and engine.engine_answers():
        return err
    where = os.environ.get("DOCKER_HOST") or "the default socket"
    return EngineLost(f"lab {lab_id}: the Docker engine at {where} stopped answering in the middle of the lab; "
                      "start it again (`opslabs engine ensure`), then run the lab again")


class LabFile(pytest.File):
    entry: TaskEntry | None = None
    identity: dict | None = None  # content key and commit, recorded with the lab's result
    env: LabEnvironment | None = None
    failed_step: int | None = None
    setup_error: OpslabsError | None = None
    ahead: "Ahead | None" = None  # provisioning started during the previous lab

    def collect(self):
        catalog = _catalog(self.config, self.path.parent.parent)
        if isinstance(catalog, UserError):
            mine = [str(p) for p in getattr(catalog, "problems", []) if Path(p.path).resolve() == self.path.resolve()]
            raise LabCollectError("\n".join(mine) or "the knowledge base has problems in other files: run `opslabs validate`")
        self.entry = next((t for t in catalog.tasks() if t.path.resolve() == self.path.resolve()), None)
        if self.entry is None or self.entry.task.lab is None:
            return
        commit, modified = content_commit(self.path)
        self.identity = {"key": lab_key(self.entry, catalog.versions), "commit": commit, "modified": modified}
        for index, step in enumerate(self.entry.task.lab.steps):
            yield StepItem.from_parent(self, name=f"step{index + 1}", index=index, title=step.title)

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(LabCollectError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def setup(self) -> None:
        reason = skip_reason(self.entry.task.lab)
        if reason:
            pytest.skip(reason)
        if not engine.engine_answers():
            pytest.skip("cannot run here: no Docker engine answers (`opslabs engine ensure` starts one)")
        try:
            engine.collect_garbage()  # what killed runs left behind
            self.env = self.ahead.take() if self.ahead is not None else LabEnvironment(self.entry).provision()
        except (EngineUnavailable, ImageUnavailable, LabSkipped) as err:
            pytest.skip(f"cannot run here: {err}")
        except (engine.DockerError, SessionError) as err:
            self.setup_error = engine_lost(self.entry.id, err)
        except OpslabsError as err:
            # Raised by the first step instead: pytest shows setup errors with a traceback.
            self.setup_error = err

    def provision_ahead(self) -> None:
        """Start provisioning this lab while the worker's previous lab runs its last step."""
        if self.ahead is None and not skip_reason(self.entry.task.lab):
            self.ahead = Ahead(self.entry)
            _aheads.append(self.ahead)

    def teardown(self) -> None:
        if self.env is not None:
            env, self.env = self.env, None
            env.close_sessions()
            # Docker takes about half a second to remove a lab's containers and network; the
            # next lab need not wait for that. The session waits for every removal before it ends.
            removal = threading.Thread(target=contextvars.copy_context().run, args=(_remove, env), name=f"remove {env.network}")
            removal.start()
            _removals.append(removal)


_removals: list[threading.Thread] = []


class Ahead:
    """A lab's provisioning, run in a thread while the worker finishes the lab before it:
    starting containers and services (PostgreSQL, moto) mostly waits, and takes 1 to 6 s."""

    def __init__(self, entry: TaskEntry):
        self.entry = entry
        self.env: LabEnvironment | None = None
        self.error: BaseException | None = None
        self.taken = False
        self.hidden = 0.0
        self.started, self.seconds = time.monotonic(), 0.0
        self.thread = threading.Thread(target=contextvars.copy_context().run, args=(self._provision,), name=f"provision {entry.id}")
        self.thread.start()

    def _provision(self) -> None:
        try:
            self.env = LabEnvironment(self.entry).provision()  # removes what it started if it fails
        except BaseException as err:  # raised again, in the worker's thread, by take()
            self.error = err
        self.seconds = time.monotonic() - self.started

    def take(self) -> LabEnvironment:
        waited = time.monotonic()
        self.thread.join()
        self.taken = True
        # What the lab's own time no longer holds: provisioning done before the lab's turn.
        self.hidden = round(max(0.0, self.seconds - (time.monotonic() - waited)), 2)
        if self.error is not None:
            raise self.error
        return self.env

    def discard(self) -> None:
        """The lab never ran (an interrupted or stopped session): remove what was started."""
        self.thread.join()
        if not self.taken and self.env is not None:
            self.taken = True
            _remove(self.env)


_aheads: list[Ahead] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """At the last step of a lab, the worker knows its next lab: the step provisions it meanwhile."""
    if isinstance(item, StepItem) and isinstance(nextitem, StepItem) and nextitem.parent is not item.parent:
        item.next_lab = nextitem.parent


def _remove(env: LabEnvironment) -> None:
    try:
        env.teardown()
    except engine.DockerError as err:
        print(f"opslabs: could not remove the containers of lab {env.entry.id} ({err}); `opslabs gc` removes them",
              file=sys.stderr)


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _aheads:
        _aheads.pop().discard()
    while _removals:
        _removals.pop().join()


class StepItem(pytest.Item):
    def __init__(self, *, index: int, title: str, **kwargs):
        super().__init__(**kwargs)
        self.index, self.title = index, title
        entry = self.parent.entry
        self.user_properties.append((RESULT_KEY, json.dumps({"lab": entry.id, "area": entry.area_id, "step": index + 1, "title": title,
                                                             **(self.parent.identity or {})})))

    next_lab: LabFile | None = None  # set when this is the last step before another lab

    def runtest(self) -> None:
        try:
            self._run()
        finally:
            lab_file: LabFile = self.parent
            if self.index == len(lab_file.entry.task.lab.steps) - 1 and lab_file.env is not None:
                # Recorded with the result: beside its duration, whether the lab mostly computes or waits.
                cpu = lab_file.env.cpu_seconds()
                if cpu is not None:
                    self.user_properties.append((RESULT_KEY + ".cpu", json.dumps(cpu)))

    def _run(self) -> None:
        lab_file: LabFile = self.parent
        if self.next_lab is not None:  # after this lab's own setup, so the two do not compete
            self.next_lab.provision_ahead()
        if lab_file.failed_step is not None:
            pytest.skip(f"step {lab_file.failed_step} failed, so this step cannot run")
        if self.index == 0 and lab_file.ahead is not None:
            self.user_properties.append((RESULT_KEY + ".ahead", json.dumps(lab_file.ahead.hidden)))
        if lab_file.setup_error is not None:
            lab_file.failed_step = self.index + 1
            raise lab_file.setup_error
        try:
            result = run_step(lab_file.env, self.index)
        except StepFailed as err:
            lab_file.failed_step = self.index + 1
            self._record(err.result.as_dict())
            raise
        except (engine.DockerError, SessionError) as err:
            lab_file.failed_step = self.index + 1
            raise engine_lost(lab_file.entry.id, err) from None
        except OpslabsError:
            lab_file.failed_step = self.index + 1
            raise
        self._record(result.as_dict())

    def _record(self, step: dict) -> None:
        self.user_properties.append((RESULT_KEY + ".step", json.dumps(step)))

    def repr_failure(self, excinfo, style=None):
        if excinfo.errisinstance(OpslabsError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        line = self.parent.entry.line_of("lab", "steps", self.index)
        return self.path, line - 1, f"{self.parent.entry.id} step {self.index + 1}: {self.title}"


class ResultsCollector:
    """Turns the reports (also those from xdist workers) into the results JSON."""

    def __init__(self, path: Path):
        self.path = path
        self.labs: dict[str, dict] = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if RESULT_KEY not in props:
            return
        meta = json.loads(props[RESULT_KEY])
        lab = self.labs.setdefault(meta["lab"], {"id": meta["lab"], "area": meta["area"], "status": "passed", "reason": "", "duration": 0.0, "steps": {},
                                                 "key": meta.get("key"), "commit": meta.get("commit"), "modified": meta.get("modified", False)})
        lab["duration"] += report.duration
        if RESULT_KEY + ".ahead" in props and report.when == "call":
            lab["provisioned_ahead"] = json.loads(props[RESULT_KEY + ".ahead"])
        if RESULT_KEY + ".cpu" in props and report.when == "call":
            lab["cpu_seconds"] = json.loads(props[RESULT_KEY + ".cpu"])
        step = lab["steps"].setdefault(meta["step"], {"index": meta["step"], "title": meta["title"], "status": "passed", "message": "", "checks": []})
        if RESULT_KEY + ".step" in props:
            step.update(json.loads(props[RESULT_KEY + ".step"]))
        if report.failed:
            step["status"] = "failed"
            step["message"] = step["message"] or str(report.longrepr)[-2000:]
            lab["status"] = "failed"
            lab["reason"] = lab["reason"] or f"step {meta['step']} failed ({report.when})"
        elif report.skipped and report.when != "teardown" and step["status"] != "failed":
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            step["status"], step["message"] = "skipped", reason.removeprefix("Skipped: ")
            if lab["status"] == "passed" and all(s["status"] == "skipped" for s in lab["steps"].values()):
                lab["status"], lab["reason"] = "skipped", step["message"]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # the controller writes the file
        finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for lab in self.labs.values():
            lab["duration"] = round(lab["duration"], 2)
            lab["finished"] = lab["verified_at"] = finished
            lab["steps"] = [lab["steps"][k] for k in sorted(lab["steps"])]
        # Labs that ran replace their entry; the others keep theirs (the site shows them all),
        # also those another run wrote while this one ran.
        merge_results(self.path, list(self.labs.values()), {
            "generated": finished, "duration": round(time.time() - self.started, 2),
        })
