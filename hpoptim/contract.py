"""The job contract, declared once: what the driver and a job agree on.

Standard library only and importing nothing of hpoptim: the driver uses it, and so
does the job side (:mod:`hpoptim.job`, :mod:`hpoptim.compat`, the local supervisor
:mod:`hpoptim.launchers.node`, the Slurm batch script rendered from these names).
``wrappers/`` keep their own copies of the few names they need, so that a user's
checkout can carry them; ``tests/test_contract.py`` holds those copies equal to
the names here. Any program can follow the contract:

* **Params file.** The driver creates a run directory and writes
  :data:`PARAMS_FILE_NAME` into it: a JSON object with the sections
  :data:`PARAMS_SECTIONS` -- ``params`` (fixed and sampled parameters nested by
  their dotted names), ``flat_params`` (one dotted key per leaf) and ``job`` (the
  context, keys :data:`JOB_CONTEXT_KEYS`). The job is started as an argv list whose
  last element is the path of that file.
* **Environment.** The job's environment holds the variables :data:`JOB_ENV_NAMES`
  (``HPOPTIM_PARAMS_FILE``, ``HPOPTIM_RUN_DIR``, ...); each mirrors a context key.
* **Metrics.** The job reports by writing a JSON object of finite numbers
  (:func:`check_metrics`), at most :data:`MAX_METRICS_KEYS` keys and
  :data:`MAX_METRICS_BYTES` bytes, to :data:`METRICS_FILE_NAME` in its run
  directory, atomically (:func:`write_json_atomic`).
* **Intermediate reports.** A job may rewrite its metrics file any number of times
  while it runs, each time with everything reported so far; the last complete file
  counts (a job that dies after an intermediate report keeps it).
* **Exit code.** :data:`COMPLETED_EXIT_CODE` (0) means finished,
  :data:`RESUME_EXIT_CODE` (3) "to be resumed" (the driver starts the next training
  iteration), :data:`SETUP_ERROR_EXIT_CODE` (78) that the job could not set itself
  up (the run stops), anything else failed.
* **Files left beside the job** (by the launcher, not the job): its output in
  :data:`STDOUT_FILE_NAME` and :data:`STDERR_FILE_NAME`, its exit status in
  :data:`EXIT_STATUS_FILE_NAME` and, for local jobs, who ran it in
  :data:`PROCESS_FILE_NAME` (see :mod:`hpoptim.launchers.node`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys

TYPE_CHECKING = False  # typing and pathlib cost the job side start-up time
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any

# -- environment of a job -------------------------------------------------------------
ENV_PREFIX = "HPOPTIM_"
"""Every variable of the contract starts with it (a container wrapper passes them all on)."""
ENV_PARAMS_FILE = "HPOPTIM_PARAMS_FILE"
ENV_RUN_DIR = "HPOPTIM_RUN_DIR"
ENV_JOB_ID = "HPOPTIM_JOB_ID"
ENV_SETTING_ID = "HPOPTIM_SETTING_ID"
ENV_RERUN = "HPOPTIM_RERUN"
ENV_ITERATION = "HPOPTIM_ITERATION"
ENV_ATTEMPT = "HPOPTIM_ATTEMPT"
ENV_N_ITERATIONS = "HPOPTIM_N_ITERATIONS"
ENV_SEED = "HPOPTIM_SEED"
ENV_PREVIOUS_RUN_DIR = "HPOPTIM_PREVIOUS_RUN_DIR"
"""Empty in a job's first training iteration."""
ENV_METRICS_FILE = "HPOPTIM_METRICS_FILE"
JOB_ENV_NAMES = (
    ENV_PARAMS_FILE,
    ENV_RUN_DIR,
    ENV_JOB_ID,
    ENV_SETTING_ID,
    ENV_RERUN,
    ENV_ITERATION,
    ENV_ATTEMPT,
    ENV_N_ITERATIONS,
    ENV_SEED,
    ENV_PREVIOUS_RUN_DIR,
    ENV_METRICS_FILE,
)
"""Every variable the driver sets for a job, in this order."""

# -- files of a run directory ---------------------------------------------------------
PARAMS_FILE_NAME = "params.json"
METRICS_FILE_NAME = "metrics.json"
STDOUT_FILE_NAME = "stdout.log"
STDERR_FILE_NAME = "stderr.log"
EXIT_STATUS_FILE_NAME = "slurm_exit_status"
"""``"<status> <signalled>"``: the job's exit status (``128 + N`` for death by signal
``N``) and ``1`` if the time-limit signal had been sent; written by every launcher."""
PROCESS_FILE_NAME = "job_process"
"""Local jobs: ``"<job pid> <job start> <supervisor pid> <supervisor start> <boot id>"``."""
JOB_ENV_FILE_NAME = "job_env.json"
"""The job's Python as the job sees it, written once per run directory by the job API
(``hpoptim.job.report`` and ``hpoptim.compat``), read for the run's provenance."""

