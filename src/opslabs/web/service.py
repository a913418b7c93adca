"""What the workshop server does, as plain blocking functions (the ASGI layer calls them in
threads): join, start a lab, check, solve, hint, the trainer's view, idle and server stops.

Every learner's lab is a workshop lab of opslabs.workshop owned by that learner (the
owner label), so two learners run the same lab side by side and nobody reaches another's
containers: each call names the learner from the signed session, never from the request.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from opslabs import engine, workshop
from opslabs.catalog import Catalog, TaskEntry
from opslabs.errors import UserError
from opslabs.runner import LabEnvironment, new_run_id, skip_reason
from opslabs.store.progress import ProgressStore
from opslabs.web.engines import EnginePool, NoSeat, parse_engines
from opslabs.web.pages import step_html
from opslabs.web.state import Learner, LearnerLab, WebState


class WebError(UserError):
    """A refusal the page shows as it is; `status` is the HTTP status it maps to."""

    status = 400


class NotFound(WebError):
    status = 404


class Forbidden(WebError):
    status = 403


class Conflict(WebError):
    status = 409


@dataclass(frozen=True)
class Settings:
    seats: int = 10  # labs running at once, per engine (an engine's own `,seats=N` wins)
    idle: float = 30 * 60  # seconds without terminal input, check, solve or hint
    engines: tuple[str, ...] = ()  # --engine URL[,seats=N]; none: the default engine


def parse_duration(text: str) -> float:
    """`30m`, `90s`, `2h` or plain seconds -> seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        value = float(number) * unit
    except ValueError:
        raise UserError(f"expected a duration such as 30m, 90s or 2h, got {text!r}") from None
    if value <= 0:
        raise UserError(f"a duration must be positive, got {text!r}")
    return value


def progress_line(done: list[int], total: int) -> str:
    """As `opslabs status` says it: `1/2 steps done, now: step 2`."""
    current = next((n for n in range(1, total + 1) if n not in done), None)
    return f"{len(done)}/{total} steps done, now: {f'step {current}' if current else 'complete'}"


