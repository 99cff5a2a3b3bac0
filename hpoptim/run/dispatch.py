"""What runs next: ask for settings while slots are free, prepare their jobs, submit them."""

from __future__ import annotations

import time
from collections.abc import Collection

from hpoptim.jobspec import JobSpec
from hpoptim.launchers.base import BaseLauncher
from hpoptim.run.feed import SamplerFeed
from hpoptim.run.jobs import JobFactory
from hpoptim.run.plan import LoopSettings
from hpoptim.run.recorder import Recorder
from hpoptim.state.events import EventKind


class Dispatcher:
    """Keeps ``n_in_flight`` settings going and their ready jobs submitted.

    Every job it starts is journaled (``submitted``) and synced before its directory
    is created or it is handed to the launcher.

    Args:
        settings: Budget, parallelism and the resubmit rule.
        record: The run's recorder (journal + history).
        feed: Asks the sampler.
        launcher: Runs the jobs.
        jobs: Builds each job's spec and params file.
    """

    def __init__(
        self,
        settings: LoopSettings,
        record: Recorder,
        feed: SamplerFeed,
        launcher: BaseLauncher,
        jobs: JobFactory,
    ) -> None:
        self.settings = settings
        self.record = record
        self.history = record.history
        self.feed = feed
        self.launcher = launcher
        self.jobs = jobs
        #: Jobs prepared or submitted by this driver (or re-attached) and not yet ended.
        self.specs: dict[str, JobSpec] = {}
        self._prepared: list[JobSpec] = []  # journaled, synced and written; not yet submitted
        self._finished_since_refill = 0
        #: The sampler has no settings left.
        self.exhausted = False

    def note_finished(self) -> None:
        """A setting finished (counts toward ``n_completed_before_resubmit``)."""
        self._finished_since_refill += 1

    def budget_spent(self) -> bool:
        """No more settings will be asked."""
        return self.history.n_asked >= self.settings.n_samples or self.exhausted

    def refill(self) -> None:
        """Ask for settings until ``n_in_flight`` are active or the budget is spent."""
        s = self.settings
        in_flight = self.history.n_active_settings()
        if in_flight and self._finished_since_refill < s.n_completed_before_resubmit:
            return
        self._finished_since_refill = 0
        while in_flight < s.n_in_flight and self.history.n_asked < s.n_samples:
            if not self.feed.may_ask():
                break
            params = self.feed.ask()
            if params is None:
                self.exhausted = True
                break
            self.record(EventKind.ASKED, sid=self.history.n_asked, params=params)
            in_flight += 1

    def submit_ready(self) -> None:
        """Submit ready jobs as the launcher's capacity allows, and prepare some ahead.

        A job is prepared first: journaled, synced, its directory and params file
        written. Besides the jobs the launcher can take now, one job is prepared ahead
        for each job it runs, so that when one ends, the next is submitted at once,
        without waiting for a journal sync or a new directory.
        """
        capacity = self.launcher.capacity()
        n = len(self.history.ready)
        if capacity is not None:  # those it can take, and one for each it will run then
            n_running = len(self.specs) - len(self._prepared)
            n = min(n, 2 * capacity + n_running - len(self._prepared))
        if n > 0:
            self.submit_prepared(fresh=self._prepare(n))

    def submit_prepared(self, fresh: Collection[str] = ()) -> None:
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
            self.record(EventKind.LAUNCHED, jobs=waited, t=time.time())
        if ids := {job_id: n for job_id, n in native.items() if n}:
            self.record(EventKind.NATIVE_IDS, ids=ids)

    def _prepare(self, n: int) -> set[str]:
        """Prepare the first ``n`` ready jobs; return their ids."""
        jobs = []
        for _ in range(n):
            sid, rerun_idx = self.history.ready[0]
            setting = self.history.settings[sid]
            attempt = setting.reruns[rerun_idx].next_attempt
            spec = self.jobs.spec(setting, rerun_idx, attempt)
            while spec.paths.run_dir.exists():  # used by a driver whose journal tail was lost
                attempt += 1
                spec = self.jobs.spec(setting, rerun_idx, attempt)
            self.record(
                EventKind.SUBMITTED,
                job=spec.job_id,
                sid=sid,
                rerun=rerun_idx,
                it=setting.reruns[rerun_idx].iteration,
                att=attempt,
                dir=str(spec.paths.run_dir),
                t=time.time(),
            )
            self.specs[spec.job_id] = spec
            jobs.append((spec, setting, rerun_idx, attempt))
        self.record.sync()  # job ids and directories are never reused, even after a crash
        for spec, setting, rerun_idx, attempt in jobs:
            self.jobs.write_params(spec, setting, rerun_idx, attempt)
        specs = [job[0] for job in jobs]
        self._prepared += specs
        return {spec.job_id for spec in specs}
