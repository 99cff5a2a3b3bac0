"""Running Slurm's commands: argv in, exit code and output back, transient failures retried.

Every Slurm command runs through a :data:`CommandRunner`, so tests may pass an
in-memory fake instead of real subprocesses (see ``tests/launchers/test_slurm_render.py``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hpoptim.log import get_logger

logger = get_logger(__name__)

#: What Slurm's commands print when the controller is briefly out of reach (a restart,
#: a fail-over, an overloaded slurmctld): worth retrying, unlike a refusal.
_TRANSIENT = (
    "Unable to contact slurm controller",
    "temporarily unavailable",
    "timed out",
    "try again",
    "Socket",
    "Connection refused",
    "Zero Bytes were transmitted",
    "backup controller in standby mode",
)
#: Seconds between the attempts of a command that failed transiently (about 1 minute in all).
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: The same for sbatch, whose submission then waits for the controller without blocking
#: the launcher (see :mod:`hpoptim.launchers.slurm_outage`).
SUBMIT_RETRY_DELAYS_S = (1.0, 2.0, 4.0)
#: Slurm's default MaxArraySize, used when ``scontrol show config`` does not answer.
DEFAULT_MAX_ARRAY_SIZE = 1001


@dataclass(frozen=True)
class CommandResult:
    """What a command returned."""

    returncode: int
    stdout: str
    stderr: str


CommandRunner = Callable[[Sequence[str]], CommandResult]


def run_command(argv: Sequence[str], timeout_s: float = 120.0) -> CommandResult:
    """Run ``argv`` (no shell) and capture its output; a missing program gives 127."""
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        return CommandResult(127, "", str(exc))
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"{argv[0]} timed out after {timeout_s:g} s")
    return CommandResult(proc.returncode, proc.stdout, proc.stderr)


def run_retrying(
    runner: CommandRunner,
    argv: Sequence[str],
    delays: Sequence[float] = RETRY_DELAYS_S,
    sleep: Callable[[float], None] | None = None,
) -> CommandResult:
    """Run ``argv``; while it fails transiently (:func:`is_transient`), retry after each
    of ``delays`` (slept with ``sleep``, default :func:`time.sleep`). Returns the last result."""
    sleep = sleep or time.sleep
    result = runner(argv)
    for delay in delays:
        if result.returncode == 0 or not is_transient(result):
            break
        logger.warning("%s failed (%s); retrying in %g s", argv[0], result.stderr.strip(), delay)
        sleep(delay)
        result = runner(argv)
    return result


def may_have_acted(result: CommandResult) -> bool:
    """Whether a command that failed transiently may have reached the controller all the
    same (its answer timed out): an sbatch then may have queued its job."""
    return result.returncode == 124 or "timed out" in (result.stderr + result.stdout).lower()


def is_transient(result: CommandResult) -> bool:
    """Whether a failed Slurm command is worth retrying (the controller was out of reach)."""
    text = result.stderr + result.stdout
    return result.returncode == 124 or any(t.lower() in text.lower() for t in _TRANSIENT)


def parse_max_array_size(config_text: str) -> int | None:
    """``MaxArraySize`` from the output of ``scontrol show config``."""
    for line in config_text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "MaxArraySize":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None
