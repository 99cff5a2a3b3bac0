"""Slurm's answers -> :class:`~hpoptim.jobspec.JobStatus` (pure, apart from reading one file).

``squeue --Format=`` :data:`SQUEUE_FORMAT` (and ``sacct``, where accounting works)
give a job's Slurm state and raw wait status; the batch script leaves the job's
own exit status and whether the time-limit signal came in ``slurm_exit_status``
in its run directory. :func:`terminal_status` combines the two.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.node import read_exit_file, split_status

SQUEUE_FORMAT = "JobArrayID:|,State:|,exit_code:|,Name:"
SACCT_FORMAT = "JobID,State,ExitCode,JobName"

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
    record = read_exit(spec)
    code, sig = _exit_of(record, raw_exit if slurm_state else None)
    state, reason = _decide(slurm_state, code, sig, record=record, cancelled=cancelled)
    return JobStatus(spec.job_id, state, native, code, sig, reason, time.time())


def _exit_of(
    record: tuple[int, bool] | None, raw_exit: int | None
) -> tuple[int | None, int | None]:
    """``(exit code, signal)`` from the exit file, else Slurm's wait status."""
    if record is not None:
        return split_status(record[0])
    if raw_exit is None:
        return None, None
    sig = raw_exit & 0x7F
    if sig:  # the batch shell itself was killed
        return None, sig
    # the batch script exits with the job's status, 128 + N for a job killed by signal N
    return split_status((raw_exit >> 8) & 0xFF)


def _decide(
    slurm_state: str,
    code: int | None,
    sig: int | None,
    *,
    record: tuple[int, bool] | None,
    cancelled: bool,
) -> tuple[JobState, str]:
    if cancelled or slurm_state.startswith("CANCELLED"):
        return JobState.CANCELLED, f"cancelled {'by hpoptim' if cancelled else 'with scancel'}"
    if slurm_state in _FAILURES:
        return _FAILURES[slurm_state]
    from_code = JobState.FAILED if code is None else JobState.from_exit_code(code)
    # Only the job's own recorded status can say it completed (or checkpointed) at its
    # limit: Slurm's exit code of a job it killed there may be 0 (sacct shows 0:0).
    if slurm_state in ("TIMEOUT", "DEADLINE") and (from_code is JobState.FAILED or record is None):
        return JobState.TIMEOUT, f"timeout: Slurm time limit reached ({slurm_state})"
    signalled = record is not None and record[1]
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


def sacct_argv(natives: Sequence[str]) -> list[str]:
    """The ``sacct`` call whose output :func:`parse_sacct` reads: one row per job (array
    task) of ``natives``, without its steps."""
    argv = ["sacct", "--noheader", "--parsable2", "--allocations"]
    return [*argv, f"--format={SACCT_FORMAT}", f"--jobs={','.join(natives)}"]


def parse_sacct(text: str) -> dict[str, tuple[str, int | None, str]]:
    """Rows of :func:`sacct_argv` output (``--parsable2 --format=`` :data:`SACCT_FORMAT`).

    ``ExitCode`` is ``code:signal``. sacct (22.05) prints an exit code of 128 or more less
    128, so a job killed by signal N, whose batch script exits 128 + N, shows ``N:0``:
    its state (FAILED) holds, its signal is lost. A job killed at its time limit shows
    ``TIMEOUT`` with ``0:0``.
    """
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
