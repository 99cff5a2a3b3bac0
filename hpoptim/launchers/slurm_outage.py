"""Riding out an outage of Slurm's controller: how long it lasts, and what waits for it.

While ``slurmctld`` is out of reach (a restart, a fail-over, maintenance) nothing can
be submitted and ``squeue`` does not answer, but jobs keep running and their batch
scripts keep recording their ends in the run directories. So the launcher goes on:
it reports the jobs whose exit status appears, keeps the batch scripts it could not
submit (:class:`Unsubmitted`) and tries them again with growing delays, and gives up
(a :class:`~hpoptim.errors.LaunchError`, which leaves the jobs in flight for
``hpoptim resume``) only once the controller has been out of reach for longer than
``slurm.outage_tolerance_min``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobSpec
from hpoptim.log import get_logger

logger = get_logger(__name__)

RESUBMIT_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""Seconds between tries of a submission that waits for the controller (the last repeats)."""


class Clock(Protocol):
    """Time as the launcher sees it (tests pass a fake one)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Unreachable(LaunchError):
    """A Slurm command failed because the controller was out of reach.

    Attributes:
        may_have_acted: Its answer timed out: the controller may have done what it was
            asked all the same (an sbatch may have queued its job).
    """

    may_have_acted: bool = False


@dataclass
class Unsubmitted:
    """A batch script that sbatch could not hand to the controller yet."""

    specs: list[JobSpec]
    script: Path
    name: str
    tries: int = 0
    next_try: float = 0.0
    may_be_queued: bool = False
    """An sbatch of it timed out: look for it in the queue before sending it again."""
    job_ids: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.job_ids = {s.job_id for s in self.specs}

    def retry_later(self, now: float) -> None:
        self.next_try = now + RESUBMIT_DELAYS_S[min(self.tries, len(RESUBMIT_DELAYS_S) - 1)]
        self.tries += 1


class Outage:
    """How long the controller has been out of reach, against the tolerance.

    Args:
        tolerance_s: How long an outage may last before :meth:`check` gives up.
        clock: Where the time comes from.
    """

    def __init__(self, tolerance_s: float, clock: Clock) -> None:
        self.tolerance_s = tolerance_s
        self.clock = clock
        self.since: float | None = None
        self.error = ""

    def failed(self, error: str) -> None:
        """A command failed because the controller was out of reach."""
        if self.since is None:
            self.since = self.clock.monotonic()
            logger.warning(
                "Slurm's controller is out of reach (%s); waiting up to %g min for it",
                error.strip(),
                self.tolerance_s / 60,
            )
        self.error = error.strip()

    def answered(self) -> None:
        """A command got through: the outage, if any, is over."""
        if self.since is not None:
            lasted = self.clock.monotonic() - self.since
            logger.warning("Slurm's controller answers again after %.0f s", lasted)
        self.since = None

    def check(self) -> None:
        """Raise if the outage has lasted longer than the tolerance.

        Raises:
            LaunchError: Naming how long, the setting, and the last error.
        """
        if self.since is None:
            return
        lasted = self.clock.monotonic() - self.since
        if lasted > self.tolerance_s:
            raise LaunchError(
                f"Slurm's controller has been out of reach for {lasted / 60:.1f} min, longer "
                f"than slurm.outage_tolerance_min = {self.tolerance_s / 60:g} "
                f"({self.error})"
            )
