"""The shape of journal events: which fields each kind has, and of which type.

The journal is read back after crashes, by other versions and after hand edits, so
every record is checked before it is folded into a history (see
:mod:`hpoptim.state.history`, which also checks that it fits the events before it).
Kinds not listed here are accepted and ignored (written by a newer version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hpoptim.jobstate import JobState


class InvalidEventError(ValueError):
    """A journal record is not an event this history can fold in."""


_INT = (int,)
_NUMBER = (int, float)
_STR = (str,)
_DICT = (dict,)
_LIST = (list,)
_NONE = (type(None),)
_BOOL = (bool,)
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "run_started": {"seed": _INT},
    "asked": {"sid": _INT, "params": _DICT},
    "submitted": {
        **{"job": _STR, "sid": _INT, "rerun": _INT, "it": _INT, "att": _INT},
        **{"dir": _STR, "t": _NUMBER},
    },
    "native_ids": {"ids": _DICT},
    "launched": {"jobs": _LIST, "t": _NUMBER},
    "ended": {"job": _STR, "state": _STR, "t": _NUMBER},
    "abandoned": {"job": _STR},
    "setting_finished": {"sid": _INT, "result": _DICT},
    "judged": {"sid": _INT, "it": _INT, "value": _NUMBER + _NONE, "stop": _BOOL},
    "retry_failed": {"sids": _LIST, "t": _NUMBER},
}
_OPTIONAL: dict[str, dict[str, tuple[type, ...]]] = {
    "ended": {
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
    kind: (
        *((name, types, True) for name, types in _FIELDS.get(kind, {}).items()),
        *((name, types, False) for name, types in _OPTIONAL.get(kind, {}).items()),
    )
    for kind in _FIELDS
}
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
    if kind == "setting_finished":
        return _fields_problem(event["result"], _RESULT_CHECKS, "its result")
    return ""


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
