"""Slurm's answers -> :class:`~hpoptim.jobspec.JobStatus` (pure, apart from reading one file).

``squeue --Format=`` :data:`SQUEUE_FORMAT` (and ``sacct``, where accounting works)
give a job's Slurm state and raw wait status; the batch script leaves the job's
own exit status and whether the time-limit signal came in ``slurm_exit_status``
in its run directory. :func:`terminal_status` combines the two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.node import read_exit_file, split_status

SQUEUE_FORMAT = "JobArrayID:|,State:|,exit_code:|,Name:"

# states of a job that has not ended yet
ACTIVE_STATES = {
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD",
}  # fmt: skip
_FAILURES = {
    "OUT_OF_MEMORY": (JobState.FAILED, "out of memory (Slurm OUT_OF_MEMORY)"),
    "NODE_FAIL": (JobState.FAILED, "node failure (Slurm NODE_FAIL)"),
    "BOOT_FAIL": (JobState.FAILED, "node failed to boot (Slurm BOOT_FAIL)"),
    "PREEMPTED": (JobState.LOST, "preempted by the scheduler (Slurm PREEMPTED)"),
    "REVOKED": (JobState.LOST, "revoked by the scheduler (Slurm REVOKED)"),
}


@dataclass
class Listing:
    """One squeue answer: native id -> (state, raw exit status, job name)."""

    rows: dict[str, tuple[str, int | None, str]] = field(default_factory=dict)
    at: float = 0.0


def terminal_status(
    spec: JobSpec, native: str, slurm_state: str, raw_exit: int | None, cancelled: bool = False
) -> JobStatus:
    """The final status of a job from its Slurm state, raw wait status and exit file.

    Args:
        spec: The job.
        native: Its Slurm id.
        slurm_state: The state squeue/sacct reported (``""`` if neither knows the job).
        raw_exit: Slurm's wait status (``exit_code << 8 | signal``), if known.
        cancelled: The launcher cancelled the job itself.
    """
    code, sig, signalled = _exit_of(read_exit(spec), raw_exit if slurm_state else None)
    state, reason = _decide(slurm_state, code, sig, signalled=signalled, cancelled=cancelled)
    return JobStatus(spec.job_id, state, native, code, sig, reason, time.time())


def _exit_of(
    record: tuple[int, bool] | None, raw_exit: int | None
) -> tuple[int | None, int | None, bool]:
    """``(exit code, signal, signalled)`` from the exit file, else Slurm's wait status."""
    if record is not None:
        status, signalled = record
        return (*split_status(status), signalled)
    if raw_exit is None:
        return None, None, False
    sig = raw_exit & 0x7F
    return (None, sig, False) if sig else ((raw_exit >> 8) & 0xFF, None, False)


def _decide(
    slurm_state: str, code: int | None, sig: int | None, *, signalled: bool, cancelled: bool
) -> tuple[JobState, str]:
    if cancelled or slurm_state.startswith("CANCELLED"):
        return JobState.CANCELLED, f"cancelled {'by hpoptim' if cancelled else 'with scancel'}"
    if slurm_state in _FAILURES:
        return _FAILURES[slurm_state]
    from_code = JobState.FAILED if code is None else JobState.from_exit_code(code)
    if slurm_state in ("TIMEOUT", "DEADLINE") and from_code is JobState.FAILED:
        return JobState.TIMEOUT, f"timeout: Slurm time limit reached ({slurm_state})"
    if signalled and from_code is JobState.FAILED:
        return JobState.TIMEOUT, "timeout: failed after the time-limit signal"
    if code is None and sig is None:
        if slurm_state:
            return JobState.FAILED, f"Slurm state {slurm_state} without an exit code"
        return JobState.LOST, "vanished from Slurm without an exit status"
    return from_code, ""


def parse_squeue(text: str) -> Listing:
    """Rows of ``squeue --Format=`` :data:`SQUEUE_FORMAT` output."""
    listing = Listing(at=time.monotonic())
    for line in text.splitlines():
        parts = line.split("|", 3)
        if len(parts) < 3 or not parts[0].strip():
            continue
        native, state, raw = (p.strip() for p in parts[:3])
        name = parts[3].strip() if len(parts) > 3 else ""
        listing.rows[native] = (state.split()[0] if state else "", _int(raw), name)
    return listing


def parse_sacct(text: str) -> dict[str, tuple[str, int | None, str]]:
    """Rows of ``sacct --parsable2 --format=JobID,State,ExitCode,JobName`` output."""
    rows: dict[str, tuple[str, int | None, str]] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 4 or "." in parts[0]:
            continue
        code, _, sig = parts[2].partition(":")
        raw = None if _int(code) is None else ((_int(code) or 0) << 8) | (_int(sig) or 0)
        rows[parts[0]] = (parts[1].split()[0] if parts[1] else "", raw, parts[3])
    return rows


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def read_exit(spec: JobSpec) -> tuple[int, bool] | None:
    """The ``(status, signalled)`` the batch script recorded, if it did."""
    return read_exit_file(spec.paths.run_dir)
