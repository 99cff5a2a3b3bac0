"""A job's end from its events and its exit-status record (pure, apart from reading one file).

The job side records the job's own status and whether the time-limit signal came
(``slurm_exit_status`` in the run directory, as on every launcher); the terminated
event gives the status HTCondor saw, used when the record is missing (the job side
itself was killed).
"""

from __future__ import annotations

import time

from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.htcondor.events import Event
from hpoptim.launchers.node import read_exit_file, split_status

__all__ = ["aborted_status", "terminated_status"]


def terminated_status(spec: JobSpec, event: Event, *, cancelled: bool) -> JobStatus:
    """The status of a job whose terminated event is ``event``."""
    record = read_exit_file(spec.paths.run_dir)
    if record is not None:
        code, sig = split_status(record[0])
    elif event.return_value is not None:
        code, sig = split_status(event.return_value)
    else:
        code, sig = None, event.signal
    state, reason = _decide(code, sig, signalled=record is not None and record[1])
    if cancelled:
        state, reason = JobState.CANCELLED, "cancelled by hpoptim"
    elif record is None and state is not JobState.COMPLETED:
        reason = reason or "the job side left no exit status (it was killed)"
    return JobStatus(spec.job_id, state, event.native, code, sig, reason, time.time())


def _decide(code: int | None, sig: int | None, *, signalled: bool) -> tuple[JobState, str]:
    state = JobState.FAILED if code is None else JobState.from_exit_code(code)
    if signalled and state is JobState.FAILED:
        return JobState.TIMEOUT, "timeout: failed after the time-limit signal"
    if code is None and sig is None:
        return JobState.FAILED, "HTCondor reported no exit status"
    return state, ""


def aborted_status(spec: JobSpec, event: Event, *, cancelled: bool) -> JobStatus:
    """The status of a job removed from the queue (``condor_rm``)."""
    reason = "cancelled by hpoptim" if cancelled else f"removed from HTCondor ({event.reason})"
    return JobStatus(spec.job_id, JobState.CANCELLED, event.native, reason=reason, time=time.time())
