"""The journal's events, declared once: their kinds, fields and types, and the codec.

Every module that writes or reads the journal names events by :class:`EventKind`
(a ``str`` enum, so a record's ``"e"`` field is the plain kind name and old journals
read back unchanged); ``tests/test_architecture.py`` holds every other module to it.
:func:`encode` turns an event into its journal line, :func:`event_problem` checks a
record read back.

The journal is read back after crashes, by other versions and after hand edits, so
every record is checked before it is folded into a history (see
:mod:`hpoptim.state.history`, which also checks that it fits the events before it).
Kinds not listed here are accepted and ignored (written by a newer version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from hpoptim.jobstate import JobState


class InvalidEventError(ValueError):
    """A journal record is not an event this history can fold in."""


JOURNAL_FORMAT = 1
"""The version of the events' format, written in ``run_started`` as ``journal_format``.

A journal without it (written before the field existed) has format 1 too. Adding an
event kind or an optional field keeps the format (readers ignore what they do not
know); a change an older reader would misread raises it.
"""


class EventKind(str, Enum):
    """The kind of a journal event: its ``"e"`` field.

    A ``str`` enum: ``EventKind.ASKED == "asked"``, and a record read back (where
    ``"e"`` is a plain string) compares and hashes equal to its member.
    """

    RUN_STARTED = "run_started"  #: a new run: seed, checkout, provenance, versions
    DRIVER_STARTED = "driver_started"  #: a driver resumed the run: pid, host, t
    ASKED = "asked"  #: a new setting
    SUBMITTED = "submitted"  #: a job was journaled for submission
    NATIVE_IDS = "native_ids"  #: launcher ids of submitted jobs
    LAUNCHED = "launched"  #: jobs journaled ahead of a free slot reached the launcher
    ENDED = "ended"  #: a job ended
    ABANDONED = "abandoned"  #: a job is no longer followed; its rerun starts again
    CANCELLING = "cancelling"  #: a stopping driver is about to cancel these jobs
    JUDGED = "judged"  #: early stopping judged a setting at an iteration
    SETTING_FINISHED = "setting_finished"  #: every rerun of a setting is done
    RETRY_FAILED = "retry_failed"  #: ``hpoptim resume --retry-failed``
    FINISHED = "finished"  #: the budget is spent
    STOPPED = "stopped"  #: the run stopped before its budget was spent

    def __str__(self) -> str:
        return self.value


class StopCause(str, Enum):
    """Why a run stopped: the ``cause`` field of a ``stopped`` event.

    Journals written before the field existed have only the ``reason`` text; readers
    fall back to it for them (see :func:`stop_cause`).
    """

    INTERRUPTED = "interrupted"  #: a signal or a stop request; ``resume`` continues
    ABORTED = "aborted"  #: a second Ctrl-C: stopped without cancelling jobs
    FAILURES = "failures"  #: more than ``max_failed_fraction`` of the settings failed
    SETUP_ERROR = "setup_error"  #: a job could not set itself up (exit code 78)
    LAUNCHER = "launcher"  #: the launcher failed (e.g. the cluster out of reach)
    ERROR = "error"  #: any other error in the driver

    def __str__(self) -> str:
        return self.value


_INT = (int,)
_NUMBER = (int, float)
_STR = (str,)
_DICT = (dict,)
_LIST = (list,)
_NONE = (type(None),)
_BOOL = (bool,)
_FIELDS: dict[EventKind, dict[str, tuple[type, ...]]] = {
    EventKind.RUN_STARTED: {"seed": _INT},
    EventKind.ASKED: {"sid": _INT, "params": _DICT},
    EventKind.SUBMITTED: {
        **{"job": _STR, "sid": _INT, "rerun": _INT, "it": _INT, "att": _INT},
        **{"dir": _STR, "t": _NUMBER},
    },
    EventKind.NATIVE_IDS: {"ids": _DICT},
    EventKind.LAUNCHED: {"jobs": _LIST, "t": _NUMBER},
    EventKind.ENDED: {"job": _STR, "state": _STR, "t": _NUMBER},
    EventKind.ABANDONED: {"job": _STR},
    EventKind.SETTING_FINISHED: {"sid": _INT, "result": _DICT},
    EventKind.JUDGED: {"sid": _INT, "it": _INT, "value": _NUMBER + _NONE, "stop": _BOOL},
    EventKind.RETRY_FAILED: {"sids": _LIST, "t": _NUMBER},
}
_OPTIONAL: dict[EventKind, dict[str, tuple[type, ...]]] = {
    EventKind.RUN_STARTED: {"journal_format": _INT},
    EventKind.STOPPED: {"cause": _STR},
    EventKind.ENDED: {
        **{"exit_code": _INT + _NONE, "signal": _INT + _NONE, "reason": _STR},
        **{"metrics": _DICT, "problem": _STR, "stderr": _STR},
    },
}
_RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    **{"value": _NUMBER + _NONE, "std": _NUMBER + _NONE, "n_ok": _INT, "n_failed": _INT},
    "metrics": _DICT,
}
JOB_STATES = frozenset(s.value for s in JobState)

Check = tuple[str, tuple[type, ...], bool]
"""A field's name, the types it may have, and whether it is required."""
_CHECKS: dict[str, tuple[Check, ...]] = {
    kind.value: (
        *((name, types, True) for name, types in _FIELDS.get(kind, {}).items()),
        *((name, types, False) for name, types in _OPTIONAL.get(kind, {}).items()),
    )
    for kind in EventKind
}
"""The checks of each kind, keyed by its plain string: a record's ``"e"`` is one, and
looking it up among strings is faster than among the enum's members."""
_SETTING_FINISHED = EventKind.SETTING_FINISHED.value
_RESULT_CHECKS: tuple[Check, ...] = (
    *((n, t, True) for n, t in _RESULT_FIELDS.items()),
    ("stopped_at", _INT + _NONE, False),
)


