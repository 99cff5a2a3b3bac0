"""The job event log: HTCondor's record of every job's life, read incrementally.

HTCondor appends an event to the ``log`` file of a submission each time one of its
jobs is submitted, starts, is evicted, held, removed or ends (the way DAGMan follows
its nodes). The launcher reads it with the official parser, ``htcondor2.JobEventLog``
from the ``htcondor`` package (``pip install "hpoptim[htcondor]"``), which resumes
where it stopped and leaves a half-written event for the next read.
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from hpoptim.errors import LaunchError

__all__ = ["Event", "EventKind", "EventLog", "bindings"]

_INSTALL = 'pip install "hpoptim[htcondor]"'


def bindings() -> ModuleType:
    """The ``htcondor2`` module (HTCondor's Python bindings), imported on first use.

    Raises:
        LaunchError: The bindings are not installed; the message says how to install them.
    """
    try:
        return importlib.import_module("htcondor2")
    except ImportError as exc:
        raise LaunchError(
            "the HTCondor launcher reads HTCondor's job event log with its Python bindings, "
            f"which are not installed ({exc}); install them with: {_INSTALL}"
        ) from None


class EventKind(enum.Enum):
    """The events the launcher acts on (every other event is skipped)."""

    SUBMITTED = 0
    EXECUTING = 1
    EXECUTABLE_ERROR = 2
    EVICTED = 4
    TERMINATED = 5
    SHADOW_EXCEPTION = 7
    ABORTED = 9
    HELD = 12
    RELEASED = 13
    DISCONNECTED = 22
    RECONNECTED = 23
    RECONNECT_FAILED = 24


_KINDS = {kind.value: kind for kind in EventKind}


@dataclass(frozen=True)
class Event:
    """One event of one job.

    Attributes:
        native: The job's id, ``"cluster.proc"``.
        kind: What happened.
        return_value: The exit code of a job that terminated normally.
        signal: The signal that ended a job that terminated abnormally.
        reason: The hold reason, removal reason or shadow's message, if any.
        hold_code: The HoldReasonCode of a held job.
    """

    native: str
    kind: EventKind
    return_value: int | None = None
    signal: int | None = None
    reason: str = ""
    hold_code: int | None = None


def event_of(raw: Any) -> Event | None:
    """The :class:`Event` of one ``htcondor2.JobEvent`` (None: not one the launcher uses)."""
    kind = _KINDS.get(int(raw.type))
    if kind is None:
        return None
    ad = dict(raw.items())
    native = f"{raw.cluster}.{raw.proc}"
    reason = str(ad.get("HoldReason") or ad.get("Reason") or ad.get("Message") or "")
    if kind is EventKind.TERMINATED:
        normal = bool(ad.get("TerminatedNormally"))
        value = ad.get("ReturnValue") if normal else None
        sig = None if normal else ad.get("TerminatedBySignal")
        return Event(native, kind, _int(value), _int(sig))
    code = _int(ad.get("HoldReasonCode"))
    return Event(native, kind, reason=reason, hold_code=code)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


class EventLog:
    """The events appended to one user log since the last :meth:`read`.

    The file may not exist yet (nothing was submitted); reading starts at its beginning,
    so a later driver sees the whole history of the run's jobs.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log: Any = None

    def read(self) -> list[Event]:
        """The complete events written since the last call."""
        if self._log is None:
            if not self.path.exists():
                return []
            self._log = bindings().JobEventLog(str(self.path))
        events = []
        for raw in self._log.events(0):
            event = event_of(raw)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> None:
        """Close the file (a later :meth:`read` starts over at the beginning)."""
        if self._log is not None:
            self._log.close()
            self._log = None
