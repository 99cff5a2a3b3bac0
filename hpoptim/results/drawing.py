"""Keeping ``report.html`` current during a run: a throttled child process draws it.

Kept apart from :mod:`hpoptim.results.html` so that the driver imports neither
pandas nor matplotlib: the child process (``hpoptim report --html-only``) does.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from hpoptim.state.history import RunHistory, SettingRecord

HTML_NAME = "report.html"


class Drawing(Protocol):
    """A drawing of the report under way: a child process (see :class:`HtmlReporter`)."""

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


def spawn_drawing(root: Path) -> Drawing:
    """Start ``hpoptim report --html-only ROOT`` in its own process (errors go to the log)."""
    with open(root / "hpoptim.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpoptim", "report", "--html-only", str(root), "-q"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    # Reaped by a daemon thread: no zombie while the driver runs, and the driver
    # may exit without waiting (the drawing then finishes on its own).
    threading.Thread(target=proc.wait, name="report-drawing", daemon=True).start()
    return proc


class HtmlReporter:
    """Keeps ``report.html`` current during a run, drawn by a child process.

    Drawing takes a second or more (matplotlib, and more points as the run grows),
    so a child process does it from the journal and the loop never waits for it.
    A new drawing starts when a setting finishes, none is under way, at least
    ``min_interval_s`` passed since the last one started, and ``cost_factor`` times
    the last one's duration passed since it ended: drawing takes less than about
    ``1 / cost_factor`` of the machine however many settings the run has, so a
    long run never becomes quadratic.
    """

    def __init__(
        self,
        root: Path,
        *,
        min_interval_s: float = 60.0,
        cost_factor: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        spawn: Callable[[Path], Drawing] = spawn_drawing,
    ) -> None:
        self.root = root
        self.min_interval_s = min_interval_s
        self.cost_factor = cost_factor
        self.clock = clock
        self.spawn = spawn
        self._started = self._ended = clock()
        self._cost = 0.0
        self._drawing: Drawing | None = None

    def on_setting_finished(self, history: RunHistory, setting: SettingRecord) -> None:
        """Start a drawing if none is under way and the throttle allows one."""
        now = self.clock()
        if self._busy(now):
            return
        if (
            now - self._started >= self.min_interval_s
            and now - self._ended >= self.cost_factor * self._cost
        ):
            self._start(now)

    def _busy(self, now: float) -> bool:
        if self._drawing is None:
            return False
        if self._drawing.poll() is None:
            return True
        self._drawing = None
        self._ended, self._cost = now, now - self._started
        return False

    def _start(self, now: float) -> None:
        self._started = now
        self._drawing = self.spawn(self.root)

    def finish(self) -> Drawing:
        """The last drawing, started once any drawing under way ended; not waited for."""
        if self._drawing is not None:
            self._drawing.wait()
            self._drawing = None
        self._start(self.clock())
        assert self._drawing is not None
        return self._drawing
