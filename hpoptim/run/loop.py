"""The optimisation loop: ask → JobSpec → submit → poll → collect → tell → journal.

The loop knows samplers and launchers only through their base classes. Every
decision is first written to the journal and folded into a
:class:`~hpoptim.state.history.RunHistory`; a driver killed at any point is resumed by
folding the journal again and restoring the sampler from it in one pass (see
:meth:`Optimization.resume_from`).

With ``deterministic_order`` the sampler is told results in ask order, and setting
``k`` is asked only once settings ``0 .. k - n_in_flight`` have been told: every
proposal then depends on the seed and the results alone, whatever order jobs finish in.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpoptim.config.stopping import EarlyStopping
from hpoptim.errors import LaunchError, RunFailedError, RunStoppedError, StorageError
from hpoptim.job import SETUP_ERROR_EXIT_CODE
from hpoptim.jobspec import (
    DEFAULT_RESOURCES,
    ContainerOptions,
    JobPaths,
    JobResources,
    JobSpec,
    JobState,
    JobStatus,
)
from hpoptim.launchers.base import BaseLauncher
from hpoptim.log import get_logger
from hpoptim.results.failure import with_cause
from hpoptim.results.output import metric_problem, read_metrics, stderr_tail
from hpoptim.run.early_stopping import EarlyStopper
from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.space import flatten, nest
from hpoptim.state.history import Lifecycle, RunHistory, SettingRecord
from hpoptim.state.setting import SettingResult, is_better
from hpoptim.state.storage import Journal, ResultsLayout, write_text_atomic

logger = get_logger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    """How many settings to run, how many at once, and when to stop."""

    n_samples: int
    n_in_flight: int
    n_completed_before_resubmit: int = 1
    minimize: bool = True
    max_failed_fraction: float = 0.5
    n_settings_before_failure_check: int = 5
    poll_timeout_s: float = 0.5
    seed: int = 0
    deterministic_order: bool = False


@dataclass(frozen=True)
class JobTemplate:
    """What every job of the run shares; the loop adds the per-job parts.

    Attributes:
        command: argv prefix; the params file path is appended (e.g. python, script).
        cwd: Working directory of every job (the checkout root or working dir).
        fixed_params: Nested fixed parameters, overlaid by the sampled ones.
        env: Extra environment variables.
        resources: CPUs, GPUs, memory, wall time of each job and the signal before it.
        container: Optional Singularity/Apptainer wrapping.
        binds: Extra host paths the container must see.
    """

    command: tuple[str, ...]
    cwd: Path
    fixed_params: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    resources: JobResources = DEFAULT_RESOURCES
    container: ContainerOptions | None = None
    binds: tuple[Path, ...] = ()


@dataclass(frozen=True)
class RunPlan:
    """Everything the loop needs to know that comes from the config."""

    settings: LoopSettings
    lifecycle: Lifecycle
    template: JobTemplate
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)


ProgressHook = Callable[[RunHistory, SettingRecord], None]
EventHook = Callable[[RunHistory, Mapping[str, Any]], None]
"""Told of every event the loop journals, after the history has applied it (the
console's progress display); it must be cheap, it runs inside the loop."""


class Optimization:
    """One run of the loop over a results directory.

    Args:
        plan: Budget, parallelism and stopping rules; reruns, attempts and
            iterations; the shared part of every job.
        sampler: Proposes settings; told once per finished setting.
        launcher: Runs the jobs.
        layout: The results directory.
        on_setting_finished: Called after each finished setting (reports, best jobs).
        on_event: Called after each journaled event (progress display).
    """

    def __init__(
        self,
        plan: RunPlan,
        sampler: BaseSampler,
        launcher: BaseLauncher,
        layout: ResultsLayout,
        on_setting_finished: ProgressHook | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.settings = plan.settings
        self.template = plan.template
        self.sampler = sampler
        self.launcher = launcher
        self.layout = layout
        self.history = RunHistory(plan.lifecycle)
        self.journal = Journal(layout.journal)
        self._hook = on_setting_finished
        self._on_event = on_event
        self._specs: dict[str, JobSpec] = {}
        self._prepared: list[JobSpec] = []  # journaled, synced and written; not yet submitted
        self._finished_since_refill = 0
        self._best: tuple[float, int] | None = None
        self._sampler_exhausted = False
        self._failure_base = (0, 0)  # (finished, failed) settings before this driver ran
        self._setup_error: str | None = None  # a job that could not set itself up stops the run
        self._reattached: set[str] = set()  # jobs an earlier driver started
        self._n_told_in_order = 0  # deterministic_order: settings 0 .. n - 1 were told
        self.stopper: EarlyStopper | None = None
        if plan.early_stopping.enabled and plan.lifecycle.judge_iterations:
            self.stopper = EarlyStopper(
                plan.early_stopping,
                n_iterations=plan.lifecycle.training_iterations,
                minimize=plan.settings.minimize,
            )

    # -- resume ------------------------------------------------------------------
    def resume_from(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Rebuild history and sampler state from journaled events.

        The sampler is restored in one pass from the settings asked and the results
        it had been told (in ask order with ``deterministic_order``, else in the order
        they finished), without asking it again.
        """
        self.history.replay(events)
        if self.stopper is not None:
            self.stopper.replay(events)
        history = self.history
        for sid in history.finished_order:
            self._note_best(history.settings[sid])
        order: Sequence[int] = history.finished_order
        if self.settings.deterministic_order:
            # what was due before the last ask (all finished then), the rest told later
            due = self._n_due(history.n_asked - 1) if history.n_asked else 0
            n = next((i for i in range(due) if history.settings[i].result is None), due)
            self._n_told_in_order = n
            order = range(n)
        self.sampler.restore(
            SamplerHistory(
                asked=tuple(history.settings[sid].params for sid in range(history.n_asked)),
                told=tuple((sid, _value(history.settings[sid])) for sid in order),
                stopped={
                    sid: at for sid in order if (at := history.settings[sid].stopped_at) is not None
                },
            )
        )

    def _n_due(self, n_asked: int) -> int:
        """How many settings, in ask order, are told before setting ``n_asked`` is asked."""
        return max(0, n_asked - self.settings.n_in_flight + 1)

    def _tell_due(self) -> bool:
        """Tell, in ask order, the results due before the next ask; False if one is missing."""
        due = self._n_due(self.history.n_asked)
        while self._n_told_in_order < due:
            setting = self.history.settings[self._n_told_in_order]
            if setting.result is None:
                return False
            self._tell(setting)
            self._n_told_in_order += 1
        return True

    def _reattach_or_abandon(self) -> None:
        """Follow in-flight jobs of the previous driver again, or restart them."""
        for rec in self.history.active_jobs():
            spec = self._build_spec(self.history.settings[rec.setting_id], rec.rerun, rec.attempt)
            if self.launcher.reattach(spec, rec.native_id):
                self._specs[rec.job_id] = spec
                self._reattached.add(rec.job_id)
                logger.info("re-attached to job %s (%s)", rec.job_id, rec.native_id)
                continue
            self._journal("abandoned", job=rec.job_id)
            logger.info("job %s was in flight when the driver stopped; restarting it", rec.job_id)

    # -- the loop ----------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> RunHistory:
        """Run until the budget is spent; returns the history.

        Raises:
            RunStoppedError: ``stop`` was set, too many settings failed, or a job could
                not set itself up (exit code 78).
            RunFailedError: The budget is spent and every setting failed.
        """
        stop = stop or threading.Event()
        self.journal.open()
        try:
            self._reattach_or_abandon()
            for sid in self.history.due_judgments():  # ended before the driver could judge
                self._judge(sid)
            for sid in self.history.unfinalized():
                self._finalize(sid)
            # A resumed run judges max_failed_fraction on the settings it finishes itself,
            # so a run stopped by failures continues once its script is fixed.
            self._failure_base = (self.history.n_finished, self.history.n_failed_settings)
            while not self._done():
                if stop.is_set():
                    raise RunStoppedError("interrupted")
                self._submit_prepared()  # first: a slot that freed up is refilled at once
                self._refill()
                self._submit_ready()
                statuses = self.launcher.poll(self.settings.poll_timeout_s)
                self._note_native_ids(statuses)
                for status in statuses:
                    self._on_status(status)
                self._check_failures()
            self._journal("finished", reason="budget spent")
        except BaseException as exc:
            self._stop_jobs(exc)
            raise
        finally:
            self.journal.close()
        if reason := failed_run_reason(self.history):
            raise RunFailedError(f"{reason}; see the job logs under {self.layout.jobs_dir}")
        return self.history

    def _done(self) -> bool:
        budget_spent = self.history.n_asked >= self.settings.n_samples or self._sampler_exhausted
        return budget_spent and self.history.n_active_settings() == 0

    def _stop_jobs(self, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, KeyboardInterrupt):  # a second Ctrl-C: abort at once
            if self.journal.is_open:
                self._journal("stopped", reason="aborted (second Ctrl-C)")
            return
        active = [job for job in self._specs if self.history.jobs[job].active]
        if active and isinstance(exc, LaunchError):
            # the launcher failed (e.g. Slurm out of reach): cancelling would fail alike,
            # and the jobs in flight are worth keeping; `resume` follows them again
            queued = sum(1 for job in active if self.history.jobs[job].native_id)
            unqueued = f"; {len(active) - queued} never reached it" if queued < len(active) else ""
            logger.warning("leaving %d job(s) in flight for 'hpoptim resume'%s", queued, unqueued)
        elif active:
            logger.warning("stopping: cancelling %d running job(s)", len(active))
            if self.journal.is_open:  # so that a resumed driver does not count them as failed
                self._journal("cancelling", jobs=active)
                self.journal.sync()
            try:
                self.launcher.cancel(active)
            except LaunchError as err:
                logger.warning("could not cancel all jobs: %s", err)
        if self.journal.is_open:
            self._journal("stopped", reason=reason)

    def _refill(self) -> None:
        s = self.settings
        in_flight = self.history.n_active_settings()
        if in_flight and self._finished_since_refill < s.n_completed_before_resubmit:
            return
        self._finished_since_refill = 0
        while in_flight < s.n_in_flight and self.history.n_asked < s.n_samples:
            if s.deterministic_order and not self._tell_due():
                break
            params = self.sampler.ask()
            if params is None:
                self._sampler_exhausted = True
                break
            self._journal("asked", sid=self.history.n_asked, params=params)
            in_flight += 1

    def _submit_ready(self) -> None:
        """Submit ready jobs as the launcher's capacity allows, and prepare some ahead.

        A job is prepared first: journaled, synced, its directory and params file
        written. Besides the jobs the launcher can take now, one job is prepared ahead
        for each job it runs, so that when one ends, the next is submitted at once,
        without waiting for a journal sync or a new directory.
        """
        capacity = self.launcher.capacity()
        n = len(self.history.ready)
        if capacity is not None:  # those it can take, and one for each it will run then
            n_running = len(self._specs) - len(self._prepared)
            n = min(n, 2 * capacity + n_running - len(self._prepared))
        if n > 0:
            self._submit_prepared(fresh=self._prepare(n))

    def _prepare(self, n: int) -> set[str]:
        """Prepare the first ``n`` ready jobs; return their ids."""
        jobs = []
        for _ in range(n):
            sid, rerun_idx = self.history.ready[0]
            setting = self.history.settings[sid]
            attempt = setting.reruns[rerun_idx].next_attempt
            spec = self._build_spec(setting, rerun_idx, attempt)
            while spec.paths.run_dir.exists():  # used by a driver whose journal tail was lost
                attempt += 1
                spec = self._build_spec(setting, rerun_idx, attempt)
            self._journal(
                "submitted",
                job=spec.job_id,
                sid=sid,
                rerun=rerun_idx,
                it=setting.reruns[rerun_idx].iteration,
                att=attempt,
                dir=str(spec.paths.run_dir),
                t=time.time(),
            )
            self._specs[spec.job_id] = spec
            jobs.append((spec, setting, rerun_idx, attempt))
        self.journal.sync()  # job ids and directories are never reused, even after a crash
        for spec, setting, rerun_idx, attempt in jobs:
            self._write_params(spec, setting, rerun_idx, attempt)
        specs = [job[0] for job in jobs]
        self._prepared += specs
        return {spec.job_id for spec in specs}

    def _submit_prepared(self, fresh: Collection[str] = ()) -> None:
        """Submit prepared jobs, oldest first, as far as the launcher's capacity allows.

        A job prepared ahead (not in ``fresh``) is journaled as ``launched`` now: its
        time in the CSVs and ``hpoptim status`` counts from here, not from its
        ``submitted`` event.
        """
        capacity = self.launcher.capacity()
        n = len(self._prepared) if capacity is None else min(capacity, len(self._prepared))
        if n <= 0:
            return
        specs, self._prepared = self._prepared[:n], self._prepared[n:]
        native = self.launcher.submit(specs)
        if waited := [spec.job_id for spec in specs if spec.job_id not in fresh]:
            self._journal("launched", jobs=waited, t=time.time())
        if ids := {job_id: n for job_id, n in native.items() if n}:
            self._journal("native_ids", ids=ids)

    def _note_native_ids(self, statuses: Sequence[JobStatus]) -> None:
        """Journal the native ids a launcher learned after submitting (a local job's
        pid, reported once it started), for ``hpoptim status`` and the jobs' CSV.
        Not synced on its own: a resumed driver finds its jobs by their run dirs."""
        ids = {
            s.job_id: s.native_id
            for s in statuses
            if s.native_id
            and s.job_id in self._specs
            and self.history.jobs[s.job_id].native_id != s.native_id
        }
        if ids:
            self._journal("native_ids", ids=ids)

    def _on_status(self, status: JobStatus) -> None:
        if not status.state.is_terminal or status.job_id not in self._specs:
            return
        spec = self._specs.pop(status.job_id)
        rec = self.history.jobs[status.job_id]
        if not rec.active:
            return
        if rec.cancel_requested and status.state not in (JobState.COMPLETED, JobState.RESUME):
            self._journal("abandoned", job=status.job_id)
            logger.info("job %s was cancelled when the driver stopped; restarting it", rec.job_id)
            return
        failures_before = self.history.settings[rec.setting_id].reruns[rec.rerun].failures
        output = read_metrics(spec.paths)
        problem = metric_problem(output, self.history.lifecycle.metric)
        tail = (
            "" if status.state in (JobState.COMPLETED, JobState.RESUME) else stderr_tail(spec.paths)
        )
        reason = with_cause(status.reason or _describe(status), tail)
        self._journal(
            "ended",
            job=status.job_id,
            state=status.state.value,
            exit_code=status.exit_code,
            signal=status.signal,
            reason=reason,
            metrics=output.metrics,
            problem=problem,
            stderr=tail,
            t=status.time or time.time(),
        )
        # A job started before this driver may have failed its setup before the user's
        # fix: it is started again like any setup error, without stopping this run.
        if (
            status.exit_code == SETUP_ERROR_EXIT_CODE
            and self._setup_error is None
            and status.job_id not in self._reattached
        ):
            last = tail.strip().splitlines()[-1] if tail.strip() else "no stderr"
            self._setup_error = (
                f"job {status.job_id} could not set itself up (exit code "
                f"{SETUP_ERROR_EXIT_CODE}): {last}; every job would fail the same way. "
                f"Fix it, then `hpoptim resume` starts that run again (log: {spec.paths.stderr})"
            )
        setting = self.history.settings[rec.setting_id]
        rerun = setting.reruns[rec.rerun]
        if rerun.failures > failures_before:
            logger.warning("job %s failed: %s", rec.job_id, rec.reason)
            if tail:
                logger.debug("stderr of %s:\n%s", rec.job_id, tail)
        if setting.due_judgment() is not None:
            self._judge(setting.setting_id)
        elif setting.all_reruns_done:
            self._finalize(setting.setting_id)

    def _judge(self, sid: int) -> None:
        """Every rerun of ``sid`` ended an iteration: the early-stopping rule decides on
        their mean whether they go on (the decision is journaled before anything runs)."""
        assert self.stopper is not None  # only a run with early stopping waits to be judged
        setting = self.history.settings[sid]
        iteration = setting.due_judgment()
        assert iteration is not None
        value = setting.iteration_value(iteration)
        stop = self.stopper.judge(sid, iteration + 1, value)
        self._journal("judged", sid=sid, it=iteration, value=value, stop=stop)
        if stop:
            logger.debug(
                "setting %d stopped early after iteration %d (%s=%.6g)",
                sid,
                iteration,
                self.history.lifecycle.metric,
                value,
            )
        if setting.all_reruns_done:
            self._finalize(sid)

    def _tell(self, setting: SettingRecord) -> None:
        result = setting.result
        assert result is not None
        if result.stopped_at is not None and result.value is not None:
            self.sampler.tell_stopped(setting.params, result.value, result.stopped_at)
        else:
            self.sampler.tell(setting.params, result.value)

    def _finalize(self, sid: int) -> None:
        result = self.history.aggregate(sid)
        self._journal("setting_finished", sid=sid, result=result.to_dict())
        setting = self.history.settings[sid]
        self._finished_since_refill += 1
        if self.stopper is not None:
            self.stopper.finished(sid, result.value, stopped=result.stopped_at is not None)
        if not self.settings.deterministic_order:
            self._tell(setting)
        self._note_best(setting)
        self._log_finished(setting, result)
        if self._hook is not None:
            self._hook(self.history, setting)

    def _note_best(self, setting: SettingRecord) -> None:
        value = _value(setting) if setting.stopped_at is None else None  # a partial run's
        if value is not None and (
            self._best is None or is_better(value, self._best[0], minimize=self.settings.minimize)
        ):
            self._best = (value, setting.setting_id)

    def _log_finished(self, setting: SettingRecord, result: SettingResult) -> None:
        """One DEBUG line per finished setting: shown with ``-v`` and in the log file."""
        done = f"[{self.history.n_finished}/{self.settings.n_samples}]"
        if result.value is None:
            logger.debug("%s setting %d failed: %s", done, setting.setting_id, result.reason)
            return
        best = self._best
        logger.debug(
            "%s setting %d: %s=%.6g (std %.3g, n=%d) %s; best %.6g (setting %d)",
            done,
            setting.setting_id,
            self.history.lifecycle.metric,
            result.value,
            result.std or 0.0,
            result.n_ok,
            format_params(setting.params),
            best[0] if best else float("nan"),
            best[1] if best else -1,
        )

    def _check_failures(self) -> None:
        if self._setup_error is not None:
            raise RunStoppedError(self._setup_error)
        s = self.settings
        base_done, base_failed = self._failure_base
        n_done = self.history.n_finished - base_done
        if n_done < s.n_settings_before_failure_check:
            return
        n_failed = self.history.n_failed_settings - base_failed
        if n_failed / n_done > s.max_failed_fraction:
            since = " since the run was resumed" if base_done else ""
            raise RunStoppedError(
                f"{n_failed} of {n_done} finished settings failed{since} "
                f"(more than max_failed_fraction={s.max_failed_fraction}); "
                f"see the job logs under {self.layout.jobs_dir}"
            )

    # -- jobs --------------------------------------------------------------------
    def _build_spec(self, setting: SettingRecord, rerun_idx: int, attempt: int) -> JobSpec:
        rerun = setting.reruns[rerun_idx]
        name = f"run_{rerun_idx}.{rerun.iteration}-{attempt}"
        run_dir = self.layout.setting_dir(setting.setting_id) / name
        job_id = f"{setting.setting_id}_{rerun_idx}.{rerun.iteration}-{attempt}"
        t = self.template
        paths = JobPaths(run_dir)
        env = {
            **t.env,
            "HPOPTIM_PARAMS_FILE": str(paths.params_file),
            "HPOPTIM_RUN_DIR": str(run_dir),
            "HPOPTIM_JOB_ID": job_id,
            "HPOPTIM_SETTING_ID": str(setting.setting_id),
            "HPOPTIM_RERUN": str(rerun_idx),
            "HPOPTIM_ITERATION": str(rerun.iteration),
            "HPOPTIM_ATTEMPT": str(attempt),
            "HPOPTIM_N_ITERATIONS": str(self.history.lifecycle.training_iterations),
            "HPOPTIM_SEED": str(self.job_seed(setting.setting_id, rerun_idx)),
            "HPOPTIM_PREVIOUS_RUN_DIR": rerun.previous_run_dir or "",
            "HPOPTIM_METRICS_FILE": str(paths.metrics_file),
        }
        return JobSpec(
            job_id=job_id,
            argv=(*t.command, str(paths.params_file)),
            cwd=t.cwd,
            paths=paths,
            env=env,
            resources=t.resources,
            container=t.container,
            binds=(*t.binds, self.layout.root),
        )

    def preview_spec(self, params: Mapping[str, Any]) -> JobSpec:
        """The spec the first job of a run proposing ``params`` first would get (setting
        0, rerun 0, attempt 0); nothing is journaled or written."""
        scratch = RunHistory(self.history.lifecycle)
        scratch.apply({"e": "asked", "sid": 0, "params": dict(params)})
        return self._build_spec(scratch.settings[0], 0, 0)

    def job_seed(self, setting_id: int, rerun: int) -> int:
        """Seed of a rerun: fixed by the run seed, the setting and the rerun index."""
        key = f"{self.settings.seed}:{setting_id}:{rerun}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") & 0x7FFFFFFF

    def _write_params(
        self, spec: JobSpec, setting: SettingRecord, rerun_idx: int, attempt: int
    ) -> None:
        rerun = setting.reruns[rerun_idx]
        context = {
            "job_id": spec.job_id,
            "setting_id": setting.setting_id,
            "rerun": rerun_idx,
            "iteration": rerun.iteration,
            "attempt": attempt,
            "n_iterations": self.history.lifecycle.training_iterations,
            "n_reruns": self.history.lifecycle.n_reruns,
            "metric": self.history.lifecycle.metric,
            "seed": self.job_seed(setting.setting_id, rerun_idx),
            "run_dir": str(spec.paths.run_dir),
            "setting_dir": str(spec.paths.run_dir.parent),
            "previous_run_dir": rerun.previous_run_dir,
            "metrics_file": str(spec.paths.metrics_file),
        }
        document = {
            "params": deep_merge(self.template.fixed_params, nest(setting.params)),
            "flat_params": {**flatten(self.template.fixed_params), **setting.params},
            "job": context,
        }
        spec.paths.run_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            spec.paths.run_dir.mkdir()
        except FileExistsError:
            raise StorageError(
                f"job directory {spec.paths.run_dir} already exists; a job directory is "
                "never reused (is another driver writing into this results directory?)",
                spec.paths.run_dir,
            ) from None
        write_text_atomic(spec.paths.params_file, json.dumps(document, indent=1))

    def _journal(self, event: str, **fields: Any) -> None:
        record = self.journal.append(event, **fields)
        self.history.apply(record)
        if self._on_event is not None:
            self._on_event(self.history, record)


def failed_run_reason(history: RunHistory) -> str:
    """Why a run that spent its budget counts as failed: every setting it finished
    failed ("" if one succeeded, or none finished)."""
    n = history.n_finished
    if not n or history.n_failed_settings < n:
        return ""
    last = history.settings[history.finished_order[-1]].result
    why = f" (last: {last.reason})" if last is not None and last.reason else ""
    return f"all {n} setting(s) failed{why}"


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, merging nested dicts key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def format_params(params: Mapping[str, Any]) -> str:
    """``a=0.0123, b=4, c='relu'``: floats with 4 significant digits."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in params.items()
    )


def _value(setting: SettingRecord) -> float | None:
    return None if setting.result is None else setting.result.value


def _describe(status: JobStatus) -> str:
    if status.state is JobState.COMPLETED:
        return "exit code 0"
    if status.state is JobState.RESUME:
        return "exit code 3 (to be resumed)"
    if status.signal is not None:
        return f"killed by signal {status.signal}"
    if status.exit_code is not None:
        return f"{status.state.value} with exit code {status.exit_code}"
    return str(status.state.value)
