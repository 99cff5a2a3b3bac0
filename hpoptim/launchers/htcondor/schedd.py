"""Talking to the schedd: HTCondor's commands as argv lists, outages waited out.

Every command runs through a :data:`CommandRunner` (real subprocesses by default).
A command that fails because the schedd is out of reach (a restart, an overloaded
schedd, a network cut) is retried with backoff for as long as the caller tolerates,
and a callback runs between attempts, so that the driver keeps reading the job
event log while it waits.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from hpoptim.errors import LaunchError
from hpoptim.launchers.slurm_commands import CommandResult, CommandRunner, run_command
from hpoptim.log import get_logger

__all__ = ["CommandResult", "CommandRunner", "Schedd", "is_transient", "run_command"]

logger = get_logger(__name__)

#: What HTCondor's tools print when the schedd cannot be reached (worth retrying).
_TRANSIENT = (
    "failed to connect",
    "can't find address",
    "cannot connect",
    "connection refused",
    "timed out",
    "timeout",
    "secman",
    "errno 111",
    "connection reset",
)
_FIRST_DELAY_S = 0.5
_MAX_DELAY_S = 60.0


def is_transient(result: CommandResult) -> bool:
    """Whether a failed command failed because the schedd was out of reach."""
    text = (result.stderr + result.stdout).lower()
    return result.returncode == 124 or any(t in text for t in _TRANSIENT)


class Schedd:
    """Runs HTCondor's commands for one launcher and counts them.

    Args:
        runner: Runs one command.
        between_attempts: Called while an outage is waited out (e.g. to read the log).

    Attributes:
        n_calls: How often each command ran (``condor_submit``, ``condor_q``, ...).
    """

    def __init__(
        self,
        runner: CommandRunner | None = None,
        between_attempts: Callable[[], None] | None = None,
    ) -> None:
        self._runner = runner or run_command
        self._between = between_attempts or (lambda: None)
        self.n_calls: Counter[str] = Counter()

    def run(self, argv: Sequence[str]) -> CommandResult:
        """Run ``argv`` once."""
        self.n_calls[argv[0]] += 1
        return self._runner(argv)

    def run_tolerant(
        self,
        argv: Sequence[str],
        tolerance_s: float,
        done: Callable[[], CommandResult | None] | None = None,
    ) -> CommandResult:
        """Run ``argv``; retry with backoff while it fails transiently, for up to
        ``tolerance_s`` seconds. Returns the last result.

        ``done``, asked before each retry, returns the result of an attempt that took
        effect although its answer was lost (so it is not repeated), or None.
        """
        deadline = time.monotonic() + tolerance_s
        delay = _FIRST_DELAY_S
        result = self.run(argv)
        while result.returncode != 0 and is_transient(result):
            if done is not None and (effect := done()) is not None:
                return effect
            left = deadline - time.monotonic()
            if left <= 0:
                break
            logger.warning(
                "%s: the schedd does not answer (%s); retrying in %g s (giving up in %.0f s)",
                argv[0],
                result.stderr.strip() or result.stdout.strip(),
                min(delay, left),
                left,
            )
            self._wait(min(delay, left))
            delay = min(delay * 2, _MAX_DELAY_S)
            result = self.run(argv)
        return result

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._between()
            time.sleep(min(left, 0.5))

    def query(
        self, program: str, args: Sequence[str], tolerance_s: float, purpose: str
    ) -> list[dict[str, Any]]:
        """The ads ``program -json ARGS`` (``condor_q`` or ``condor_history``) prints.

        Raises:
            LaunchError: The command failed (after ``tolerance_s`` of retries) or its
                answer is not JSON.
        """
        argv = [program, "-json", *args]
        result = self.run_tolerant(argv, tolerance_s)
        if result.returncode != 0:
            raise LaunchError(
                f"cannot list HTCondor jobs {purpose}: {program}: "
                f"{result.stderr.strip() or result.stdout.strip()}",
                argv=argv,
                stderr=result.stderr,
            )
        text = result.stdout.strip()
        try:
            ads = json.loads(text) if text else []  # no matching job: no output at all
        except ValueError:
            raise LaunchError(
                f"{program} -json printed no JSON: {text[:200]!r}", argv=argv
            ) from None
        return [ad for ad in ads if isinstance(ad, dict)]
