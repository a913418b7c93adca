"""Live progress for long work (verify, images ensure, prepare, setup-layer builds): which lab,
which step, how long so far, redrawn in place on a terminal by rich.

Plain lines everywhere else: when the output is not a terminal, when `CI` is set, or with
OPSLABS_PLAIN=1. Then nothing is redrawn, so logs stay readable and the lines of parallel
labs (`verify -j 2`) never mix with a status display.

Work deep below the command (a setup layer being built, maybe in a pytest-xdist worker
process) reports with `note(who, text)`: to the board of this process when there is one,
else through a small file in OPSLABS_LIVE_DIR that the board of the controlling process reads
when it redraws. Without either, a note goes nowhere.
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

LIVE_DIR_ENV = "OPSLABS_LIVE_DIR"
_sink: Callable[[str, str], None] | None = None  # the board of this process, when one is drawn


def wanted(stream: IO[str] | None = None) -> bool:
    """Live display only on a terminal, never in CI or when asked for plain output."""
    stream = stream or sys.stdout
    if os.environ.get("CI") or os.environ.get("OPSLABS_PLAIN") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _note_file(folder: str, who: str) -> Path:
    return Path(folder) / re.sub(r"[^A-Za-z0-9._-]", "_", who)


def note(who: str, text: str) -> None:
    """What `who` (a lab id, an image name) is doing now, for whoever draws the progress."""
    if _sink is not None:
        _sink(who, text)
        return
    folder = os.environ.get(LIVE_DIR_ENV)
    if not folder:
        return
    target = _note_file(folder, who)
    try:
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_text(text[:300], encoding="utf-8")
        os.replace(tmp, target)  # the reader never sees half a note
    except OSError:
        pass  # progress is a courtesy: never fail the work for it


def read_note(folder: str | None, who: str) -> str:
    if not folder:
        return ""
    try:
        return _note_file(folder, who).read_text(encoding="utf-8")
    except OSError:
        return ""


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class _Lines(io.TextIOBase):
    """sys.stdout/sys.stderr while the board is drawn: whole lines are printed above the rows;
    a partial line waits for its end (pytest -v writes a test's name, later its outcome)."""

    def __init__(self, console, file: IO[str]):
        from rich.ansi import AnsiDecoder

        self._console, self._file, self._partial = console, file, ""
        self._decoder = AnsiDecoder()

    def write(self, text: str) -> int:
        from rich.text import Text

        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            self._console.print(Text("\n").join(self._decoder.decode_line(line) for line in lines))
        return len(text)

    def flush(self) -> None:
        pass

    def leftover(self) -> str:
        partial, self._partial = self._partial, ""
        return partial

    def isatty(self) -> bool:
        return self._file.isatty()

    def fileno(self) -> int:
        return self._file.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._file, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class Board:
    """Rows of work in progress: `who  doing  elapsed`, under a title with a count.

    Live (a terminal): rich redraws the rows four times a second; anything printed meanwhile
    appears above them. Plain: one line when a row starts, changes what it does, or ends.
    """

    def __init__(self, title: str, total: int | None = None, live: bool | None = None, notes_dir: str | None = None,
                 plain_rows: bool = True):
        self.title, self.total = title, total
        self.plain_rows = plain_rows  # plain output: a line when a row starts and ends (else notes only)
        self.live = wanted() if live is None else live
        self.rows: dict[str, list] = {}  # who -> [doing, started, detail]
        self.done = self.failed = 0
        self.started = time.monotonic()
        self.notes_dir = notes_dir
        self._live = None
        self._saved: tuple | None = None
        self._spinners: dict[str, Any] = {}  # one per row, so each turns with its own time

    # --- what the work reports -------------------------------------------------

    def begin(self, who: str, doing: str) -> None:
        self.rows[who] = [doing, time.monotonic(), ""]
        if not self.live and self.plain_rows:
            self._plain(f"{who}: {doing}")

    def update(self, who: str, doing: str) -> None:
        if who not in self.rows:
            self.begin(who, doing)
            return
        if self.rows[who][0] != doing:
            self.rows[who][0], self.rows[who][2] = doing, ""
            if not self.live:
                self._plain(f"{who}: {doing}")

    def detail(self, who: str, text: str) -> None:
        """The finer grain of a row's work (a note): a setup command, a host starting."""
        if who not in self.rows:
            self.rows[who] = [text, time.monotonic(), ""]
            if not self.live:
                self._plain(f"{who}: {text}")
        elif self.rows[who][2] != text:
            self.rows[who][2] = text
            if not self.live:
                self._plain(f"{who}: {text}")

    def finish(self, who: str, outcome: str, failed: bool = False) -> None:
        row = self.rows.pop(who, None)
        seconds = time.monotonic() - row[1] if row else 0.0
        self.done += 1
        self.failed += failed
        if not self.live and self.plain_rows:
            self._plain(f"{who}: {outcome} ({_elapsed(seconds)})")

    def _plain(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # --- drawing -----------------------------------------------------------------

    def __rich__(self):
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        failed = f", {self.failed} failed" if self.failed else ""
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column(no_wrap=True, min_width=max([len(self.title), *map(len, self.rows)]))  # ids are never cut
        grid.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
        grid.add_column(justify="right", no_wrap=True)
        grid.add_row("", Text(self.title, style="bold"), Text(f"{count} done{failed}"), Text(_elapsed(now - self.started), style="dim"))
        for who, (doing, started, detail) in list(self.rows.items()):
            detail = detail or read_note(self.notes_dir, who)
            text = Text(doing)
            if detail:
                text.append(f"  {detail}", style="dim")
            spinner = self._spinners.setdefault(who, Spinner("dots", style="cyan"))
            grid.add_row(spinner, Text(who, style="bold cyan"), text, Text(_elapsed(now - started)))
        return grid

    def __enter__(self) -> "Board":
        global _sink
        self._sink_before = _sink
        _sink = self.detail
        if not self.live:
            return self
        from rich.console import Console
        from rich.live import Live

        # The board draws on its own copy of the terminal's descriptor: pytest captures fd 1 while
        # a test runs, and the redraw must not land in its capture.
        terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
        console = Console(file=terminal, force_terminal=True)
        self._saved = (sys.stdout, sys.stderr, terminal)
        sys.stdout, sys.stderr = _Lines(console, sys.stdout), _Lines(console, sys.stderr)
        self._live = Live(self, console=console, refresh_per_second=4, transient=True,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        global _sink
        _sink = self._sink_before
        if self._live is None:
            return
        self._live.stop()
        lines_out, lines_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr, terminal = self._saved
        for proxy, real in ((lines_out, sys.stdout), (lines_err, sys.stderr)):
            rest = proxy.leftover() if isinstance(proxy, _Lines) else ""
            if rest:
                real.write(rest)
        sys.stdout.flush()
        terminal.close()
        self._live = None


class VerifyBoard(Board):
    """The board of `opslabs verify`, fed by pytest's hooks in the controlling process (also
    under xdist, whose workers forward their reports) and by the workers' notes."""

    def __init__(self, steps: dict[str, list[str]], live: bool | None = None):
        super().__init__("verify", total=len(steps), live=live)
        self.steps = steps  # lab id -> step titles
        self.outcome: dict[str, str] = {}
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> "VerifyBoard":
        if self.live:
            self._tmp = tempfile.TemporaryDirectory(prefix="opslabs-live-")
            self.notes_dir = self._tmp.name
            self._env = os.environ.get(LIVE_DIR_ENV)
            os.environ[LIVE_DIR_ENV] = self.notes_dir  # inherited by the xdist workers started next
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        if self._tmp is not None:
            if self._env is None:
                os.environ.pop(LIVE_DIR_ENV, None)
            else:
                os.environ[LIVE_DIR_ENV] = self._env
            self._tmp.cleanup()
            self._tmp = None

    @staticmethod
    def _where(nodeid: str) -> tuple[str, int] | None:
        """`labs/web/serve.yaml::step2` -> ("serve", 2): a task file is named after its lab."""
        path, _, name = nodeid.partition("::")
        match = re.fullmatch(r"step([0-9]+)", name)
        return (Path(path).stem, int(match.group(1))) if match else None

    def _doing(self, lab: str, step: int, phase: str = "") -> str:
        titles = self.steps.get(lab, [])
        title = titles[step - 1] if 0 < step <= len(titles) else ""
        return f"step {step}/{len(titles)}: {title}{phase}"

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        where = self._where(nodeid)
        if where:
            lab, step = where
            self.update(lab, self._doing(lab, step, " (setting up the hosts)" if step == 1 else ""))

    def pytest_runtest_logreport(self, report) -> None:
        where = self._where(report.nodeid)
        if not where:
            return
        lab, step = where
        if report.when == "setup":
            if self.notes_dir:
                _note_file(self.notes_dir, lab).unlink(missing_ok=True)  # provisioning is over
            if lab in self.rows:
                self.rows[lab][2] = ""
            if report.passed:
                self.update(lab, self._doing(lab, step))
        if report.failed:
            self.outcome[lab] = "failed"
        elif report.skipped and report.when != "teardown":
            self.outcome.setdefault(lab, "skipped")
        if report.when == "teardown" and step == len(self.steps.get(lab, [])):
            outcome = self.outcome.get(lab, "passed")
            self.finish(lab, outcome, failed=outcome == "failed")
