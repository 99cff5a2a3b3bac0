"""What the schedd knows of a run's jobs: ``condor_q``/``condor_history`` queries and
``condor_rm`` of a whole run, used only off the launcher's hot path (re-attaching,
the occasional check for vanished jobs, a lost submit answer, ``--overwrite``).

Every job of a run carries ``HpoptimRun`` (the run's key) and ``HpoptimTag`` (its
submission), so one ClassAd constraint selects them.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from hpoptim.errors import LaunchError
from hpoptim.launchers.htcondor.events import Event, EventKind
from hpoptim.launchers.htcondor.schedd import CommandResult, Schedd

__all__ = [
    "QUEUE_ATTRS",
    "end_in_history",
    "manifest_entry",
    "run_constraint",
    "run_jobs",
    "stop_run",
    "submitted_already",
]

#: The attributes the launcher asks ``condor_q`` for.
QUEUE_ATTRS = "ClusterId,ProcId,JobStatus,HpoptimTag"
_HISTORY_ATTRS = "ClusterId,ProcId,JobStatus,ExitCode,ExitBySignal,ExitSignal"
_REMOVED, _COMPLETED = 3, 4


def run_constraint(key: str, tag: str | None = None) -> str:
    """The ClassAd constraint of the run's jobs (of one submission, with ``tag``)."""
    constraint = f'HpoptimRun == "{key}"'
    return constraint if tag is None else f'{constraint} && HpoptimTag == "{tag}"'


def _by_native(ads: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{ad.get('ClusterId')}.{ad.get('ProcId')}": ad for ad in ads}


def run_jobs(
    schedd: Schedd, constraint: str, tolerance_s: float, purpose: str
) -> dict[str, dict[str, Any]]:
    """The queued jobs matching ``constraint``, by ``cluster.proc``.

    Raises:
        LaunchError: condor_q failed for ``tolerance_s``.
    """
    args = ["-constraint", constraint, "-attributes", QUEUE_ATTRS]
    return _by_native(schedd.query("condor_q", args, tolerance_s, purpose))


def submitted_already(schedd: Schedd, constraint: str, n_jobs: int) -> CommandResult | None:
    """A ``condor_submit`` answer for the submission selected by ``constraint`` if its
    ``n_jobs`` jobs are queued (or already ended); None if not, or if nobody answers."""
    args = ["-constraint", constraint, "-attributes", QUEUE_ATTRS]
    found: dict[str, dict[str, Any]] = {}
    try:  # short jobs may have left the queue already
        for program in ("condor_q", "condor_history"):
            found.update(_by_native(schedd.query(program, args, 0.0, "to check a submission")))
    except LaunchError:
        return None
    clusters = {ad.get("ClusterId") for ad in found.values()}
    if len(found) != n_jobs or len(clusters) != 1:
        return None
    return CommandResult(0, f"{n_jobs} job(s) submitted to cluster {clusters.pop()}.", "")


def end_in_history(schedd: Schedd, native: str, tolerance_s: float) -> Event | None:
    """The end ``condor_history`` knows of a job the event log has no end of."""
    args = [native, "-limit", "1", "-attributes", _HISTORY_ATTRS]
    for ad in schedd.query("condor_history", args, tolerance_s, "to re-attach"):
        if ad.get("JobStatus") == _COMPLETED:
            if ad.get("ExitBySignal"):
                return Event(native, EventKind.TERMINATED, signal=ad.get("ExitSignal"))
            return Event(native, EventKind.TERMINATED, return_value=ad.get("ExitCode"))
        if ad.get("JobStatus") == _REMOVED:
            return Event(native, EventKind.ABORTED, reason="condor_history: removed")
    return None


def stop_run(
    schedd: Schedd, constraint: str, *, where: Path, tolerance_s: float, wait_s: float
) -> int:
    """condor_rm the queued jobs matching ``constraint`` and wait up to ``wait_s`` until
    they left the queue; return how many there were.

    Raises:
        LaunchError: condor_rm failed, or the jobs were still queued after ``wait_s``.
    """
    purpose = f"of the run in {where}, which must be stopped first"
    found = run_jobs(schedd, constraint, tolerance_s, purpose)
    if not found:
        return 0
    argv = ["condor_rm", "-constraint", constraint]
    result = schedd.run_tolerant(argv, tolerance_s)
    if result.returncode != 0:
        raise LaunchError(
            f"cannot stop the HTCondor jobs of the run in {where}: condor_rm: "
            f"{result.stderr.strip()}",
            argv=argv,
            stderr=result.stderr,
        )
    deadline = time.monotonic() + wait_s
    while run_jobs(schedd, constraint, tolerance_s, purpose):
        if time.monotonic() >= deadline:
            raise LaunchError(
                f"the HTCondor jobs of the run in {where} are still queued {wait_s:g} s "
                "after condor_rm; try again once they left"
            )
        time.sleep(0.5)
    return len(found)


def manifest_entry(work_dir: Path, job_id: str) -> tuple[str, int, int | None] | None:
    """``(tag, process, cluster)`` of the submission that holds ``job_id``, from its
    manifest (``cluster`` is None if the driver died before it learned it)."""
    for path in sorted(work_dir.glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if job_id in data["jobs"]:
                cluster = data["cluster"]
                return str(data["tag"]), data["jobs"].index(job_id), cluster
    return None