def event_problem(event: Mapping[str, Any]) -> str:
    """Why ``event`` is not a well-formed event ("" if it is; unknown kinds are fine)."""
    kind = event.get("e")
    if not isinstance(kind, str):
        return "no event kind (field 'e')"
    if problem := _fields_problem(event, _CHECKS.get(kind, ()), f"{kind} event"):
        return problem
    if kind == _SETTING_FINISHED:
        return _fields_problem(event["result"], _RESULT_CHECKS, "its result")
    return ""


def encode(kind: EventKind, fields: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The record of an event and its journal line (compact JSON, no newline)."""
    record = {"e": kind.value, **fields}
    return record, json.dumps(record, separators=(",", ":"))


def _fields_problem(record: Mapping[str, Any], checks: tuple[Check, ...], what: str) -> str:
    for name, types, required in checks:
        if name not in record:
            if required:
                return f"{what} lacks field {name!r}"
            continue
        value = record[name]
        if type(value) in types:  # the common case (a bool only where bool is allowed)
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            shown = json.dumps(value, default=repr)[:40]
            return f"{what} field {name!r} must be {names}, got {shown}"
    return ""


def stop_cause(event: Mapping[str, Any]) -> StopCause | None:
    """Why a ``stopped`` event says the run stopped (None: a cause this version does
    not know, or none recorded).

    Journals written before ``stopped`` had its ``cause`` field hold only the
    ``reason`` text; for them, and for them only, a stop by failures is recognised by
    that text naming ``max_failed_fraction`` (the one cause readers tell apart there).
    """
    cause = event.get("cause")
    if cause is None:  # an older journal
        failures = "max_failed_fraction" in str(event.get("reason", ""))
        return StopCause.FAILURES if failures else None
    try:
        return StopCause(cause)
    except ValueError:  # written by a newer version
        return None
