"""The launcher interface: submit jobs, poll their states, cancel them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from hpoptim.errors import ConfigProblem
from hpoptim.jobspec import JobSpec, JobStatus
from hpoptim.sections import Section

if TYPE_CHECKING:
    from typing import Self


def job_argv(spec: JobSpec) -> list[str]:
    """The argv that runs ``spec``: its own, or wrapped in its container (the same for
    every launcher, see :func:`hpoptim.launchers.container.container_argv`)."""
    if spec.container is None:
        return list(spec.argv)
    from hpoptim.launchers.container import container_argv

    return container_argv(spec)


def poll_backoff_problems(
    poll_interval_s: float, max_poll_interval_s: float
) -> list[ConfigProblem]:
    """A cluster launcher's poll backoff must not end below where it starts."""
    if max_poll_interval_s >= poll_interval_s:
        return []
    why = f"must be >= poll_interval_s ({poll_interval_s!r}), got {max_poll_interval_s!r}"
    return [ConfigProblem("max_poll_interval_s", why)]


class NoSettings(Section):
    """A launcher section without keys (the default :attr:`BaseLauncher.settings_model`)."""


class BaseLauncher(ABC):
    """Runs :class:`JobSpec` s somewhere and reports their state changes.

    Contract shared by every launcher (see ``tests/contracts/launcher.py``):

    * :meth:`submit` starts or queues jobs and returns their native ids; it raises
      :class:`~hpoptim.errors.LaunchError` if nothing could be submitted.
    * :meth:`poll` waits at most ``timeout_s`` for news and returns the state
      changes seen since the last call. Every submitted job is reported in a
      terminal state exactly once, including jobs that vanish (``LOST``).
    * :meth:`cancel` stops jobs; they are then reported as ``CANCELLED``.
    * stdout/stderr of a job go to ``spec.paths.stdout`` / ``spec.paths.stderr``.
    * A container-wrapped spec (``spec.container``) is run through
      :func:`hpoptim.launchers.container.container_argv` by every launcher alike.
    * :meth:`from_settings` builds the launcher from its own config section, which
      is how a run picks it from the registry (:func:`hpoptim.launchers.load`).
    """

    #: The registry name, which is also the name of the launcher's config section.
    name: str = "base"
    #: The model of the launcher's config section (keys, defaults, rules), declared
    #: next to the launcher; the run config nests it under :attr:`name`.
    settings_model: ClassVar[type[Section]] = NoSettings

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Section, *, work_dir: Path, name: str) -> Self:
        """Build the launcher from its config section.

        This is the one way the run constructs a launcher it picked by name, so a
        launcher must not need anything beyond these arguments (in particular not
        the config package, which sits above the launchers).

        Args:
            settings: The launcher's own config section, an instance of
                :attr:`settings_model` already validated with the rest of the config
                (so ``hpoptim check`` refuses what the launcher would refuse).
            work_dir: A directory inside the results dir that belongs to this
                launcher (e.g. for batch scripts); created only if the launcher
                writes there.
            name: The run's name, for naming what the launcher creates (e.g. job
                names on a cluster).
        """

    @abstractmethod
    def capacity(self) -> int | None:
        """How many more jobs may be submitted now (``None``: no limit)."""

    @abstractmethod
    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        """Start or queue ``specs``; return ``{job_id: native_id}``."""

    @abstractmethod
    def poll(self, timeout_s: float) -> list[JobStatus]:
        """Return the state changes seen since the last call, waiting up to ``timeout_s``."""

    @abstractmethod
    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        """Cancel the given jobs (all active jobs if ``None``)."""

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        """Follow a job submitted by an earlier driver process.

        ``native_id`` is ``""`` when the earlier driver died between submitting the
        job and journaling its native id; a launcher that can find the job by other
        means (e.g. its name) should, so that it is not run twice.

        Returns True if the job is followed again (its states will be reported by
        :meth:`poll`), False if it is gone or cannot be followed; a launcher that
        returns False has made sure the old process no longer runs.
        """
        return False

    def preview(self, spec: JobSpec) -> str:
        """What this launcher would hand its scheduler for ``spec`` (a submit description,
        say), for ``hpoptim check --show``; ``""`` when that is just the job's command.

        Writes and submits nothing.
        """
        return ""

    @classmethod
    def stop_leftovers(cls, work_dir: Path) -> int:
        """Stop every job an earlier driver of the run launched from ``work_dir`` that
        still runs, and return how many were stopped.

        Used by ``run --overwrite`` before the old run is moved aside: its jobs would
        otherwise write into the new run's directories. The default does nothing (a
        launcher whose jobs end with their driver).

        Raises:
            LaunchError: Some jobs could not be stopped.
        """
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources; does not cancel jobs unless the launcher documents it."""

    def __enter__(self) -> BaseLauncher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
