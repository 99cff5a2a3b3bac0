"""The states of a job: a module of its own, standard library only, so that reading a
journal (``hpoptim status``, ``ls``) does not import the config models."""

from __future__ import annotations

import enum

from hpoptim.contract import RESUME_EXIT_CODE


class JobState(enum.Enum):
    """Where a job (one process / one cluster job) is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"  # exit code 0
    RESUME = "resume"  # exit code 3: start the next training iteration
    FAILED = "failed"  # other exit code, killed by a signal, node failure, OOM
    TIMEOUT = "timeout"  # hit its wall-time limit
    CANCELLED = "cancelled"  # cancelled by us or from outside
    LOST = "lost"  # vanished from the scheduler without a trace

    @property
    def is_terminal(self) -> bool:
        """True once the job will not change state any more."""
        return self not in (JobState.PENDING, JobState.RUNNING)

    @classmethod
    def from_exit_code(cls, code: int) -> JobState:
        """Map a process exit code to a terminal state."""
        if code == 0:
            return cls.COMPLETED
        if code == RESUME_EXIT_CODE:
            return cls.RESUME
        return cls.FAILED
