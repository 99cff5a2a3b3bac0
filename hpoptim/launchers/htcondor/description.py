"""Submit descriptions and task files for the HTCondor launcher (pure, apart from writing).

One submission is one submit description with ``queue N``: job ``$(Process)`` runs
``python -S -I condor_job.py TASKS/$(Process).json``, whose task file holds that job's
argv, environment, working directory, run directory and time limit (see
:mod:`hpoptim.launchers.htcondor.condor_job`). Values of jobs are never written into
the description, so none can change it; the paths it names are checked for what
HTCondor's syntax cannot hold.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobResources, JobSpec
from hpoptim.launchers.htcondor.events import bindings
from hpoptim.launchers.htcondor.settings import HTCondorSettings
from hpoptim.launchers.node import EXIT_FILE_NAME
from hpoptim.messages import ENV_NAME

__all__ = [
    "EVENT_LOG_NAME",
    "Submission",
    "check_description",
    "render",
    "resources_key",
    "tag_attribute",
    "task_record",
    "write_private",
]

#: The run's job event log, in the launcher's directory: every submission writes to it.
EVENT_LOG_NAME = "condor_events.log"
#: Seconds HTCondor waits past a job's own limit before it holds the job (a backstop).
BACKSTOP_S = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


class Submission:
    """One ``condor_submit`` of ``specs`` (sharing their resources) as jobs ``0..N-1``.

    Attributes:
        tag: Name of the submission's files (``TAG.sub``, ``TAG.tasks/``, ``TAG.json``).
        specs: The jobs, in ``$(Process)`` order.
    """

    def __init__(self, work_dir: Path, tag: str, specs: Sequence[JobSpec]) -> None:
        self.work_dir = work_dir
        self.tag = tag
        self.specs = list(specs)

    @property
    def submit_file(self) -> Path:
        return self.work_dir / f"{self.tag}.sub"

    @property
    def tasks_dir(self) -> Path:
        return self.work_dir / f"{self.tag}.tasks"

    @property
    def manifest(self) -> Path:
        return self.work_dir / f"{self.tag}.json"


def tag_attribute(tag: str) -> str:
    """The ``HpoptimTag`` value of the submission ``tag`` (a ClassAd string, no quoting)."""
    return _UNSAFE.sub("_", tag)


def resources_key(spec: JobSpec) -> JobResources:
    """Jobs with equal keys can share one submission (one description)."""
    return spec.resources


def task_record(spec: JobSpec, argv: Sequence[str]) -> bytes:
    """The task file of one job (JSON; read by the job side, never by the driver)."""
    for key, value in spec.env.items():
        if not ENV_NAME.match(key) or "\0" in value:
            raise LaunchError(
                f"job {spec.job_id}: environment variable {key!r}={value!r} cannot be passed: "
                "names must match [A-Za-z_][A-Za-z0-9_]* and values hold no NUL"
            )
    res = spec.resources
    record = {
        "job": spec.job_id,
        "argv": list(argv),
        "env": dict(spec.env),
        "cwd": str(spec.cwd),
        "run_dir": str(spec.paths.run_dir.resolve()),
        "stdout": spec.paths.stdout.name,
        "stderr": spec.paths.stderr.name,
        "exit_file": EXIT_FILE_NAME,
        "limit_s": res.time_limit_s,
        "lead_s": res.signal_lead_s,
        "signal": res.signal,
    }
    return json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogateescape")


def batch_name(run_name: str, run_key: str) -> str:
    """The batch name ``condor_q`` shows for every job of a run."""
    return _UNSAFE.sub("_", f"{run_name}-{run_key}")


def render(
    submission: Submission, settings: HTCondorSettings, *, run_name: str, run_key: str
) -> str:
    """The submit description of ``submission``."""
    first = submission.specs[0]
    tasks = _path(submission.tasks_dir, first)
    ids = ", ".join(s.job_id for s in submission.specs)
    lines = [
        f"# Written by hpoptim: runs {len(submission.specs)} job(s) of run {run_name!r}: "
        f"{ids.replace(chr(10), ' ')}",
        "# Job $(Process) runs the task file TASKS/$(Process).json (see condor_job.py).",
        "universe = vanilla",
        f"executable = {_path(Path(sys.executable), first)}",
        "transfer_executable = false",
        f"arguments = {_arguments(['-S', '-I', _job_script(), f'{tasks}/$(Process).json'])}",
        f"output = {tasks}/$(Process).out",
        f"error = {tasks}/$(Process).err",
        f"log = {_path(submission.work_dir / EVENT_LOG_NAME, first)}",
        f"getenv = {settings.getenv}",
        f'batch_name = "{batch_name(run_name, run_key)}"',
        f'+HpoptimRun = "{run_key}"',
        f'+HpoptimTag = "{tag_attribute(submission.tag)}"',
        *resource_lines(first.resources, settings),
        *settings.extra_submission_options,
        f"queue {len(submission.specs)}",
    ]
    return "\n".join(lines) + "\n"


def resource_lines(res: JobResources, settings: HTCondorSettings) -> list[str]:
    """``request_*``, ``requirements``, limits: what the pool matches jobs on."""
    lines = [f"request_cpus = {res.n_cpus_per_job}"]
    if res.n_gpus_per_job:
        lines.append(f"request_gpus = {res.n_gpus_per_job}")
    if res.mem_gb is not None:
        lines.append(f"request_memory = {math.ceil(res.mem_gb * 1024)}")
    if settings.request_disk_mb is not None:
        lines.append(f"request_disk = {settings.request_disk_mb * 1024}")
    if (requirements := settings.requirements()) is not None:
        lines.append(f"requirements = {requirements}")
    if (limits := settings.concurrency_limits()) is not None:
        lines.append(f"concurrency_limits = {limits}")
    if res.time_limit_s is not None:
        # the job side ends the job at its limit; HTCondor holds it if that failed
        lines.append(f"allowed_job_duration = {math.ceil(res.time_limit_s) + BACKSTOP_S}")
    return lines


def _job_script() -> str:
    return str(resources.files("hpoptim.launchers.htcondor").joinpath("condor_job.py"))


def _path(path: Path, spec: JobSpec) -> str:
    """``path`` as a submit-description value (which cannot hold every character)."""
    text = str(path)
    if any(c in text for c in "\n\r\"'") or "$(" in text or text != text.strip():
        raise LaunchError(
            f"job {spec.job_id}: the path {text!r} holds a quote, a line break, '$(' or "
            "surrounding blanks, which an HTCondor submit description cannot hold; "
            "rename it (or the results directory)"
        )
    return text


def _arguments(args: Sequence[str]) -> str:
    """HTCondor's new ``arguments`` syntax: double-quoted, each argument single-quoted."""
    return '"' + " ".join("'" + a.replace("'", "''") + "'" for a in args) + '"'


def check_description(text: str, path: Path) -> None:
    """Parse ``text`` as HTCondor does, so a description it refuses is never submitted.

    Raises:
        LaunchError: HTCondor's parser refused it, or the bindings are not installed.
    """
    try:
        bindings().Submit(text)
    except (ValueError, RuntimeError) as exc:
        raise LaunchError(f"HTCondor cannot parse the submit description {path}: {exc}") from None


def write_private(path: Path, data: bytes) -> None:
    """Write and fsync ``path``, readable by its owner only (it may hold secrets)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
