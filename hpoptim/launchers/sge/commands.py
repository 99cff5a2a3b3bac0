"""Grid Engine's commands for :class:`~hpoptim.launchers.sge.launcher.SgeLauncher`: argv
in, parsed answers out, an unreachable qmaster waited out up to a tolerance."""

from __future__ import annotations

import getpass
import time
from collections import Counter
from collections.abc import Sequence

from hpoptim.errors import LaunchError
from hpoptim.launchers.sge.states import Accounted, Task, parse_qacct, parse_qstat
from hpoptim.launchers.slurm_commands import CommandResult, CommandRunner, run_command
from hpoptim.log import get_logger

logger = get_logger(__name__)

#: What Grid Engine's clients print when the qmaster is out of reach (down, restarting):
#: worth waiting for, unlike a refusal.
_TRANSIENT = (
    "unable to contact qmaster",
    "commlib error",
    "can't connect",
    "connection refused",
    "got no connection",
    "timed out",
    "unable to send message",
    "qmaster is not alive",
)
#: Seconds between attempts of a command while Grid Engine does not answer.
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Grid Engine's defaults of max_aj_tasks / max_aj_instances, if qconf does not answer.
DEFAULT_ARRAY_LIMIT = 2000


def is_transient(result: CommandResult) -> bool:
    """Whether a failed command is worth retrying (the qmaster was out of reach)."""
    text = (result.stderr + result.stdout).lower()
    return result.returncode == 124 or any(t in text for t in _TRANSIENT)


class Commands:
    """Runs Grid Engine's commands and counts them.

    Args:
        runner: Runs one argv; default: real subprocesses.
        tolerance_s: How long the qmaster may be out of reach before a command gives up
            (qsub, qdel) or :meth:`qstat` raises.
    """

    def __init__(self, runner: CommandRunner | None, *, tolerance_s: float) -> None:
        self._runner = runner or run_command
        self.tolerance_s = tolerance_s
        self.n_calls: Counter[str] = Counter()
        self._unreachable_since: float | None = None
        self._user = getpass.getuser()

    def run(self, argv: Sequence[str]) -> CommandResult:
        """Run ``argv`` once."""
        self.n_calls[argv[0]] += 1
        return self._runner(argv)

    def run_retrying(self, argv: Sequence[str]) -> CommandResult:
        """Run ``argv``; while it fails transiently, retry for up to :attr:`tolerance_s`."""
        deadline = time.monotonic() + self.tolerance_s
        result = self.run(argv)
        attempt = 0
        while result.returncode != 0 and is_transient(result):
            delay = RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
            if time.monotonic() + delay > deadline:
                break
            logger.warning("%s failed (%s); retrying in %g s", argv[0], _text(result), delay)
            time.sleep(delay)
            attempt += 1
            result = self.run(argv)
        return result

    # -- the commands ------------------------------------------------------------------
    def qsub(self, argv: Sequence[str]) -> str:
        """Submit with ``argv`` (``qsub -terse ...``) and return the job number."""
        result = self.run_retrying(argv)
        number = result.stdout.strip().split(".")[0]
        if result.returncode != 0 or not number.isdigit():
            raise LaunchError(
                f"qsub refused {argv[-1]}: exit code {result.returncode}: {_text(result)}",
                argv=argv,
                stderr=result.stderr,
            )
        return number

    def qdel(self, ids: Sequence[str]) -> None:
        """Delete jobs or tasks (``JOB`` or ``JOB.TASK``) with one call; a failure is logged."""
        result = self.run_retrying(["qdel", *ids])
        if result.returncode != 0 and "does not exist" not in _text(result):
            logger.warning("qdel %s: %s", " ".join(ids), _text(result))

    def qstat(self) -> dict[str, Task] | None:
        """This user's tasks in qstat, or ``None`` when Grid Engine did not answer.

        Raises:
            LaunchError: it has not answered for :attr:`tolerance_s`.
        """
        result = self.run(["qstat", "-xml", "-g", "d", "-u", self._user])
        tasks = _parsed(result)
        now = time.monotonic()
        if tasks is not None:
            if self._unreachable_since is not None:
                logger.warning("Grid Engine answers again")
            self._unreachable_since = None
            return tasks
        since = self._unreachable_since = self._unreachable_since or now
        logger.warning("qstat failed (exit code %d): %s", result.returncode, _text(result))
        if now - since > self.tolerance_s:
            raise LaunchError(
                f"Grid Engine has not answered for {(now - since) / 60:.1f} min "
                f"(qstat: {_text(result)}); its jobs may still run: resume the run to "
                "follow them again",
                argv=["qstat"],
                stderr=result.stderr,
            )
        return None

    def qstat_or_raise(self, purpose: str) -> dict[str, Task]:
        """This user's tasks in qstat, retried while Grid Engine does not answer.

        Raises:
            LaunchError: qstat failed.
        """
        result = self.run_retrying(["qstat", "-xml", "-g", "d", "-u", self._user])
        tasks = _parsed(result)
        if tasks is None:
            raise LaunchError(
                f"cannot list Grid Engine jobs {purpose}: {_text(result)}",
                argv=["qstat"],
                stderr=result.stderr,
            )
        return tasks

    def qacct(self, job_name_pattern: str) -> dict[str, Accounted]:
        """Accounting records of the jobs whose names match the pattern (``{}`` when
        accounting does not answer or knows none)."""
        result = self.run(["qacct", "-j", job_name_pattern])
        if result.returncode != 0:
            if "not found" not in _text(result):
                logger.warning("qacct failed: %s", _text(result))
            return {}
        return parse_qacct(result.stdout)

    def error_reason(self, native: str) -> str:
        """Grid Engine's ``error reason`` of a job in an error state."""
        result = self.run(["qstat", "-j", native.split(".")[0]])
        for line in result.stdout.splitlines():
            if line.startswith("error reason"):
                return line.split(":", 1)[-1].strip()
        return "no reason given"

    def array_limit(self) -> int:
        """``min(max_aj_tasks, max_aj_instances)`` from ``qconf -sconf`` (0 is no limit)."""
        result = self.run_retrying(["qconf", "-sconf"])
        limits = []
        for line in result.stdout.splitlines():
            key, _, value = line.partition(" ")
            if key in ("max_aj_tasks", "max_aj_instances") and value.strip().isdigit():
                limits.append(int(value.strip()))
        limits = [n for n in limits if n > 0]
        if result.returncode != 0 or not limits:
            logger.warning(
                "cannot read max_aj_tasks/max_aj_instances from 'qconf -sconf' (%s); assuming %d",
                _text(result) or "not in its output",
                DEFAULT_ARRAY_LIMIT,
            )
            return DEFAULT_ARRAY_LIMIT
        return min(limits)


def _parsed(result: CommandResult) -> dict[str, Task] | None:
    if result.returncode != 0:
        return None
    try:
        return parse_qstat(result.stdout)
    except ValueError:
        return None


def _text(result: CommandResult) -> str:
    return (result.stderr.strip() or result.stdout.strip()).replace("\n", " ")
