"""Result intake: what a launcher reports about a job becomes journal events."""

from __future__ import annotations

import time
from collections.abc import Sequence

from hpoptim.contract import SETUP_ERROR_EXIT_CODE
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.log import get_logger
from hpoptim.results.failure import with_cause
from hpoptim.results.output import metric_problem, read_metrics, stderr_tail
from hpoptim.run.recorder import Recorder
from hpoptim.state.events import EventKind

logger = get_logger(__name__)


class Intake:
    """Journals the end of each job the loop follows, with its metrics and its cause.

    Args:
        record: The run's recorder (journal + history).
        specs: The jobs the loop follows, by job id (shared with the dispatcher); a job
            that ended is removed.
    """

    def __init__(self, record: Recorder, specs: dict[str, JobSpec]) -> None:
        self.record = record
        self.history = record.history
        self.specs = specs
        #: Jobs an earlier driver started, followed again by this one.
        self.reattached: set[str] = set()
        #: Why the run must stop: a job could not set itself up (exit code 78).
        self.setup_error: str | None = None

    def note_native_ids(self, statuses: Sequence[JobStatus]) -> None:
        """Journal the native ids a launcher learned after submitting (a local job's
        pid, reported once it started), for ``hpoptim status`` and the jobs' CSV.
        Not synced on its own: a resumed driver finds its jobs by their run dirs."""
        ids = {
            s.job_id: s.native_id
            for s in statuses
            if s.native_id
            and s.job_id in self.specs
            and self.history.jobs[s.job_id].native_id != s.native_id
        }
        if ids:
            self.record(EventKind.NATIVE_IDS, ids=ids)

    def take(self, status: JobStatus) -> int | None:
        """Journal a job's end; return its setting's id if the end counts for the setting
        (None for news that is not an end, and for a job cancelled by a stopping driver,
        which is started again)."""
        if not status.state.is_terminal or status.job_id not in self.specs:
            return None
        spec = self.specs.pop(status.job_id)
        rec = self.history.jobs[status.job_id]
        if not rec.active:
            return None
        if rec.cancel_requested and status.state not in (JobState.COMPLETED, JobState.RESUME):
            self.record(EventKind.ABANDONED, job=status.job_id)
            logger.info("job %s was cancelled when the driver stopped; restarting it", rec.job_id)
            return None
        rerun = self.history.settings[rec.setting_id].reruns[rec.rerun]
        failures_before = rerun.failures
        tail = self._journal_end(status, spec)
        self._note_setup_error(status, spec, tail)
        if rerun.failures > failures_before:
            logger.warning("job %s failed: %s", rec.job_id, rec.reason)
            if tail:
                logger.debug("stderr of %s:\n%s", rec.job_id, tail)
        return rec.setting_id

    def _journal_end(self, status: JobStatus, spec: JobSpec) -> str:
        """Journal ``ended`` with the job's metrics and cause; return its stderr tail."""
        output = read_metrics(spec.paths)
        ok = status.state in (JobState.COMPLETED, JobState.RESUME)
        tail = "" if ok else stderr_tail(spec.paths)
        self.record(
            EventKind.ENDED,
            job=status.job_id,
            state=status.state.value,
            exit_code=status.exit_code,
            signal=status.signal,
            reason=with_cause(status.reason or describe(status), tail),
            metrics=output.metrics,
            problem=metric_problem(output, self.history.lifecycle.metric),
            stderr=tail,
            t=status.time or time.time(),
        )
        return tail

    def _note_setup_error(self, status: JobStatus, spec: JobSpec, tail: str) -> None:
        """A job that could not set itself up stops the run: every job would fail alike.

        A job started before this driver may have failed its setup before the user's
        fix: it is started again like any setup error, without stopping this run.
        """
        if (
            status.exit_code != SETUP_ERROR_EXIT_CODE
            or self.setup_error is not None
            or status.job_id in self.reattached
        ):
            return
        last = tail.strip().splitlines()[-1] if tail.strip() else "no stderr"
        self.setup_error = (
            f"job {status.job_id} could not set itself up (exit code "
            f"{SETUP_ERROR_EXIT_CODE}): {last}; every job would fail the same way. "
            f"Fix it, then `hpoptim resume` starts that run again (log: {spec.paths.stderr})"
        )


def describe(status: JobStatus) -> str:
    """A job's end in words, when the launcher gave no reason."""
    if status.state is JobState.COMPLETED:
        return "exit code 0"
    if status.state is JobState.RESUME:
        return "exit code 3 (to be resumed)"
    if status.signal is not None:
        return f"killed by signal {status.signal}"
    if status.exit_code is not None:
        return f"{status.state.value} with exit code {status.exit_code}"
    return str(status.state.value)