# -- the params file ------------------------------------------------------------------
PARAMS_SECTIONS = ("params", "flat_params", "job")
JOB_CONTEXT_KEYS = (
    "job_id",
    "setting_id",
    "rerun",
    "iteration",
    "attempt",
    "n_iterations",
    "n_reruns",
    "metric",
    "seed",
    "run_dir",
    "setting_dir",
    "previous_run_dir",
    "metrics_file",
)
"""Keys of the params file's ``job`` section."""


def job_env(context: Mapping[str, Any], params_file: str) -> dict[str, str]:
    """The ``HPOPTIM_*`` environment of a job whose params file's ``job`` section is
    ``context`` (see :data:`JOB_CONTEXT_KEYS`): the same facts, for jobs that read the
    environment rather than the file."""
    return {
        ENV_PARAMS_FILE: params_file,
        ENV_RUN_DIR: str(context["run_dir"]),
        ENV_JOB_ID: str(context["job_id"]),
        ENV_SETTING_ID: str(context["setting_id"]),
        ENV_RERUN: str(context["rerun"]),
        ENV_ITERATION: str(context["iteration"]),
        ENV_ATTEMPT: str(context["attempt"]),
        ENV_N_ITERATIONS: str(context["n_iterations"]),
        ENV_SEED: str(context["seed"]),
        ENV_PREVIOUS_RUN_DIR: str(context.get("previous_run_dir") or ""),
        ENV_METRICS_FILE: str(context["metrics_file"]),
    }


# -- exit codes -----------------------------------------------------------------------
COMPLETED_EXIT_CODE = 0
RESUME_EXIT_CODE = 3
SETUP_ERROR_EXIT_CODE = 78
"""Exit code of a job whose own setup failed (a wrapper's missing script or image, bad
template parameters): every job would fail the same way, so hpoptim stops the run with the
job's message instead of retrying it; ``hpoptim resume`` after the fix starts it again."""

# -- the metrics file -----------------------------------------------------------------
MAX_METRICS_BYTES = 1 << 20
"""Largest metrics file the driver reads (1 MiB); a bigger one fails the attempt."""
MAX_METRICS_KEYS = 1000
"""Most metrics one job may report; more fail the attempt (each becomes a CSV column)."""


class JobContractError(RuntimeError):
    """The job was not started by hpoptim, or its params file is unreadable."""


def job_environment() -> dict[str, str]:
    """What :data:`JOB_ENV_FILE_NAME` records: this process's Python."""
    return {
        "python": sys.version.split()[0],
        "python_full": sys.version,
        "executable": sys.executable,
        "implementation": sys.implementation.name,
    }


def params_file_path(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The params file of a job: ``HPOPTIM_PARAMS_FILE``, else the last argument.

    Args:
        argv: The job's arguments, without the program name.
        environ: The job's environment.

    Raises:
        JobContractError: Neither names a params file.
    """
    env = environ.get(ENV_PARAMS_FILE)
    if env:
        return env
    if argv and argv[-1].endswith(".json"):
        return argv[-1]
    raise JobContractError(
        f"no params file: set {ENV_PARAMS_FILE} or pass the {PARAMS_FILE_NAME} path as last "
        "argument"
    )


def load_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The params file at ``path`` (a dict with ``params``, ``flat_params`` and ``job``).

    Raises:
        JobContractError: It cannot be read or is not a params file.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise JobContractError(f"cannot read params file {path}: {exc}") from exc
    if not isinstance(data, dict) or not {"params", "job"} <= data.keys():
        raise JobContractError(f"{path} is not an hpoptim params file")
    return data


def check_metrics(metrics: Mapping[str, object]) -> dict[str, float]:
    """``metrics`` as the metrics file holds them: metric name to a finite float.

    Raises:
        TypeError: A value is not a number (booleans are not).
        ValueError: A value is NaN or infinite.
    """
    checked: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} must be finite, got {value!r}")
        checked[str(name)] = float(value)
    return checked


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers never see a partial file.

    The file gets the mode the umask gives new files; its directory is created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``, with the mode the umask gives new files."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = str(path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp"))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
