"""Where a run stands, read from its journal without disturbing it: ``hpoptim status``/``ls``.

Nothing here takes the run's lock or writes a file; a driver (this user's or
another's, on this machine or a Slurm node) may be running the run meanwhile.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpoptim.errors import HpoptimError
from hpoptim.jobstate import JobState
from hpoptim.results.provenance import run_provenance
from hpoptim.results.ranking import ranked
from hpoptim.results.saved import lifecycle_of, read_saved_config
from hpoptim.state.events import EventKind, StopCause, stop_cause
from hpoptim.state.history import RunHistory, load_history
from hpoptim.state.provenance import Provenance
from hpoptim.state.storage import LockHolder, ResultsLayout, probe_lock

N_FAILURES_SHOWN = 5
N_STDERR_LINES = 3
_SUCCESS = (JobState.COMPLETED.value, JobState.RESUME.value)


class RunState(enum.Enum):
    """What a run's driver is doing, as far as its directory tells."""

    RUNNING = "running"  # a driver holds the run's lock
    COMPLETE = "complete"  # the budget was spent
    FAILED = "failed"  # stopped because too many settings failed
    STOPPED = "stopped"  # interrupted, or its driver died; `hpoptim resume` continues it


@dataclass(frozen=True)
class ActiveJob:
    """A job submitted and not ended (per the journal)."""

    job_id: str
    setting_id: int
    rerun: int
    iteration: int
    attempt: int
    age_s: float
    native_id: str


@dataclass(frozen=True)
class Failure:
    """A failed attempt: its reason and the last meaningful lines of its stderr."""

    job_id: str
    setting_id: int
    reason: str
    stderr: tuple[str, ...]


@dataclass(frozen=True)
class RunStatus:
    """Counts, active jobs, failures, best value and driver of one run."""

    root: Path
    state: RunState
    n_samples: int
    n_complete: int
    n_failed: int
    n_running: int
    n_queued: int
    metric: str | None  # None: the run only collects metrics
    best: tuple[float, int] | None
    active: tuple[ActiveJob, ...]
    failures: tuple[Failure, ...]
    driver: LockHolder | None
    last_driver: LockHolder | None
    stop_reason: str
    n_stopped: int = 0  # stopped early; neither complete nor failed
    provenance: Provenance | None = None  # what the jobs run (None: not started)

    @property
    def n_finished(self) -> int:
        return self.n_complete + self.n_failed + self.n_stopped

    def progress(self) -> str:
        return f"{self.n_finished}/{self.n_samples}"

    def best_text(self) -> str:
        if self.metric is None:
            return "- (no metric to optimise)"
        if self.best is None:
            return "-"
        return f"{self.best[0]:.6g} (setting {self.best[1]})"


def run_status(root: Path, now: float | None = None) -> RunStatus:
    """Read the status of the run in ``root``.

    Raises:
        StorageError: ``root`` holds no run, or its journal is corrupt.
    """
    layout = ResultsLayout(Path(root).resolve())
    config = read_saved_config(layout)
    history, events = load_history(layout.journal, lifecycle_of(config))
    driver = probe_lock(layout.lock_file)
    minimize = config.get("minimize") is not False
    order = ranked(history, config["metric_to_optimize"], minimize=minimize)
    best = None
    if order and order[0].result is not None and order[0].result.value is not None:
        best = (order[0].result.value, order[0].setting_id)
    state, reason = _state(events, driver)
    running = {j.setting_id for j in history.active_jobs()}
    unfinished = [s for s in history.settings.values() if s.result is None]
    return RunStatus(
        root=layout.root,
        state=state,
        n_samples=int(config.get("number_of_samples", history.n_asked)),
        n_complete=history.n_finished - history.n_failed_settings - history.n_stopped_settings,
        n_failed=history.n_failed_settings,
        n_stopped=history.n_stopped_settings,
        n_running=sum(1 for s in unfinished if s.setting_id in running),
        n_queued=sum(1 for s in unfinished if s.setting_id not in running),
        metric=config["metric_to_optimize"],
        best=best,
        active=_active(history, time.time() if now is None else now),
        failures=_failures(events),
        driver=driver,
        last_driver=_last_driver(events),
        stop_reason=reason,
        provenance=run_provenance(history),
    )


_DRIVER_STARTS = (EventKind.RUN_STARTED, EventKind.DRIVER_STARTED)


def _state(events: list[dict[str, Any]], driver: LockHolder | None) -> tuple[RunState, str]:
    if driver is not None:
        return RunState.RUNNING, ""
    for event in reversed(events):
        kind = event["e"]
        if kind == EventKind.FINISHED:
            return RunState.COMPLETE, ""
        if kind == EventKind.STOPPED:
            reason = str(event.get("reason", ""))
            failed = stop_cause(event) is StopCause.FAILURES
            return (RunState.FAILED if failed else RunState.STOPPED), reason
        if kind in _DRIVER_STARTS:
            break
    return RunState.STOPPED, "its driver ended without a word (killed, or its machine was lost)"


