"""What the Grid Engine launcher knows of each job it follows, and how one qstat answer
changes it (pure, apart from reading the job's exit status file)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.node import EXIT_FILE_NAME
from hpoptim.launchers.sge.states import Accounted, Task, terminal_status
from hpoptim.log import get_logger

logger = get_logger(__name__)

#: How long a task that left qstat may wait for its accounting record before it is judged
#: without one (qmaster writes it a moment later; without accounting there is none).
ACCOUNTING_GRACE_S = 10.0


@dataclass
class TrackedJob:
    """A job in flight: its spec, its ``JOB.TASK`` id and what qstat showed of it."""

    spec: JobSpec
    native: str  # "JOB.TASK"; "" when its qsub failed
    name: str
    state: JobState = JobState.PENDING
    cancelled: bool = False
    deleted: bool = False
    suspended: bool = False
    exit_seen: bool = False
    gone_since: float = 0.0  # when it left qstat without an exit status or a qacct record


def next_status(job: TrackedJob, task: Task | None, acct: Accounted | None) -> JobStatus | None:
    """The job's new status given its qstat row (``None``: gone) and qacct record, if it
    changed."""
    if task is None:
        if not job.native:
            return JobStatus(job.spec.job_id, JobState.FAILED, "", reason="not submitted")
        if acct is None and not (job.cancelled or ended(job.spec)):
            # qmaster writes the accounting record a moment after the task leaves qstat
            now = time.monotonic()
            job.gone_since = job.gone_since or now
            if now - job.gone_since < ACCOUNTING_GRACE_S:
                return None
        return terminal_status(
            job.spec, job.native, acct, cancelled=job.cancelled, deleted=job.deleted
        )
    job.deleted = job.deleted or task.deleted
    if task.suspended != job.suspended:
        job.suspended = task.suspended
        if task.suspended:
            logger.warning("job %s (%s) is suspended (%s)", job.spec.job_id, job.native, task.state)
    state = JobState.PENDING if task.pending else JobState.RUNNING
    if state is job.state:
        return None
    job.state = state
    return JobStatus(job.spec.job_id, state, job.native, reason=task.state, time=time.time())


def failed_status(job_id: str, native: str, reason: str) -> JobStatus:
    """A ``FAILED`` status seen now."""
    return JobStatus(job_id, JobState.FAILED, native, reason=reason, time=time.time())


def ended(spec: JobSpec) -> bool:
    """Whether the job's script recorded its exit status."""
    return (spec.paths.run_dir / EXIT_FILE_NAME).exists()


def find_task(tasks: dict[str, Task], name: str, index: int | None) -> str:
    """The ``JOB.TASK`` id of task ``index`` (0-based) of the job named ``name``."""
    for native, task in tasks.items():
        if task.name == name and native.split(".")[1] == str((index or 0) + 1):
            return native
    return ""


def find_accounted(accounted: dict[str, Accounted], name: str, index: int | None) -> str:
    """The ``JOB.TASK`` id of task ``index`` (0-based) of the job named ``name`` in qacct."""
    for native, record in accounted.items():
        if record.name == name and native.split(".")[1] == str((index or 0) + 1):
            return native
    return ""
