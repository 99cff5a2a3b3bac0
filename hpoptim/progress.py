"""The console's view of a running optimisation (command-line layer, beside ``cli``).

Fed by the loop's events (:data:`hpoptim.run.loop.EventHook`), never by reading
files. On a terminal, one status area is redrawn in place (rich's ``Live``): counts,
the running jobs and their ages, elapsed time, ETA, the best value so far. Without
a terminal (Slurm logs, CI) a compact line is printed at most every
``line_interval_s`` seconds and when the run ends. A new best is always its own line.
Each event costs a few dictionary updates: the display must not slow the loop. Without
a terminal, rich is not even imported (nor, ever, pandas): a driver starts faster.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from hpoptim.results.status import format_duration
from hpoptim.run.loop import format_params
from hpoptim.state.events import EventKind
from hpoptim.state.history import RunHistory
from hpoptim.state.setting import is_better

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.live import Live

LINE_INTERVAL_S = 30.0
N_JOBS_SHOWN = 8


@dataclass(frozen=True)
class ProgressOptions:
    """What the display shows and how often.

    Attributes:
        n_samples: The run's budget of settings.
        metric: The optimised metric (None: the run only collects metrics).
        minimize: Whether lower is better.
        live: Redraw one status area in place (a terminal) instead of printing lines.
        line_interval_s: Without a terminal, at most one status line this often.
    """

    n_samples: int
    metric: str | None
    minimize: bool
    live: bool
    line_interval_s: float = LINE_INTERVAL_S


@dataclass
class _Job:
    setting_id: int
    rerun: int
    iteration: int
    attempt: int
    submitted_at: float
    native_id: str = ""


class Progress:
    """The loop's event hook that keeps the console informed."""

    def __init__(
        self,
        options: ProgressOptions,
        stream: IO[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.stream = stream
        self.clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._running: dict[int, int] = {}  # setting id -> active jobs
        self._n_asked = self._n_finished = self._n_failed = self._n_stopped = 0
        self._finished_here = 0
        self._best: tuple[float, int] | None = None
        self._started = clock()
        self._last_line = self._started  # the first line after one interval
        self._synced = False
        self._live: Live | None = None

    @cached_property
    def console(self) -> Console:
        """The rich console on :attr:`stream` (terminal mode only)."""
        from rich.console import Console

        return Console(file=self.stream, highlight=False)

    # -- the hook ----------------------------------------------------------------
    def __call__(self, history: RunHistory, event: Mapping[str, Any]) -> None:
        with self._lock:
            if not self._synced:
                self._sync(history)
            else:
                self._apply(event)
        kind = event["e"]
        if kind == EventKind.SETTING_FINISHED:
            self._on_finished(history, event)
        if kind in (EventKind.FINISHED, EventKind.STOPPED) or (
            not self.options.live and self.clock() - self._last_line >= self.options.line_interval_s
        ):
            self._line()

    def _sync(self, history: RunHistory) -> None:
        """Take the state of a resumed run once (later events update it)."""
        self._synced = True
        for rec in history.active_jobs():
            self._add_job(rec.job_id, rec.setting_id, rec.rerun, rec.iteration, rec.attempt)
            self._jobs[rec.job_id].native_id = rec.native_id
            self._jobs[rec.job_id].submitted_at = rec.submitted_at
        self._n_asked, self._n_finished = history.n_asked, history.n_finished
        self._n_failed = history.n_failed_settings
        self._n_stopped = history.n_stopped_settings
        for sid in history.finished_order:
            result = history.settings[sid].result
            if result is not None and result.value is not None and result.stopped_at is None:
                self._note_value(result.value, sid)

    def _apply(self, ev: Mapping[str, Any]) -> None:
        kind = ev["e"]
        if kind == EventKind.ASKED:
            self._n_asked += 1
        elif kind == EventKind.SUBMITTED:
            self._add_job(
                ev["job"], int(ev["sid"]), int(ev["rerun"]), int(ev["it"]), int(ev["att"])
            )
        elif kind in (EventKind.LAUNCHED, EventKind.NATIVE_IDS):
            self._update_jobs(ev)
        elif kind in (EventKind.ENDED, EventKind.ABANDONED):
            job = self._jobs.pop(ev["job"], None)
            if job is not None:
                self._running[job.setting_id] -= 1
                if not self._running[job.setting_id]:
                    del self._running[job.setting_id]
        elif kind == EventKind.SETTING_FINISHED:
            self._n_finished += 1
            self._finished_here += 1
            if ev["result"]["value"] is None:
                self._n_failed += 1
            if ev["result"].get("stopped_at") is not None:
                self._n_stopped += 1

    def _update_jobs(self, ev: Mapping[str, Any]) -> None:
        """Jobs handed to the launcher now (``launched``: their age starts), or their ids."""
        if ev["e"] == EventKind.LAUNCHED:
            for job_id in ev["jobs"]:
                if (job := self._jobs.get(job_id)) is not None:
                    job.submitted_at = self.clock()
            return
        for job_id, native in ev["ids"].items():
            if (job := self._jobs.get(job_id)) is not None:
                job.native_id = str(native)

    def _add_job(self, job_id: str, sid: int, rerun: int, it: int, att: int) -> None:
        self._jobs[job_id] = _Job(sid, rerun, it, att, self.clock())
        self._running[sid] = self._running.get(sid, 0) + 1

    def _note_value(self, value: float, sid: int) -> bool:
        if self._best is None or is_better(value, self._best[0], minimize=self.options.minimize):
            self._best = (value, sid)
            return True
        return False

    def _on_finished(self, history: RunHistory, ev: Mapping[str, Any]) -> None:
        value = ev["result"]["value"]
        sid = int(ev["sid"])
        if ev["result"].get("stopped_at") is not None:  # a partial run is never the best
            return
        with self._lock:
            new_best = value is not None and self._note_value(float(value), sid)
        if new_best:
            params = format_params(history.settings[sid].params)
            self._print(
                f"new best {self.options.metric}={value:.6g} at setting {sid} "
                f"({self._n_finished}/{self.options.n_samples}): {params}"
            )

    # -- output ------------------------------------------------------------------
    def _print(self, text: str) -> None:
        if self._live is not None:
            from rich.text import Text

            self.console.print(Text(f"[hpoptim] {text}"))
        else:
            self.stream.write(f"[hpoptim] {text}\n")
            self.stream.flush()

    def _line(self) -> None:
        """The compact status line (no terminal)."""
        if self.options.live:
            return
        self._last_line = self.clock()
        self._print(self.summary_line())

    def summary_line(self) -> str:
        """``12/300 settings done (1 failed), 2 running, 3 queued; 1m05s, ETA 24m; best …``"""
        counts, timing, best = self._parts()
        return f"{counts}; {timing}; {best}"

    def _parts(self) -> tuple[str, str, str]:
        with self._lock:
            n_running = len(self._running)
            n_queued = max(0, self._n_asked - self._n_finished - n_running)
            elapsed = self.clock() - self._started
            eta = self._eta(elapsed)
            best = self._best_text()
            n_finished, n_failed, n_stopped = self._n_finished, self._n_failed, self._n_stopped
        stopped = f", {n_stopped} stopped early" if n_stopped else ""
        counts = (
            f"{n_finished}/{self.options.n_samples} settings done ({n_failed} failed{stopped}), "
            f"{n_running} running, {n_queued} queued"
        )
        timing = format_duration(elapsed) + ("" if eta is None else f", ETA {format_duration(eta)}")
        return counts, timing, best

    def _eta(self, elapsed: float) -> float | None:
        if not self._finished_here:
            return None
        remaining = max(0, self.options.n_samples - self._n_finished)
        return elapsed / self._finished_here * remaining

    def _best_text(self) -> str:
        if self.options.metric is None:
            return "no metric to optimise"
        if self._best is None:
            return f"best {self.options.metric}: none yet"
        return f"best {self.options.metric}={self._best[0]:.6g} (setting {self._best[1]})"

    def __rich__(self) -> Group:
        """The status area redrawn in place on a terminal."""
        from rich.console import Group
        from rich.text import Text

        now = self.clock()
        with self._lock:
            jobs = sorted(self._jobs.items(), key=lambda kv: kv[1].submitted_at)
        counts, timing, best = self._parts()
        lines = [Text(counts, style="bold"), Text(f"{timing}; {best}")]
        for job_id, job in jobs[:N_JOBS_SHOWN]:
            native = f" id {job.native_id}" if job.native_id else " waiting for a slot"
            lines.append(
                Text(
                    f"  {job_id}: setting {job.setting_id}, iteration {job.iteration}, "
                    f"attempt {job.attempt}, {format_duration(now - job.submitted_at)}{native}",
                    style="dim",
                )
            )
        if len(jobs) > N_JOBS_SHOWN:
            lines.append(Text(f"  … and {len(jobs) - N_JOBS_SHOWN} more", style="dim"))
        return Group(*lines)

    # -- life --------------------------------------------------------------------
    @contextmanager
    def shown(self) -> Iterator[Progress]:
        """Show the display while the run lasts; log records go above the live area."""
        if not self.options.live:
            yield self
            return
        from rich.live import Live

        with Live(
            self, console=self.console, refresh_per_second=4, transient=True, redirect_stderr=False
        ) as live:
            self._live = live
            with _logs_through(self.console):
                try:
                    yield self
                finally:
                    self._live = None
        self.stream.write(f"[hpoptim] {self.summary_line()}\n")
        self.stream.flush()


@contextmanager
def _logs_through(console: Console) -> Iterator[None]:
    """Route the ``hpoptim`` logger's console handler through ``console`` (so log lines
    appear above the live area instead of tearing it)."""
    logger = logging.getLogger("hpoptim")
    handlers = [
        h
        for h in logger.handlers
        if type(h) is logging.StreamHandler and h.stream in (sys.stderr, console.file)
    ]
    proxy = _ConsoleWriter(console)
    old = [h.setStream(proxy) for h in handlers]
    try:
        yield
    finally:
        for h, stream in zip(handlers, old, strict=True):
            h.setStream(stream)


class _ConsoleWriter:
    """A file-like object whose lines are printed through a rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> int:
        if text.strip():
            from rich.text import Text

            self.console.print(Text(text.rstrip("\n")))
        return len(text)

    def flush(self) -> None:
        pass
