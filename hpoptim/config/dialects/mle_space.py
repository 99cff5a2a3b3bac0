"""mle-toolbox's ``real``/``integer``/``categorical`` search parameters -> optimized_params.

The ranges are mle-toolbox's (hyperopt/hyperspace.py, and mle-hyperopt's spaces/grid.py for
the newer integer ``bins``): grid real = linspace(begin, end, bins); grid integer =
range(begin, end, spacing) or linspace(begin, end, bins) truncated to integers; random
integer = begin..end-1; smbo integer = begin..end; real = [begin, end]; prior ``uniform`` or
``log-uniform`` (``log``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpoptim.config.dialects.notes import Note


def _error(errors: list[Note], path: str, message: str) -> None:
    errors.append(Note(path, "error", message))


def search_space(space: Any, search_type: str, errors: list[Note]) -> list[dict[str, Any]]:
    """``real``/``integer``/``categorical`` entries as optimized_params (train_config.<name>)."""
    where = "param_search_args.search_params"
    if not isinstance(space, Mapping) or not space:
        _error(errors, where, f"must map real/integer/categorical to parameters, got {space!r}")
        return []
    entries = []
    for kind, params in space.items():
        if kind not in ("real", "integer", "categorical") or not isinstance(params, Mapping):
            _error(
                errors, f"{where}.{kind}", "must be real, integer or categorical, each a mapping"
            )
            continue
        for name, spec in params.items():
            entry = _entry(kind, spec, search_type, f"{where}.{kind}.{name}", errors)
            if entry is not None:
                entries.append({"param": f"train_config.{name}", **entry})
    return entries


def _entry(
    kind: str, spec: Any, search_type: str, where: str, errors: list[Note]
) -> dict[str, Any] | None:
    """One parameter, with mle-toolbox's range (see the module docstring)."""
    if kind == "categorical":
        if not isinstance(spec, list) or not spec:
            _error(errors, where, f"must be a list of values, got {spec!r}")
            return None
        return {"distribution": "Discrete", "options": list(spec)}
    if not isinstance(spec, Mapping) or not all(
        isinstance(spec.get(k), (int, float)) for k in ("begin", "end")
    ):
        _error(errors, where, f"needs numbers begin and end, got {spec!r}")
        return None
    begin, end = spec["begin"], spec["end"]
    if search_type == "grid":
        step_key = "bins" if kind == "real" or "spacing" not in spec else "spacing"
        step = spec.get(step_key)
        if not isinstance(step, int) or step < 1:
            _error(errors, where, f"a grid needs a whole number {step_key} >= 1, got {step!r}")
            return None
        if kind == "real":
            options = [begin + (end - begin) * i / max(step - 1, 1) for i in range(step)]
            return {"distribution": "Discrete", "options": [float(o) for o in options]}
        if step_key == "bins":  # mle-hyperopt: linspace(begin, end, bins) truncated to int
            ints = [int(begin + (end - begin) * i / max(step - 1, 1)) for i in range(step)]
            return {"distribution": "Discrete", "options": list(dict.fromkeys(ints))}
        return {"distribution": "Discrete", "options": list(range(int(begin), int(end), step))}
    prior = spec.get("prior", "uniform")
    if prior not in ("uniform", "log-uniform", "log"):
        _error(errors, where, f"prior {prior!r} is not uniform or log-uniform")
        return None
    log = prior != "uniform"
    if kind == "real":
        return {
            "distribution": "LogUniform" if log else "Uniform",
            "bounds": [float(begin), float(end)],
        }
    high = int(end) - 1 if search_type == "random" else int(end)
    return {"distribution": "IntLogUniform" if log else "IntUniform", "bounds": [int(begin), high]}
