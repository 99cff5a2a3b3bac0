"""Job-side API: what a training script uses to talk to hpoptim.

Standard library only, so it stays cheap to import inside a job. The contract it
implements is file-based and can be followed by any program:

* The driver creates a run directory and writes ``params.json`` into it::

      {"params":      {...fixed and sampled parameters, nested by their dotted names...},
       "flat_params": {...the same, one dotted key per leaf, sampled names kept as written...},
       "job":         {"job_id", "setting_id", "rerun", "iteration", "attempt",
                       "n_iterations", "seed", "run_dir", "setting_dir",
                       "previous_run_dir", "metrics_file"}}

* The job is started as an argv list whose last element is the path of that file;
  the path is also in the environment variable ``HPOPTIM_PARAMS_FILE`` (the other
  variables, the files and the formats are declared in :mod:`hpoptim.contract`).
* The job reports metrics by writing a JSON object of numbers to ``metrics.json``
  in its run directory, atomically (write a temporary file, then rename it).
  It may do so several times; the last complete file counts.
* :func:`report` also writes ``job_env.json`` beside it once per process: the Python
  version and interpreter the job ran with, as the job sees them (inside its venv or
  image), which the run's provenance shows.
* Exit code 0 means finished, 3 (:data:`RESUME_EXIT_CODE`) means "to be resumed"
  (the driver starts the next training iteration), 78 (:data:`SETUP_ERROR_EXIT_CODE`)
  means the job could not set itself up (the run stops), anything else means failed.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from hpoptim.contract import (
    ENV_ITERATION,
    ENV_METRICS_FILE,
    ENV_PREVIOUS_RUN_DIR,
    ENV_RUN_DIR,
    JOB_ENV_FILE_NAME,
    METRICS_FILE_NAME,
    RESUME_EXIT_CODE,
    SETUP_ERROR_EXIT_CODE,
    JobContractError,
    check_metrics,
    job_environment,
    load_params,
    params_file_path,
    write_json_atomic,
)

__all__ = [
    "RESUME_EXIT_CODE",
    "SETUP_ERROR_EXIT_CODE",
    "JobContractError",
    "exit_for_resume",
    "get_context",
    "get_params",
    "install_resume_handler",
    "iteration",
    "load",
    "params_file",
    "previous_run_dir",
    "report",
    "run_dir",
    "write_json_atomic",
]

_reported: dict[str, float] = {}
_env_written: set[Path] = set()  # directories holding this process's job_env.json


def params_file(argv: list[str] | None = None) -> Path:
    """Locate this job's params file: ``HPOPTIM_PARAMS_FILE``, else the last argument."""
    return Path(params_file_path(sys.argv[1:] if argv is None else argv, os.environ))


def load(path: Path | None = None) -> dict[str, Any]:
    """Read the whole params file (``params``, ``flat_params`` and ``job``)."""
    return load_params(params_file() if path is None else path)


def get_params(path: Path | None = None) -> dict[str, Any]:
    """Return the job's parameters (fixed and sampled) as a nested dict."""
    params: dict[str, Any] = load(path)["params"]
    return params


def get_context(path: Path | None = None) -> dict[str, Any]:
    """Return the job's context: ids, rerun, iteration, attempt, seed, directories."""
    context: dict[str, Any] = load(path)["job"]
    return context


def run_dir() -> Path:
    """The directory this process runs in (its outputs belong here)."""
    env = os.environ.get(ENV_RUN_DIR)
    return Path(env) if env else Path(get_context()["run_dir"])


def iteration() -> int:
    """This process's training iteration, counted from 0."""
    env = os.environ.get(ENV_ITERATION)
    return int(env) if env else int(get_context()["iteration"])


def previous_run_dir() -> Path | None:
    """The run directory of the previous iteration (for checkpoints), or None."""
    env = os.environ.get(ENV_PREVIOUS_RUN_DIR)
    if env is not None:
        return Path(env) if env else None
    prev = get_context().get("previous_run_dir")
    return Path(prev) if prev else None


def _metrics_path() -> Path:
    env = os.environ.get(ENV_METRICS_FILE)
    return Path(env) if env else run_dir() / METRICS_FILE_NAME


def report(metrics: Mapping[str, float], path: Path | None = None) -> Path:
    """Write metrics atomically; later calls add to and overwrite earlier ones.

    Args:
        metrics: Metric name to a finite number.
        path: Where to write; default: ``metrics.json`` in the run directory.

    Returns:
        The path written.
    """
    _reported.update(check_metrics(metrics))
    target = _metrics_path() if path is None else path
    write_json_atomic(target, _reported)
    if target.parent not in _env_written:
        _env_written.add(target.parent)
        write_json_atomic(target.with_name(JOB_ENV_FILE_NAME), job_environment())
    return target


def exit_for_resume() -> NoReturn:
    """End this process so that hpoptim starts the next training iteration."""
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(RESUME_EXIT_CODE)


def install_resume_handler(
    checkpoint: Callable[[], None] | None = None, signum: int = signal.SIGTERM
) -> None:
    """On ``signum`` (sent before a time limit), run ``checkpoint`` and exit for resume.

    The signal may come more than once (to the process group and forwarded by a
    wrapper); repeats while the checkpoint is being written are ignored, so it is
    never interrupted by a second run of itself.
    """
    handling = False

    def _handler(_sig: int, _frame: FrameType | None) -> None:
        nonlocal handling
        if handling:
            return
        handling = True
        if checkpoint is not None:
            checkpoint()
        exit_for_resume()

    signal.signal(signum, _handler)
