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
  the path is also in the environment variable ``HPOPTIM_PARAMS_FILE`` (see the
  ``ENV_*`` constants below for the other variables).
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

import json
import math
import os
import secrets
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

PARAMS_FILE_NAME = "params.json"
METRICS_FILE_NAME = "metrics.json"
STDOUT_FILE_NAME = "stdout.log"
STDERR_FILE_NAME = "stderr.log"
JOB_ENV_FILE_NAME = "job_env.json"
RESUME_EXIT_CODE = 3
SETUP_ERROR_EXIT_CODE = 78
"""Exit code of a job whose own setup failed (a wrapper's missing script or image, bad
template parameters): every job would fail the same way, so hpoptim stops the run with the
job's message instead of retrying it; ``hpoptim resume`` after the fix starts it again."""

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
ENV_METRICS_FILE = "HPOPTIM_METRICS_FILE"

_reported: dict[str, float] = {}
_env_written: set[Path] = set()  # directories holding this process's job_env.json


class JobContractError(RuntimeError):
    """The job was not started by hpoptim, or its params file is unreadable."""


def params_file(argv: list[str] | None = None) -> Path:
    """Locate this job's params file: ``HPOPTIM_PARAMS_FILE``, else the last argument."""
    env = os.environ.get(ENV_PARAMS_FILE)
    if env:
        return Path(env)
    args = sys.argv[1:] if argv is None else argv
    if args and args[-1].endswith(".json"):
        return Path(args[-1])
    raise JobContractError(
        f"no params file: set {ENV_PARAMS_FILE} or pass the params.json path as last argument"
    )


def load(path: Path | None = None) -> dict[str, Any]:
    """Read the whole params file (``params``, ``flat_params`` and ``job``)."""
    target = params_file() if path is None else path
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise JobContractError(f"cannot read params file {target}: {exc}") from exc
    if not isinstance(data, dict) or not {"params", "job"} <= data.keys():
        raise JobContractError(f"{target} is not an hpoptim params file")
    return data


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
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} must be finite, got {value!r}")
    _reported.update({str(k): float(v) for k, v in metrics.items()})
    target = _metrics_path() if path is None else path
    write_json_atomic(target, _reported)
    if target.parent not in _env_written:
        _env_written.add(target.parent)
        write_json_atomic(target.with_name(JOB_ENV_FILE_NAME), job_environment())
    return target


def job_environment() -> dict[str, str]:
    """What ``job_env.json`` records: this process's Python, as the job sees it."""
    return {
        "python": sys.version.split()[0],
        "python_full": sys.version,
        "executable": sys.executable,
        "implementation": sys.implementation.name,
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``, with the mode the umask gives new files."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


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
