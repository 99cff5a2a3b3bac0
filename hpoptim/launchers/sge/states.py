"""Grid Engine's answers -> :class:`~hpoptim.jobspec.JobStatus` (pure, apart from reading
the files a job leaves).

``qstat -xml -g d`` lists every task that has not ended (state letters such as ``qw``,
``r``, ``Eqw``, ``dr``); ``qacct -j`` (where accounting is on) gives an ended task's
``failed`` code and ``exit_status``. The job script records the job's own exit status
and whether the time-limit signal came (:data:`~hpoptim.launchers.node.EXIT_FILE_NAME`),
and leaves a ``.signalled`` marker that survives Grid Engine's kill at ``h_rt``.
:func:`terminal_status` combines them, the job's files first.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.node import EXIT_FILE_NAME, read_exit_file, split_status

#: ``failed`` codes of ``qacct`` (sge_shepherd's exit codes) that say what happened.
FAILED_H_RT = 37  # "qmaster enforced h_rt, h_cpu, or h_vmem limit"
FAILED_AFTER_JOB = 100  # "assumedly after job": killed while running, e.g. by qdel
SIGNALLED_SUFFIX = ".signalled"


@dataclass(frozen=True)
class Task:
    """One array task as ``qstat`` shows it."""

    state: str  # Grid Engine's state letters, e.g. "qw", "r", "Eqw", "dr"
    name: str

    @property
    def pending(self) -> bool:
        return "q" in self.state and "r" not in self.state.lower()

    @property
    def error(self) -> bool:
        return "E" in self.state

    @property
    def deleted(self) -> bool:
        return "d" in self.state

    @property
    def suspended(self) -> bool:
        return any(c in self.state for c in "sST")


@dataclass(frozen=True)
class Accounted:
    """One task's record in ``qacct -j``."""

    name: str
    failed: int
    failed_text: str
    exit_status: int | None


def parse_qstat(text: str) -> dict[str, Task]:
    """``qstat -xml -g d`` output -> ``"JOB.TASK"`` -> :class:`Task`.

    Task ranges (``1-3:1``, shown for tasks listed together) are expanded.

    Raises:
        ValueError: the text is not qstat's XML.
    """
    root = ET.fromstring(text)
    tasks: dict[str, Task] = {}
    for entry in root.iter("job_list"):
        number = (entry.findtext("JB_job_number") or "").strip()
        if not number:
            continue
        task = Task((entry.findtext("state") or "").strip(), entry.findtext("JB_name") or "")
        for index in task_ids((entry.findtext("tasks") or "").strip()):
            tasks[f"{number}.{index}"] = task
    return tasks


def task_ids(text: str) -> list[int]:
    """The task ids of qstat's ``tasks`` field: ``"4"``, ``"1-3:1"``, ``"1,4-6:2"``
    (``""``, a job that is no array, is task 1 as far as this launcher goes)."""
    if not text:
        return [1]
    ids: list[int] = []
    for part in text.split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        try:
            ids.extend(range(int(first), int(last or first) + 1, int(step or 1)))
        except ValueError:
            continue
    return ids


def parse_qacct(text: str) -> dict[str, Accounted]:
    """``qacct -j`` output -> ``"JOB.TASK"`` -> :class:`Accounted` (the last record of a
    task wins)."""
    found: dict[str, Accounted] = {}
    for block in _blocks(text):
        number, task = block.get("jobnumber", ""), block.get("taskid", "")
        if not number:
            continue
        native = f"{number}.{task if task.isdigit() else 1}"
        code, _, why = block.get("failed", "0").partition(":")
        status_words = block.get("exit_status", "").split()
        found[native] = Accounted(
            name=block.get("jobname", ""),
            failed=_int(code.strip()) or 0,
            failed_text=why.strip(),
            exit_status=_int(status_words[0]) if status_words else None,
        )
    return found


def _blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("====="):
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _, value = line.partition(" ")
        if key:
            current[key] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def terminal_status(
    spec: JobSpec,
    native: str,
    accounted: Accounted | None,
    *,
    cancelled: bool = False,
    deleted: bool = False,
) -> JobStatus:
    """The final status of a task that left ``qstat``.

    Args:
        spec: The job.
        native: Its ``JOB.TASK`` id.
        accounted: Its ``qacct`` record, if accounting knows it.
        cancelled: The launcher deleted it itself.
        deleted: qstat last showed it being deleted (``d``): someone ran qdel.
    """
    record = read_exit_file(spec.paths.run_dir)
    state, reason, code, sig = _decide(spec, record, accounted, cancelled, deleted)
    return JobStatus(spec.job_id, state, native, code, sig, reason, time.time())


def _decide(
    spec: JobSpec,
    record: tuple[int, bool] | None,
    accounted: Accounted | None,
    cancelled: bool,
    deleted: bool,
) -> tuple[JobState, str, int | None, int | None]:
    if cancelled:
        return JobState.CANCELLED, "cancelled by hpoptim", None, None
    if record is not None:
        code, sig = split_status(record[0])
        from_code = JobState.FAILED if code is None else JobState.from_exit_code(code)
        if record[1] and from_code is JobState.FAILED:
            return JobState.TIMEOUT, "timeout: failed after the time-limit signal", code, sig
        return from_code, "", code, sig
    signalled = (spec.paths.run_dir / (EXIT_FILE_NAME + SIGNALLED_SUFFIX)).exists()
    failed = accounted.failed if accounted is not None else None
    if failed == FAILED_H_RT and (signalled or spec.resources.time_limit_s is not None):
        return JobState.TIMEOUT, "timeout: Grid Engine killed the job at h_rt", None, 9
    if deleted or failed == FAILED_AFTER_JOB:
        return JobState.CANCELLED, "deleted with qdel", None, None
    if signalled:
        return JobState.TIMEOUT, "timeout: killed at the time limit after the signal", None, 9
    if accounted is None:
        return JobState.LOST, "vanished from Grid Engine without an exit status", None, None
    if accounted.failed:
        why = f"Grid Engine could not run the job (qacct failed {accounted.failed}"
        return JobState.FAILED, f"{why}: {accounted.failed_text})", None, None
    if accounted.exit_status is None:
        return JobState.FAILED, "Grid Engine recorded no exit status", None, None
    code, sig = split_status(accounted.exit_status)
    return JobState.FAILED if code is None else JobState.from_exit_code(code), "", code, sig
