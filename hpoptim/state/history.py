"""The run's state as a fold over journal events.

The same :meth:`RunHistory.apply` builds the state live (the driver appends an
event, then applies it) and on resume or for reports (replaying the journal), so
what a resumed driver knows is exactly what the killed one had journaled.

Events (``"e"`` field, an :class:`~hpoptim.state.events.EventKind`) and their fields:

* ``run_started`` / ``driver_started``: seed, versions, checkout, the journal's
  format (``journal_format``); informational.
* ``asked``: ``sid``, ``params`` — a new setting.
* ``submitted``: ``job``, ``sid``, ``rerun``, ``it``, ``att``, ``dir``, ``t``.
* ``native_ids``: ``ids`` — launcher ids of submitted jobs.
* ``launched``: ``jobs``, ``t`` — jobs journaled ahead of a free slot were handed to
  the launcher at ``t``, which becomes their submission time.
* ``ended``: ``job``, ``state``, ``exit_code``, ``signal``, ``reason``, ``metrics``,
  ``problem``, ``stderr``, ``t``.
* ``abandoned``: ``job`` — in flight when a driver died, not followed again, or
  cancelled by a stopping driver; its rerun is started again without counting a
  failed attempt.
* ``cancelling``: ``jobs`` — a stopping driver is about to cancel these jobs; if one
  of them is later seen ending other than completed (or to be resumed), it is
  ``abandoned``, not failed.
* ``judged``: ``sid``, ``it``, ``value``, ``stop`` — with early stopping, every rerun of
  the setting ended iteration ``it`` (or failed); ``value`` is their mean there and
  ``stop`` the rule's decision: the reruns start iteration ``it + 1``, or are done.
* ``setting_finished``: ``sid``, ``result`` — all reruns done; the sampler is told.
* ``stopped`` / ``finished``: ``reason``, and for ``stopped`` its ``cause`` (a
  :class:`~hpoptim.state.events.StopCause`; absent in journals written before it);
  informational.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import shutil
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpoptim.contract import SETUP_ERROR_EXIT_CODE
from hpoptim.errors import StorageError
from hpoptim.jobstate import JobState
from hpoptim.log import get_logger
from hpoptim.state.events import JOB_STATES, EventKind, InvalidEventError, event_problem
from hpoptim.state.setting import SettingResult, SettingState
from hpoptim.state.storage import JournalLine, scan_journal, write_text_atomic

logger = get_logger(__name__)

MAX_OPEN_RESUMES = 100
"""How often a job is started again after exit code 3 when ``training_iterations`` is
not set (cluster_utils' ``exit_for_resume``); the last time, exit code 3 counts as
finished (with its metrics), as at the last of the configured training iterations."""


@dataclass(frozen=True)
class Lifecycle:
    """The rules that turn job endings into retries, iterations and outcomes."""

    metric: str | None  # None: the run only collects metrics (grid search)
    n_reruns: int = 1
    max_attempts: int = 3
    training_iterations: int = 1
    #: Early stopping: a rerun that ended an iteration waits for a ``judged`` event
    #: (every rerun of its setting at that boundary) before its next iteration.
    judge_iterations: bool = False


@dataclass
class JobRecord:
    """One process: a (setting, rerun, iteration, attempt) in its own run dir."""

    job_id: str
    setting_id: int
    rerun: int
    iteration: int
    attempt: int
    run_dir: str
    submitted_at: float
    native_id: str = ""
    ended_at: float | None = None
    state: str = JobState.PENDING.value
    exit_code: int | None = None
    signal: int | None = None
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.ended_at is None and self.state != "abandoned"


@dataclass
class RerunState:
    """Progress of one rerun of a setting through iterations and attempts."""

    rerun: int
    iteration: int = 0
    next_attempt: int = 0
    failures: int = 0
    previous_run_dir: str | None = None
    done: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    n_attempts: int = 0
    waiting: bool = False  # ended an iteration; waits to be judged (early stopping)
    values: dict[int, float] = field(default_factory=dict)  # iteration -> its metric

    @property
    def ok(self) -> bool:
        return self.done and not self.reason


@dataclass
class SettingRecord:
    """A parameter setting and its reruns."""

    setting_id: int
    params: dict[str, Any]
    reruns: list[RerunState]
    result: SettingResult | None = None
    stop_judged_at: int | None = None  # the iteration after which early stopping stopped it

    @property
    def all_reruns_done(self) -> bool:
        return all(r.done for r in self.reruns)

    @property
    def state(self) -> SettingState:
        return SettingState.RUNNING if self.result is None else self.result.state

    @property
    def stopped_at(self) -> int | None:
        """The last iteration (0-based) of a setting stopped early (None: not stopped)."""
        return None if self.result is None else self.result.stopped_at

    def due_judgment(self) -> int | None:
        """The iteration every rerun has ended (or failed), if some wait to be judged."""
        waiting = [r for r in self.reruns if r.waiting]
        if not waiting or not all(r.waiting or r.done for r in self.reruns):
            return None
        return waiting[0].iteration

    def iteration_value(self, iteration: int) -> float | None:
        """Mean of the waiting reruns' values at ``iteration`` (None: none reported one)."""
        values = [r.values[iteration] for r in self.reruns if r.waiting and iteration in r.values]
        return sum(values) / len(values) if values else None


class RunHistory:
    """Everything known about a run, folded from its events."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.settings: dict[int, SettingRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.ready: deque[tuple[int, int]] = deque()
        self.finished_order: list[int] = []
        self.n_failed_settings = 0
        self.n_stopped_settings = 0  # stopped early; never counted as failed
        self.run_info: dict[str, Any] = {}

    # -- queries -----------------------------------------------------------------
    @property
    def n_asked(self) -> int:
        return len(self.settings)

    @property
    def n_finished(self) -> int:
        return len(self.finished_order)

    def active_jobs(self) -> list[JobRecord]:
        return [j for j in self.jobs.values() if j.active]

    def n_active_settings(self) -> int:
        return sum(1 for s in self.settings.values() if s.result is None)

    def due_judgments(self) -> list[int]:
        """Settings whose reruns all ended an iteration that was not judged yet."""
        return [
            sid
            for sid, s in self.settings.items()
            if s.result is None and s.due_judgment() is not None
        ]

    def unfinalized(self) -> list[int]:
        """Settings whose reruns are all done but whose result is not journaled."""
        return [sid for sid, s in self.settings.items() if s.result is None and s.all_reruns_done]

    # -- the fold ----------------------------------------------------------------
    def replay(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Apply events in order.

        A fresh history given :class:`CheckedEvents` takes over the state they were
        folded into when loaded, instead of checking and folding them a second time.
        """
        with _gc_paused():
            if isinstance(events, CheckedEvents) and self._is_fresh():
                n_done = self._take_over(events)
                events = itertools.islice(events, n_done, None)  # added since: checked
            for event in events:
                self.apply(event)

    def _is_fresh(self) -> bool:
        return not (self.settings or self.jobs or self.ready or self.run_info)

    def _take_over(self, events: CheckedEvents) -> int:
        """Become the history ``events`` were folded into; the number of them it holds."""
        folded, events.folded = events.folded, None  # taken over once, never shared
        if folded is None or folded[0].lifecycle != self.lifecycle:
            return 0
        vars(self).update(vars(folded[0]))
        return folded[1]

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one event into the state.

        Raises:
            InvalidEventError: The event lacks a field, has one of the wrong type, or
                names a setting or job this history does not know (nothing is changed).
        """
        problem = event_problem(event) or self._reference_problem(event)
        if problem:
            raise InvalidEventError(problem)
        self._fold(event)

    def _fold(self, event: Mapping[str, Any]) -> None:
        handler = _HANDLERS.get(event["e"])
        if handler is not None:
            handler(self, event)

    def _reference_problem(self, ev: Mapping[str, Any]) -> str:
        """Why ``ev`` does not fit what came before ("" if it does)."""
        kind = ev["e"]
        if kind in _SETTING_EVENTS:
            sid = ev["sid"]
            setting = self.settings.get(sid)
            if kind == _ASKED:
                return f"setting {sid} was asked before" if setting else ""
            if setting is None:
                return f"setting {sid} was never asked"
            if kind == _SETTING_FINISHED:
                return f"setting {sid} has finished before" if setting.result else ""
            if kind == _JUDGED:
                due = setting.due_judgment() == ev["it"]
                return "" if due else f"setting {sid} is not due at iteration {ev['it']}"
            if not 0 <= ev["rerun"] < len(setting.reruns):
                return f"setting {sid} has no rerun {ev['rerun']}"
            return f"job {ev['job']!r} was submitted before" if ev["job"] in self.jobs else ""
        if kind == _RETRY_FAILED:
            unknown = [s for s in ev["sids"] if not isinstance(s, int) or s not in self.settings]
            return f"retry of settings never asked: {unknown}" if unknown else ""
        if kind in (_ENDED, _ABANDONED) and ev["job"] not in self.jobs:
            return f"job {ev['job']!r} was never submitted"
        if kind == _ENDED and ev["state"] not in JOB_STATES:
            return f"unknown job state {ev['state']!r}"
        return ""

    def _on_run_started(self, ev: Mapping[str, Any]) -> None:
        self.run_info = {k: v for k, v in ev.items() if k != "e"}

    def _on_asked(self, ev: Mapping[str, Any]) -> None:
        sid = int(ev["sid"])
        reruns = [RerunState(r) for r in range(self.lifecycle.n_reruns)]
        self.settings[sid] = SettingRecord(sid, dict(ev["params"]), reruns)
        self.ready.extend((sid, r) for r in range(self.lifecycle.n_reruns))

    def _on_submitted(self, ev: Mapping[str, Any]) -> None:
        rec = JobRecord(
            job_id=ev["job"],
            setting_id=int(ev["sid"]),
            rerun=int(ev["rerun"]),
            iteration=int(ev["it"]),
            attempt=int(ev["att"]),
            run_dir=ev["dir"],
            submitted_at=float(ev["t"]),
        )
        self.jobs[rec.job_id] = rec
        rerun = self.settings[rec.setting_id].reruns[rec.rerun]
        rerun.next_attempt = rec.attempt + 1
        rerun.n_attempts += 1
        _discard(self.ready, (rec.setting_id, rec.rerun))

    def _on_native_ids(self, ev: Mapping[str, Any]) -> None:
        for job_id, native in ev["ids"].items():
            if job_id in self.jobs:
                self.jobs[job_id].native_id = str(native)

    def _on_launched(self, ev: Mapping[str, Any]) -> None:
        for job_id in ev["jobs"]:
            if job_id in self.jobs:
                self.jobs[job_id].submitted_at = float(ev["t"])

    def _on_abandoned(self, ev: Mapping[str, Any]) -> None:
        rec = self.jobs[ev["job"]]
        rec.state = "abandoned"
        rerun = self.settings[rec.setting_id].reruns[rec.rerun]
        rerun.n_attempts -= 1
        self.ready.append((rec.setting_id, rec.rerun))

    def _on_cancelling(self, ev: Mapping[str, Any]) -> None:
        for job_id in ev["jobs"]:
            if job_id in self.jobs:
                self.jobs[job_id].cancel_requested = True

    def _on_ended(self, ev: Mapping[str, Any]) -> None:
        rec = self.jobs[ev["job"]]
        rec.ended_at = float(ev["t"])
        rec.state = ev["state"]
        rec.exit_code = ev.get("exit_code")
        rec.signal = ev.get("signal")
        rec.reason = ev.get("reason", "")
        rec.metrics = dict(ev.get("metrics") or {})
        rerun = self.settings[rec.setting_id].reruns[rec.rerun]
        if rec.metrics:
            rerun.metrics = rec.metrics
            metric = self.lifecycle.metric
            value = None if metric is None else rec.metrics.get(metric)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rerun.values[rec.iteration] = float(value)
        self._advance(rec, rerun, JobState(ev["state"]), ev.get("problem", ""))

    def _advance(self, rec: JobRecord, rerun: RerunState, state: JobState, problem: str) -> None:
        lc = self.lifecycle
        last_iteration = rec.iteration + 1 >= lc.training_iterations
        if lc.training_iterations == 1:  # no chain configured: exit 3 asks to be started again
            last_iteration = rec.iteration + 1 >= MAX_OPEN_RESUMES
        if state is JobState.RESUME and not last_iteration:
            rerun.previous_run_dir = rec.run_dir
            if lc.judge_iterations:
                rerun.waiting = True  # the next iteration starts once it is judged
            else:
                self._start_next_iteration(rec.setting_id, rerun)
            return
        if state in (JobState.COMPLETED, JobState.RESUME) and not problem:
            rerun.done = True
            return
        if rec.exit_code == SETUP_ERROR_EXIT_CODE:
            # The job could not set itself up: every attempt would fail the same way, so
            # the loop stops the run; it is not a failed attempt, and `hpoptim resume`
            # (after the fix) starts this run again.
            self.ready.append((rec.setting_id, rec.rerun))
            return
        rerun.failures += 1
        why = rec.reason
        if state in (JobState.COMPLETED, JobState.RESUME):
            # it exited cleanly but left no usable metric: that attempt failed
            why = problem
            rec.state = JobState.FAILED.value
        rec.reason = why
        if rerun.failures >= lc.max_attempts:
            rerun.done = True
            rerun.reason = f"{rerun.failures} attempt(s) failed; last: {why}"
        else:
            self.ready.append((rec.setting_id, rec.rerun))

    def _on_judged(self, ev: Mapping[str, Any]) -> None:
        setting = self.settings[int(ev["sid"])]
        if ev["stop"]:
            setting.stop_judged_at = int(ev["it"])
        for rerun in setting.reruns:
            if not rerun.waiting:
                continue
            rerun.waiting = False
            if ev["stop"]:
                rerun.done = True
            else:
                self._start_next_iteration(setting.setting_id, rerun)

    def _start_next_iteration(self, sid: int, rerun: RerunState) -> None:
        rerun.iteration += 1
        rerun.next_attempt = 0
        rerun.failures = 0
        self.ready.append((sid, rerun.rerun))

    def _on_retry_failed(self, ev: Mapping[str, Any]) -> None:
        """``hpoptim resume --retry-failed``: each failed setting runs its failed reruns
        again from the iteration they failed in, in new attempts (new directories); its
        successful reruns are kept, and the setting is finished again when they end."""
        for sid in ev["sids"]:
            setting = self.settings[sid]
            if setting.result is None or setting.result.state is not SettingState.FAILED:
                continue
            setting.result = None
            self.finished_order.remove(sid)
            self.n_failed_settings -= 1
            for rerun in setting.reruns:
                if rerun.done and rerun.reason:
                    rerun.done, rerun.failures, rerun.reason = False, 0, ""
                    self.ready.append((sid, rerun.rerun))

    def _on_setting_finished(self, ev: Mapping[str, Any]) -> None:
        setting = self.settings[int(ev["sid"])]
        setting.result = SettingResult.from_dict(ev["result"])
        self.finished_order.append(setting.setting_id)
        if setting.result.state is SettingState.FAILED:
            self.n_failed_settings += 1
        elif setting.result.stopped_at is not None:
            self.n_stopped_settings += 1

    # -- outcomes ----------------------------------------------------------------
    def aggregate(self, setting_id: int) -> SettingResult:
        """The result of a setting whose reruns are all done."""
        setting = self.settings[setting_id]
        at = setting.stop_judged_at
        # stopped early: each rerun's metrics of the iteration it was stopped after (a
        # rerun that reported no value there did not report the metric)
        ok = [r.metrics if at is None or at in r.values else {} for r in setting.reruns if r.ok]
        failed = [r for r in setting.reruns if not r.ok]
        reason = failed[0].reason if failed else ""
        result = SettingResult.aggregate(self.lifecycle.metric, ok, len(failed), reason)
        return result if at is None else replace(result, stopped_at=at)


# The fold compares kinds as plain strings, equal to EventKind's members: comparing a
# str with a member of a str enum takes a slower path, and these run for every event.
_ASKED, _SUBMITTED, _SETTING_FINISHED, _JUDGED, _RETRY_FAILED, _ENDED, _ABANDONED = (
    k.value
    for k in (
        EventKind.ASKED,
        EventKind.SUBMITTED,
        EventKind.SETTING_FINISHED,
        EventKind.JUDGED,
        EventKind.RETRY_FAILED,
        EventKind.ENDED,
        EventKind.ABANDONED,
    )
)
_SETTING_EVENTS = frozenset((_ASKED, _SUBMITTED, _SETTING_FINISHED, _JUDGED))
_HANDLERS = {  # the fold of each kind: ``_on_<kind>`` (a ValueError here names no kind)
    EventKind(name.removeprefix("_on_")).value: handler
    for name, handler in vars(RunHistory).items()
    if name.startswith("_on_")
}


class CheckedEvents(list[dict[str, Any]]):
    """Events as :func:`load_events` returns them, with the history they were checked by
    folding them into.

    Attributes:
        folded: The history they were folded into and how many of them it holds, kept
            by :func:`load_events` (which returns no history) for one fresh
            :class:`RunHistory` to take over.
    """

    def __init__(self) -> None:
        super().__init__()
        self.folded: tuple[RunHistory, int] | None = None


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a journal is folded in one go.

    The fold allocates containers that all live on (events and records, hundreds of
    thousands for a long run); each full collection on the way would walk all of
    them again, for nothing. Reference counting still frees everything else.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_events(path: Path, lifecycle: Lifecycle) -> list[dict[str, Any]]:
    """The events of the journal at ``path``, each checked by folding it into a history
    (see :func:`load_history`), which the first history to replay them takes over."""
    history, events = load_history(path, lifecycle)
    events.folded = (history, len(events))
    return events


def load_history(path: Path, lifecycle: Lifecycle) -> tuple[RunHistory, CheckedEvents]:
    """The history folded from the journal at ``path``, and its events, each checked.

    A torn or garbled last line (a driver killed mid-write) is ignored.

    Raises:
        StorageError: A line before the last is not JSON, or is not an event that fits
            the ones before it; the message names the line and how to recover.
        OSError: The journal cannot be read.
    """
    history = RunHistory(lifecycle)
    events = CheckedEvents()
    with _gc_paused():
        for line in scan_journal(path):
            problem = _line_problem(history, line)
            if not problem:
                assert line.event is not None  # _line_problem checked it
                events.append(line.event)
            elif line.last and line.event is None:
                logger.warning("ignoring a corrupt last line in %s", path)
            else:
                raise StorageError(
                    f"{path} line {line.lineno} {problem}: {line.text[:80]!r}; "
                    f"'hpoptim report --repair {path.parent}' keeps the {len(events)} "
                    "event(s) before it and moves the damaged journal aside",
                    path,
                )
    return history, events


@dataclass(frozen=True)
class JournalRepair:
    """What :func:`repair_journal` did.

    Attributes:
        n_kept: Events kept (the intact prefix).
        n_dropped: Lines dropped, from the first bad one to the end (0: nothing to do).
        problem: What is wrong with the first dropped line.
        backup: Where the damaged journal was moved (``None`` if it was intact).
    """

    n_kept: int
    n_dropped: int = 0
    problem: str = ""
    backup: Path | None = None


def repair_journal(path: Path, lifecycle: Lifecycle) -> JournalRepair:
    """Keep the journal's events up to the first bad line; move the damaged one aside.

    The damaged journal is kept whole as ``journal.jsonl.damaged-N`` next to it; the
    journal is then replaced, atomically, by its intact prefix.
    """
    history = RunHistory(lifecycle)
    lines = list(scan_journal(path))
    bad = next(
        ((i, line, p) for i, line in enumerate(lines) if (p := _line_problem(history, line))),
        None,
    )
    if bad is None:
        return JournalRepair(n_kept=len(lines))
    index, line, problem = bad
    backup = _free_name(path, ".damaged")
    try:
        os.link(path, backup)
    except OSError:
        shutil.copy2(path, backup)
    kept = "".join(f"{ln.text}\n" for ln in lines[:index])
    write_text_atomic(path, kept, private=True)
    return JournalRepair(index, len(lines) - index, f"line {line.lineno} {problem}", backup)


def _line_problem(history: RunHistory, line: JournalLine) -> str:
    """Why ``line`` cannot be folded into ``history`` ("" once it has been)."""
    if line.event is None:
        return "is not a JSON object"
    try:
        history.apply(line.event)
    except (InvalidEventError, KeyError, TypeError, ValueError, IndexError) as exc:
        return f"is not a valid event ({exc})"
    return ""


def _free_name(path: Path, suffix: str) -> Path:
    n = 1
    while (candidate := path.with_name(f"{path.name}{suffix}-{n}")).exists():
        n += 1
    return candidate


def _discard(queue: deque[tuple[int, int]], item: tuple[int, int]) -> None:
    with contextlib.suppress(ValueError):
        queue.remove(item)
