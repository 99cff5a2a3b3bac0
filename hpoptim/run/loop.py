"""The optimisation loop: ask → JobSpec → submit → poll → collect → tell → journal.

The loop wires small parts, each testable on its own: the :class:`Dispatcher` decides
what runs next and submits it, the :class:`Intake` turns what the launcher reports into
journal events, :class:`Outcomes` judges and finishes settings, the
:class:`SamplerFeed` tells the sampler, and the :class:`JobFactory` builds each job.
They know samplers and launchers only through their base classes, and every decision
goes through one :class:`Recorder`: first written to the journal, then folded into a
:class:`~hpoptim.state.history.RunHistory`. A driver killed at any point is resumed by
folding the journal again and restoring the sampler from it in one pass (see
:meth:`Optimization.resume_from`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from hpoptim.errors import (
    JobSetupError,
    LaunchError,
    RunFailedError,
    RunStoppedError,
    TooManyFailuresError,
)
from hpoptim.jobspec import JobSpec
from hpoptim.launchers.base import BaseLauncher
from hpoptim.log import get_logger
from hpoptim.run.dispatch import Dispatcher
from hpoptim.run.early_stopping import EarlyStopper
from hpoptim.run.feed import SamplerFeed
from hpoptim.run.intake import Intake
from hpoptim.run.jobs import JobFactory, deep_merge
from hpoptim.run.outcomes import Outcomes, failed_run_reason, format_params
from hpoptim.run.plan import EventHook, JobTemplate, LoopSettings, ProgressHook, RunPlan
from hpoptim.run.recorder import Recorder
from hpoptim.samplers.base import BaseSampler
from hpoptim.state.events import EventKind, StopCause
from hpoptim.state.history import RunHistory
from hpoptim.state.storage import Journal, ResultsLayout

logger = get_logger(__name__)

__all__ = [
    "JobTemplate",
    "LoopSettings",
    "Optimization",
    "RunPlan",
    "deep_merge",
    "failed_run_reason",
    "format_params",
]


_CAUSES: tuple[tuple[type[BaseException], StopCause], ...] = (
    (KeyboardInterrupt, StopCause.ABORTED),  # a second Ctrl-C
    (TooManyFailuresError, StopCause.FAILURES),
    (JobSetupError, StopCause.SETUP_ERROR),
    (RunStoppedError, StopCause.INTERRUPTED),  # a signal or a stop request
    (LaunchError, StopCause.LAUNCHER),
)


def stop_cause_of(exc: BaseException) -> StopCause:
    """The cause a ``stopped`` event records for a run ended by ``exc``."""
    return next((cause for kind, cause in _CAUSES if isinstance(exc, kind)), StopCause.ERROR)


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
        self.launcher = launcher
        self.layout = layout
        self.history = RunHistory(plan.lifecycle)
        self.journal = Journal(layout.journal)
        self.record = Recorder(self.journal, self.history, on_event)
        self.jobs = JobFactory(plan.template, layout, plan.lifecycle, plan.settings.seed)
        self.feed = SamplerFeed(sampler, plan.settings, self.history)
        self.dispatch = Dispatcher(plan.settings, self.record, self.feed, launcher, self.jobs)
        self.intake = Intake(self.record, self.dispatch.specs)
        self.stopper: EarlyStopper | None = None
        if plan.early_stopping.enabled and plan.lifecycle.judge_iterations:
            self.stopper = EarlyStopper(
                plan.early_stopping,
                n_iterations=plan.lifecycle.training_iterations,
                minimize=plan.settings.minimize,
            )
        hooks: tuple[ProgressHook, ...] = (lambda _h, _s: self.dispatch.note_finished(),)
        self.outcomes = Outcomes(
            plan.settings,
            self.record,
            self.stopper,
            self.feed,
            layout.jobs_dir,
            on_finished=(*hooks, on_setting_finished) if on_setting_finished else hooks,
        )

    # -- resume ------------------------------------------------------------------
    def resume_from(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Rebuild history, early-stopping rule and sampler state from journaled events."""
        self.history.replay(events)
        if self.stopper is not None:
            self.stopper.replay(events)
        for sid in self.history.finished_order:
            self.outcomes.note_best(self.history.settings[sid])
        self.feed.restore()

    def _reattach_or_abandon(self) -> None:
        """Follow in-flight jobs of the previous driver again, or restart them."""
        for rec in self.history.active_jobs():
            setting = self.history.settings[rec.setting_id]
            spec = self.jobs.spec(setting, rec.rerun, rec.attempt)
            if self.launcher.reattach(spec, rec.native_id):
                self.dispatch.specs[rec.job_id] = spec
                self.intake.reattached.add(rec.job_id)
                if not rec.cancel_requested:  # a cancelled one: its end says what follows
                    logger.info("re-attached to job %s (%s)", rec.job_id, rec.native_id)
                continue
            self.record(EventKind.ABANDONED, job=rec.job_id)
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
            self._take_over()
            while not self._done():
                if stop.is_set():
                    raise RunStoppedError("interrupted")
                self._step()
            self.record(EventKind.FINISHED, reason="budget spent")
        except BaseException as exc:
            self._stop_jobs(exc)
            raise
        finally:
            self.journal.close()
        if reason := failed_run_reason(self.history):
            raise RunFailedError(f"{reason}; see the job logs under {self.layout.jobs_dir}")
        return self.history

    def _take_over(self) -> None:
        """Settle what an earlier driver left: its jobs, judgments and results."""
        self._reattach_or_abandon()
        for sid in self.history.due_judgments():  # ended before the driver could judge
            self.outcomes.judge(sid)
        for sid in self.history.unfinalized():
            self.outcomes.finalize(sid)
        self.outcomes.start_failure_count()

    def _step(self) -> None:
        """One round: fill free slots, submit, and take in what the launcher reports."""
        self.dispatch.submit_prepared()  # first: a slot that freed up is refilled at once
        self.dispatch.refill()
        self.dispatch.submit_ready()
        statuses = self.launcher.poll(self.settings.poll_timeout_s)
        self.intake.note_native_ids(statuses)
        for status in statuses:
            sid = self.intake.take(status)
            if sid is not None:
                self.outcomes.settle(sid)
        self.outcomes.check_failures(self.intake.setup_error)

    def _done(self) -> bool:
        return self.dispatch.budget_spent() and self.history.n_active_settings() == 0

    def _stop_jobs(self, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        cause = stop_cause_of(exc).value
        if isinstance(exc, KeyboardInterrupt):  # a second Ctrl-C: abort at once
            if self.journal.is_open:
                self.record(EventKind.STOPPED, reason="aborted (second Ctrl-C)", cause=cause)
            return
        active = [job for job in self.dispatch.specs if self.history.jobs[job].active]
        if active and isinstance(exc, LaunchError):
            # the launcher failed (e.g. Slurm out of reach): cancelling would fail alike,
            # and the jobs in flight are worth keeping; `resume` follows them again
            queued = sum(1 for job in active if self.history.jobs[job].native_id)
            unqueued = f"; {len(active) - queued} never reached it" if queued < len(active) else ""
            logger.warning("leaving %d job(s) in flight for 'hpoptim resume'%s", queued, unqueued)
        elif active:
            logger.warning("stopping: cancelling %d running job(s)", len(active))
            if self.journal.is_open:  # so that a resumed driver does not count them as failed
                self.record(EventKind.CANCELLING, jobs=active)
                self.record.sync()
            try:
                self.launcher.cancel(active)
            except LaunchError as err:
                logger.warning("could not cancel all jobs: %s", err)
        if self.journal.is_open:
            self.record(EventKind.STOPPED, reason=reason, cause=cause)

    def generate(self, params: Mapping[str, Any]) -> list[JobSpec]:
        """Write the run directories (params file included) of the first job of each
        rerun of a new setting, without journaling or running anything
        (``--generate-only``); their specs."""
        sid = self.history.n_asked
        self.history.apply({"e": EventKind.ASKED, "sid": sid, "params": dict(params)})
        setting = self.history.settings[sid]
        specs = [self.jobs.spec(setting, rerun, 0) for rerun in range(len(setting.reruns))]
        for rerun, spec in enumerate(specs):
            self.jobs.write_params(spec, setting, rerun, 0)
        return specs