class Workshop:
    def __init__(self, catalog: Catalog, state_path: Path, settings: Settings = Settings()):
        self.catalog, self.settings = catalog, settings
        self.state = WebState(state_path)
        self.progress = ProgressStore(state_path)  # one file: progress and the server's rows together
        self.secrets = self.state.secrets()
        self.prefix = f"web-{self.secrets['workshop_id']}-"
        self._learner_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()
        self._seats_lock = threading.Lock()
        self.pool = EnginePool(parse_engines(list(settings.engines), settings.seats), report=self.report)

    def report(self, message: str) -> None:
        """What the trainer should know (an engine down): the server's console."""
        print(f"opslabs workshop: {message}", flush=True)

    # --- identity ---

    def owner(self, learner_id: str) -> str:
        return self.prefix + learner_id

    def join(self, name: str, code: str) -> Learner:
        if not hmac.compare_digest(code.strip().lower().encode(), self.secrets["code"].encode()):
            raise Forbidden("that is not this workshop's code: ask your trainer for it")
        return self.state.add_learner(name)

    def trainer_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.strip().encode(), self.secrets["trainer_token"].encode())

    def learner(self, learner_id: str | None) -> Learner:
        found = self.state.learner(learner_id) if learner_id else None
        if found is None:
            raise Forbidden("join the workshop first (your name and the workshop code)")
        return found

    def _lock(self, learner_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._learner_locks[learner_id]

    # --- where labs run ---

    def place(self, learner_id: str, entry: TaskEntry) -> str:
        """Where a new lab goes, taking a seat there: the engine with the most free seats
        ('' = the default engine). The one place a lab is placed."""
        try:
            return self.pool.acquire().url or ""
        except NoSeat as err:
            raise Conflict(str(err)) from None

    def release(self, url: str) -> None:
        self.pool.release(url or None)

    def engine_urls(self) -> list[str]:
        return [one.url or "" for one in self.pool.engines]

    @contextmanager
    def on_engine(self, url: str) -> Iterator[None]:
        """Route this thread's engine calls to `url` ('' = the default engine)."""
        if not url:
            yield
            return
        using = getattr(engine, "using", None)
        if using is None:
            raise UserError(f"this opslabs cannot reach engine {url}: opslabs.engine has no routing (engine.using)")
        with using(url):
            yield

    # --- labs ---

    def entry(self, lab_id: str) -> TaskEntry:
        entry = self.catalog.find_lab(lab_id)
        if entry is None:
            raise NotFound(f"there is no lab {lab_id!r} in this workshop")
        return entry

    def catalog_labs(self, learner_id: str) -> list[dict]:
        rows = {row.lab: row for row in self.state.labs(learner_id)}
        out = []
        for entry in self.catalog.labs():
            lab = entry.task.lab
            row = rows.get(entry.id)
            done = self._done(row, len(lab.steps)) if row else []
            out.append({"id": entry.id, "title": entry.task.title, "summary": entry.task.summary,
                        "steps": len(lab.steps), "hosts": list(lab.hosts), "done": len(done),
                        "running": bool(row and row.running), "can_run": skip_reason(lab) is None})
        return out

    def _done(self, row: LearnerLab, total: int) -> list[int]:
        return sorted({n for n in self.progress.done(row.run_id) if 1 <= n <= total})

    def lab_state(self, learner_id: str, lab_id: str) -> dict:
        """Everything the lab page shows: status, progress, the current step rendered."""
        entry = self.entry(lab_id)
        lab = entry.task.lab
        row = self.state.lab(learner_id, lab_id)
        done = self._done(row, len(lab.steps)) if row else []
        current = next((n for n in range(1, len(lab.steps) + 1) if n not in done), None)
        step = lab.steps[current - 1] if current else None
        return {
            "lab": entry.id, "title": entry.task.title,
            "status": row.status if row else "new", "note": row.note if row else "",
            "hosts": list(lab.hosts),
            "progress": {"done": done, "total": len(lab.steps), "current": current,
                         "text": progress_line(done, len(lab.steps))},
            "step": None if step is None else {"number": current, "title": step.title,
                                               "html": step_html(step.text), "hints": len(step.hints)},
            "last_check": row.last_check if row else {},
        }

    def start(self, learner_id: str, lab_id: str, say=lambda message: None) -> dict:
        """Start (or recreate at the learner's step) the learner's lab; one running lab per learner."""
        entry = self.entry(lab_id)
        reason = skip_reason(entry.task.lab)
        if reason:
            raise Conflict(f"lab {lab_id} cannot run here: it {reason}")
        with self._lock(learner_id):
            for other in self.state.labs(learner_id, status="running"):
                if other.lab != lab_id:
                    self._stop(other, f"You started lab {lab_id}; this one was stopped. Your progress is kept.")
            row = self.state.ensure_lab(learner_id, lab_id, new_run_id())
            if row.running and self._whole(row, entry):
                return self.lab_state(learner_id, lab_id)
            with self._seats_lock:
                url = row.engine if row.running else self.place(learner_id, entry)  # a broken lab keeps its seat
                self.state.set_status(learner_id, lab_id, "running", engine=url)
            try:
                with self.on_engine(url):
                    workshop.start(entry, say, store=self.progress, owner=self.owner(learner_id), run_id=row.run_id)
            except BaseException as err:
                if isinstance(err, engine.NoAddressPool):  # that engine is out of networks: the next Start goes elsewhere
                    self.pool.mark_full(url or None, str(err).split(". ")[0])
                self.state.set_status(learner_id, lab_id, "stopped", note=f"Starting the lab failed: {err}")
                try:
                    with self.on_engine(url):
                        workshop.stop(lab_id, self.progress, owner=self.owner(learner_id), forget=False)
                finally:
                    self.release(url)
                raise
            self.state.touch(learner_id, lab_id)
        return self.lab_state(learner_id, lab_id)

    def _whole(self, row: LearnerLab, entry: TaskEntry) -> bool:
        with self.on_engine(row.engine):
            running = workshop.running_labs(self.owner(row.learner)).get(row.lab)
        return running is not None and not running.problems(entry)

    def running_row(self, learner_id: str, lab_id: str) -> LearnerLab:
        """The learner's own running lab, or a refusal that says what to do."""
        self.entry(lab_id)
        row = self.state.lab(learner_id, lab_id)
        if row is None or not row.running:
            note = f" {row.note}" if row and row.note else ""
            raise Conflict(f"your lab {lab_id} is not running.{note} Press Start to start it.")
        return row

    def _report(self, learner_id: str, lab_id: str, report, progress) -> dict:
        self.state.record_check(learner_id, lab_id, report.step, report.passed)
        checks = [{"host": c.host, "description": c.description, "passed": c.passed, "message": c.message,
                   "expected": c.expected, "actual": c.actual} for c in report.checks]
        return {"step": report.step, "passed": report.passed, "checks": checks, "state": self.lab_state(learner_id, lab_id)}

    def _ensure_whole(self, row: LearnerLab, entry: TaskEntry) -> None:
        """A lab whose machines went away outside the workshop (`docker rm`, an engine restart)
        is stopped with a note that Start brings it back, instead of the CLI's advice."""
        if not self._whole(row, entry):
            note = ("Your lab's machines were removed or stopped outside the workshop. "
                    "Your progress is kept: Start recreates them at your step.")
            self._stop(row, note)
            raise Conflict(note)

    def _on_running_lab(self, learner_id: str, lab_id: str, action) -> dict:
        """`action` (workshop.check or workshop.solve) on the learner's running, whole lab, under
        the learner's lock on its engine; the report is recorded and returned with the lab's state."""
        row = self.running_row(learner_id, lab_id)
        with self._lock(learner_id), self.on_engine(row.engine):
            entry = self.entry(lab_id)
            self._ensure_whole(row, entry)
            report, progress = action(entry, store=self.progress, owner=self.owner(learner_id))
        return self._report(learner_id, lab_id, report, progress)

    def check(self, learner_id: str, lab_id: str) -> dict:
        return self._on_running_lab(learner_id, lab_id, workshop.check)

    def solve(self, learner_id: str, lab_id: str) -> dict:
        return self._on_running_lab(learner_id, lab_id, workshop.solve)

    def hints(self, learner_id: str, lab_id: str) -> dict:
        state = self.lab_state(learner_id, lab_id)
        if state["step"] is None:
            raise Conflict(f"every step of {lab_id} is done: there is no hint left")
        step = self.entry(lab_id).task.lab.steps[state["step"]["number"] - 1]
        self.state.touch(learner_id, lab_id)
        return {"step": state["step"]["number"], "hints": [step_html(hint) for hint in step.hints]}

    def terminal(self, learner_id: str, lab_id: str, host: str) -> tuple[str, str]:
        """(container, engine url) of the learner's own host; refused for anything else."""
        entry = self.entry(lab_id)
        if host not in entry.task.lab.hosts:
            raise NotFound(f"lab {lab_id} has no host {host!r}; its hosts are {', '.join(entry.task.lab.hosts)}")
        row = self.running_row(learner_id, lab_id)
        container = LabEnvironment(entry, kind=workshop.KIND, run_id=row.run_id).container_name(host)
        return container, row.engine

    def touch(self, learner_id: str, lab_id: str) -> None:
        self.state.touch(learner_id, lab_id)

    # --- stopping ---

    def _stop(self, row: LearnerLab, note: str, forget: bool = False) -> None:
        current = self.state.lab(row.learner, row.lab)
        # The note first: an open terminal ends when the containers go, and tells the learner why.
        self.state.set_status(row.learner, row.lab, "stopped", note=note)
        with self.on_engine(row.engine):
            workshop.stop(row.lab, self.progress, owner=self.owner(row.learner), forget=forget)
        if current is not None and current.running:
            self.release(current.engine)

    def stop(self, learner_id: str, lab_id: str, note: str) -> None:
        row = self.state.lab(learner_id, lab_id)
        if row is None:
            raise NotFound(f"learner has no lab {lab_id}")
        with self._lock(learner_id):
            self._stop(row, note)

    def reset(self, learner_id: str, lab_id: str) -> None:
        """The trainer's reset: the lab and its progress go; the learner starts afresh."""
        row = self.state.lab(learner_id, lab_id)
        if row is None:
            raise NotFound(f"learner has no lab {lab_id}")
        with self._lock(learner_id):
            self._stop(row, "Your trainer reset this lab: Start begins it afresh.", forget=True)

    def reap_idle(self, now: float | None = None) -> list[LearnerLab]:
        """Stop labs idle past the limit (progress kept); the learner's page says why."""
        minutes = self.settings.idle / 60
        idle = f"{minutes:g} minute{'s' if minutes != 1 else ''}" if minutes >= 1 else f"{self.settings.idle:g} seconds"
        note = f"Your lab was stopped after {idle} without activity. Your progress is kept: Start recreates it at your step."
        reaped = []
        for row in self.state.labs(status="running"):
            if (now or time.time()) - row.last_active <= self.settings.idle:
                continue
            with self._lock(row.learner):
                again = self.state.lab(row.learner, row.lab)  # the learner may have typed meanwhile
                if again is None or not again.running or (now or time.time()) - again.last_active <= self.settings.idle:
                    continue
                self._stop(again, note)
            reaped.append(again)
        return reaped

    def remove_all(self, note: str) -> tuple[list[str], list[str]]:
        """Remove every container and network of this workshop on every engine; keep progress."""
        containers, networks = [], []
        for url in self.engine_urls():
            with self.on_engine(url):
                if not engine.engine_answers():
                    continue
                ours = lambda item: item.get(f"{engine.LABEL}.owner", "").startswith(self.prefix)  # noqa: E731
                found_c = [c["name"] for c in engine.find("container", {"kind": workshop.KIND}) if ours(c)]
                found_n = [n["name"] for n in engine.find("network", {"kind": workshop.KIND}) if ours(n)]
                engine.remove_containers(found_c)
                engine.remove_networks(found_n)
                containers += found_c
                networks += found_n
        self.state.stop_all(note)
        for one in self.pool.engines:
            one.used = 0
        return containers, networks

    # --- the trainer's view ---

    def room(self, now: float | None = None) -> list[dict]:
        now = now or time.time()
        rows = []
        for learner in self.state.learners():
            labs = self.state.labs(learner.id)
            lab = labs[0] if labs else None  # the one worked on last
            item = {"id": learner.id, "name": learner.name, "lab": None}
            if lab is not None:
                entry = self.catalog.find_lab(lab.lab)
                total = len(entry.task.lab.steps) if entry else 0
                done = self._done(lab, total) if entry else []
                item["lab"] = {"id": lab.lab, "status": lab.status, "engine": lab.engine or "default",
                               "progress": progress_line(done, total), "done": len(done), "total": total,
                               "current": next((n for n in range(1, total + 1) if n not in done), None),
                               "last_check": lab.last_check, "idle": round(now - lab.last_active)}
            rows.append(item)
        return rows


def default_state_path() -> Path:
    from opslabs.store.progress import default_path

    return default_path().with_name("workshop.db")