def _active(history: RunHistory, now: float) -> tuple[ActiveJob, ...]:
    return tuple(
        ActiveJob(
            j.job_id,
            j.setting_id,
            j.rerun,
            j.iteration,
            j.attempt,
            now - j.submitted_at,
            j.native_id,
        )
        for j in history.active_jobs()
    )


def _failures(events: Iterable[Mapping[str, Any]]) -> tuple[Failure, ...]:
    found = []
    for ev in events:
        if ev["e"] != EventKind.ENDED or (ev.get("state") in _SUCCESS and not ev.get("problem")):
            continue
        reason = str(ev.get("problem") or ev.get("reason") or ev.get("state"))
        lines = [ln for ln in str(ev.get("stderr") or "").splitlines() if ln.strip()]
        found.append(
            Failure(
                str(ev["job"]),
                int(str(ev["job"]).split("_")[0]),
                reason,
                tuple(ln[:200] for ln in lines[-N_STDERR_LINES:]),
            )
        )
    return tuple(found[-N_FAILURES_SHOWN:])


def _last_driver(events: list[dict[str, Any]]) -> LockHolder | None:
    for event in reversed(events):
        if event["e"] in _DRIVER_STARTS and isinstance(event.get("pid"), int):
            return LockHolder(event["pid"], str(event.get("host") or ""), event.get("t"))
    return None


def render_status(status: RunStatus, now: float | None = None) -> str:
    """The text ``hpoptim status`` prints."""
    s = status
    now = time.time() if now is None else now
    if s.driver is not None:
        since = "" if s.driver.since is None else f", for {format_duration(now - s.driver.since)}"
        driver = f"driver running: {s.driver.describe()}{since}"
    else:
        last = f" (last driver: {s.last_driver.describe()})" if s.last_driver else ""
        driver = f"no driver is running{last}"
    head = f"{s.root}: {s.state.value}" + (f" ({s.stop_reason})" if s.stop_reason else "")
    lines = [
        head,
        driver,
        f"settings: {s.n_complete} complete, {s.n_failed} failed, "
        + (f"{s.n_stopped} stopped early, " if s.n_stopped else "")
        + f"{s.n_running} running, "
        f"{s.n_queued} queued; {s.n_finished} of {s.n_samples} finished",
        f"best {s.metric}: {s.best_text()}",
    ]
    if s.provenance is not None:
        lines += s.provenance.lines()
    if s.active:
        title = "running jobs" if s.driver is not None else "jobs in flight when the driver stopped"
        lines.append(f"{title}:")
        lines += [
            f"  {j.job_id}: setting {j.setting_id}, rerun {j.rerun}, iteration {j.iteration}, "
            f"attempt {j.attempt}, age {format_duration(j.age_s)}, "
            f"id {j.native_id or 'not started yet'}"
            for j in s.active
        ]
    if s.failures:
        lines.append("last failures:")
        for f in s.failures:
            lines.append(f"  {f.job_id} (setting {f.setting_id}): {f.reason}")
            lines += [f"    | {line}" for line in f.stderr]
    return "\n".join(lines)


@dataclass(frozen=True)
class DamagedRun:
    """A run under a results directory whose config or journal cannot be read."""

    root: Path
    problem: str


def list_runs(results_dir: Path) -> list[RunStatus | DamagedRun]:
    """The status of every run directly under ``results_dir`` (sorted by name).

    A directory holding a ``config.json`` or a ``journal.jsonl`` is a run; one that
    cannot be read (damaged journal or config, a FIFO in their place, no permission)
    is listed as a :class:`DamagedRun` and the others are listed all the same.
    """
    found: list[RunStatus | DamagedRun] = []
    for child in sorted(Path(results_dir).iterdir()):
        names = (child / "config.json", child / "journal.jsonl")
        if not child.is_dir() or not any(os.path.lexists(p) for p in names):
            continue
        try:
            found.append(run_status(child))
        except (HpoptimError, OSError) as exc:
            found.append(DamagedRun(child.resolve(), str(exc)))
    return found


def render_runs(runs: Sequence[RunStatus | DamagedRun]) -> str:
    """The table ``hpoptim ls`` prints."""
    if not runs:
        return "no runs"
    rows = [("run", "state", "progress", "failed", "best")]
    for r in runs:
        if isinstance(r, DamagedRun):
            rows.append((r.root.name, "damaged", "-", "-", r.problem))
        else:
            best = f"{r.metric} {r.best_text()}"
            rows.append((r.root.name, r.state.value, r.progress(), str(r.n_failed), best))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ).rstrip()


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
