"""Zipped parameters: several parameters whose values are listed together, row by row.

A ``Discrete`` entry whose ``param`` is a list of names is a zip group, as
cluster_utils' grid search writes it::

    {"param": ["model.lr", "model.batch"], "distribution": "Discrete",
     "options": [[0.1, 32], [0.01, 256]]}

Each option is a row with one value per name; the names take their values together
(``lr=0.1`` always with ``batch=32``), never in other combinations. Each name is an
ordinary parameter of the space whose domain is the values its column holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hpoptim.errors import ConfigProblem
from hpoptim.messages import json_problem, unknown_key_problems
from hpoptim.space.distributions import Discrete, canonical

__all__ = ["ZipGroup", "entry_names", "parse_zip_entry"]

_KEYS = ("param", "distribution", "options")


@dataclass(frozen=True)
class ZipGroup:
    """Parameters that take their values together, one row of values at a time.

    Attributes:
        names: The parameters, in the order each row lists their values.
        rows: The distinct rows, in config order; each has one value per name.
    """

    names: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        bad = [row for row in self.rows if len(row) != len(self.names)]
        if not self.names or not self.rows or bad:
            raise ValueError(f"each row needs one value per name {self.names}, got {bad}")

    def column(self, name: str) -> Discrete:
        """The domain of ``name``: the distinct values of its column, in row order."""
        i = self.names.index(name)
        values = {canonical(row[i]): row[i] for row in self.rows}
        return Discrete(options=tuple(values.values()))

    def index(self, params: Mapping[str, Any]) -> int | None:
        """The row ``params`` gives this group's names, or None if it is not a row."""
        try:
            key = canonical([params[name] for name in self.names])
        except (KeyError, TypeError, ValueError):
            return None
        return next((i for i, row in enumerate(self.rows) if canonical(list(row)) == key), None)

    def to_entry(self) -> dict[str, Any]:
        """The config entry that rebuilds this group."""
        return {
            "param": list(self.names),
            "distribution": Discrete.name,
            "options": [list(row) for row in self.rows],
        }


def entry_names(entry: Any) -> list[str]:
    """The parameter names a config entry declares: its ``param``, or each of a zip group's."""
    if not isinstance(entry, Mapping):
        return []
    param = entry.get("param")
    if isinstance(param, str):
        return [param]
    if isinstance(param, (list, tuple)):
        return [name for name in param if isinstance(name, str)]
    return []


def parse_zip_entry(
    entry: Mapping[str, Any], where: str, name_problem: Any
) -> tuple[ZipGroup | None, list[ConfigProblem]]:
    """Check a zip-group entry (``param`` is a list); return the group if it is valid.

    Args:
        entry: The config entry.
        where: Its config path, e.g. ``optimized_params[1]``.
        name_problem: ``name -> message`` ("" for a valid parameter name).
    """
    names = list(entry["param"])
    problems = [
        ConfigProblem(f"{where}.param[{i}]", name_problem(name))
        for i, name in enumerate(names)
        if name_problem(name)
    ]
    if not names:
        problems.append(ConfigProblem(f"{where}.param", "must name at least one parameter"))
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append(ConfigProblem(f"{where}.param[{i}]", f"{name!r} is listed twice"))
    problems += unknown_key_problems(entry, _KEYS, where, "zipped parameters")
    if entry.get("distribution") != Discrete.name:
        got = entry.get("distribution")
        problems.append(
            ConfigProblem(
                f"{where}.distribution",
                "zipped parameters (param is a list) are listed row by row: the "
                f"distribution must be 'Discrete', got {got!r}",
            )
        )
    rows = _rows(entry.get("options"), len(names), where, problems)
    if problems:
        return None, problems
    return ZipGroup(tuple(names), rows), []


def _rows(
    options: Any, arity: int, where: str, problems: list[ConfigProblem]
) -> tuple[tuple[Any, ...], ...]:
    if not isinstance(options, Sequence) or isinstance(options, (str, bytes)) or not options:
        problems.append(
            ConfigProblem(
                f"{where}.options",
                f"must be a non-empty list of rows of {arity} values, got {options!r}",
            )
        )
        return ()
    rows: list[tuple[Any, ...]] = []
    seen: dict[str, int] = {}
    for j, row in enumerate(options):
        path = f"{where}.options[{j}]"
        if not isinstance(row, (list, tuple)) or len(row) != arity:
            problems.append(
                ConfigProblem(
                    path,
                    f"must be a list of {arity} values, one per name in param, got {row!r}",
                )
            )
            continue
        why = next((json_problem(v) for v in row if json_problem(v)), "")
        if why:
            problems.append(ConfigProblem(path, f"options must be JSON values: {why}"))
            continue
        first = seen.setdefault(canonical(list(row)), j)
        if first != j:
            problems.append(ConfigProblem(path, f"duplicate of options[{first}]: {row!r}"))
            continue
        rows.append(tuple(row))
    return tuple(rows)
