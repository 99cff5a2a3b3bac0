"""The search space: parameters by dotted name, each with a distribution, and dotted-name helpers.

A config lists the optimised parameters in cluster_utils' form::

    {"param": "model.lr", "distribution": "TruncatedLogNormal", "bounds": [1e-5, 1e-2]}
    {"param": "config.rl.net_arch:1", "distribution": "Discrete", "options": [64, 128]}
    {"param": ["model.lr", "model.batch"], "distribution": "Discrete",
     "options": [[0.1, 32], [0.01, 256]]}

The last one zips its parameters (see :mod:`hpoptim.space.zipped`).
:meth:`SearchSpace.from_config` validates such a list and reports every problem at once.
The distributions themselves live in :mod:`hpoptim.space.distributions`; the package
``hpoptim.space`` re-exports both modules' names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.messages import did_you_mean, unknown_key_problems
from hpoptim.space.distributions import DISTRIBUTIONS, Distribution
from hpoptim.space.zipped import ZipGroup, parse_zip_entry

__all__ = ["SearchSpace", "flatten", "nest"]

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[0-9]+)?")
_BASE_KEYS = ("param", "distribution")


def flatten(nested: Mapping[str, Any]) -> dict[str, Any]:
    """One dotted key per leaf; non-empty dicts are descended, everything else is a leaf."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping) and value:
            for sub, leaf in flatten(value).items():
                flat[f"{key}.{sub}"] = leaf
        else:
            flat[str(key)] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten`: split keys on ``.`` (``a.b:1`` keeps ``b:1`` as a key).

    Raises:
        ConfigError: One key is a prefix of another (both ``a`` and ``a.b``).
    """
    nested: dict[str, Any] = {}
    leaves: dict[tuple[str, ...], str] = {}  # path of each leaf -> its flat key
    parents: dict[tuple[str, ...], str] = {}  # path of each created dict -> first key inside
    for key, value in flat.items():
        parts = tuple(key.split("."))
        for depth in range(1, len(parts)):
            if parts[:depth] in leaves:
                raise _conflict(key, leaves[parts[:depth]])
            parents.setdefault(parts[:depth], key)
        if parts in parents:
            raise _conflict(key, parents[parts])
        leaves[parts] = key
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _conflict(key: str, other: str) -> ConfigError:
    return ConfigError.single(
        key, f"conflicts with {other!r}: a key cannot be both a value and the parent of others"
    )


_ALL_KEYS = tuple(sorted({*_BASE_KEYS, *(k for c in DISTRIBUTIONS.values() for k in c.entry_keys)}))


class SearchSpace:
    """The optimised parameters, by dotted name, in config order.

    Args:
        distributions: Parameter name -> distribution.
        groups: Zipped parameters (each name's distribution is its column's values).

    Raises:
        ConfigError: A name is not a dotted path of identifiers (with an optional
            ``:<index>`` suffix), one name is a prefix of another, or a group names a
            parameter the space lacks or that another group has.
    """

    def __init__(
        self, distributions: Mapping[str, Distribution], groups: Sequence[ZipGroup] = ()
    ) -> None:
        problems = [ConfigProblem(name, _name_problem(name)) for name in distributions]
        problems = [p for p in problems if p.message]
        grouped = [name for group in groups for name in group.names]
        problems += [
            ConfigProblem(name, "a zipped name must be a parameter of the space, once")
            for i, name in enumerate(grouped)
            if name not in distributions or name in grouped[:i]
        ]
        if problems:
            raise ConfigError(problems)
        nest(dict.fromkeys(distributions))
        self._dists = dict(distributions)
        self._groups = tuple(groups)

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in config order."""
        return tuple(self._dists)

    @property
    def groups(self) -> tuple[ZipGroup, ...]:
        """The zipped parameters, in config order."""
        return self._groups

    def entries(self) -> tuple[tuple[str, ...], ...]:
        """The names of each config entry, in config order: one, or a zip group's."""
        group_of = {group.names[0]: group for group in self._groups}
        grouped = {name for group in self._groups for name in group.names}
        out: list[tuple[str, ...]] = []
        for name in self._dists:
            if name in group_of:
                out.append(group_of[name].names)
            elif name not in grouped:
                out.append((name,))
        return tuple(out)

    @property
    def distributions(self) -> dict[str, Distribution]:
        """Parameter name -> distribution, in config order (a copy)."""
        return dict(self._dists)

    def __len__(self) -> int:
        return len(self._dists)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dists)

    def __getitem__(self, name: str) -> Distribution:
        return self._dists[name]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SearchSpace)
            and list(self._dists.items()) == list(other._dists.items())
            and self._groups == other._groups
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        groups = f", groups={self._groups!r}" if self._groups else ""
        return f"SearchSpace({self._dists!r}{groups})"

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` has exactly this space's names, each with a possible value
        (and each zip group's values one of its rows)."""
        return (
            set(params) == set(self._dists)
            and all(dist.contains(params[name]) for name, dist in self._dists.items())
            and all(group.index(params) is not None for group in self._groups)
        )

    def to_config(self) -> list[dict[str, Any]]:
        """The config entries that rebuild this space."""
        groups = {group.names[0]: group for group in self._groups}
        out = []
        for names in self.entries():
            if names[0] in groups:
                out.append(groups[names[0]].to_entry())
            else:
                dist = self._dists[names[0]]
                out.append({"param": names[0], "distribution": dist.name, **dist.to_entry()})
        return out

    @classmethod
    def from_config(
        cls, entries: Sequence[Mapping[str, Any]], path: str = "optimized_params"
    ) -> SearchSpace:
        """Validate cluster_utils-style entries and build the space.

        Raises:
            ConfigError: Every problem of every entry, with paths like
                ``optimized_params[2].bounds``.
        """
        if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Sequence):
            raise ConfigError.single(path, f"must be a list of entries, got {entries!r}")
        problems: list[ConfigProblem] = []
        dists: dict[str, Distribution] = {}
        groups: list[ZipGroup] = []
        first_index: dict[str, int] = {}
        for i, entry in enumerate(entries):
            where = f"{path}[{i}]"
            if isinstance(entry, Mapping) and isinstance(entry.get("param"), (list, tuple)):
                parsed: list[tuple[str, Distribution | None]]
                group, found = parse_zip_entry(entry, where, _name_problem)
                problems += found
                parsed = [] if group is None else [(n, group.column(n)) for n in group.names]
                groups += [] if group is None else [group]
            else:
                name, dist = _parse_entry(entry, where, problems)
                parsed = [] if name is None else [(name, dist)]
            for name, dist in parsed:
                if name in first_index:
                    problems.append(
                        ConfigProblem(
                            f"{where}.param",
                            f"duplicate parameter {name!r} (also {path}[{first_index[name]}])",
                        )
                    )
                    continue
                first_index[name] = i
                if dist is not None:
                    dists[name] = dist
        problems += _prefix_conflicts(list(first_index), path, first_index)
        if problems:
            raise ConfigError(problems)
        return cls(dists, groups)


def _name_problem(name: Any) -> str:
    if isinstance(name, str) and _NAME_RE.fullmatch(name):
        return ""
    return (
        "a parameter name must be a dotted path of identifiers with an optional "
        f"':<index>' suffix (e.g. 'model.lr', 'config.net_arch:1'), got {name!r}"
    )


def _parse_entry(
    entry: Any, where: str, problems: list[ConfigProblem]
) -> tuple[str | None, Distribution | None]:
    """Check one entry; append its problems; return its name and distribution if valid."""
    if not isinstance(entry, Mapping):
        problems.append(
            ConfigProblem(
                where, f"must be a mapping with keys {', '.join(_ALL_KEYS)}, got {entry!r}"
            )
        )
        return None, None
    before = len(problems)
    name = entry.get("param")
    if "param" not in entry:
        problems.append(ConfigProblem(f"{where}.param", "missing; the parameter's dotted name"))
    elif _name_problem(name):
        problems.append(ConfigProblem(f"{where}.param", _name_problem(name)))
    dist_cls = _distribution_class(entry, where, problems)
    valid = _ALL_KEYS if dist_cls is None else (*_BASE_KEYS, *dist_cls.entry_keys)
    owner = "an entry" if dist_cls is None else dist_cls.name
    problems += unknown_key_problems(entry, valid, where, owner)
    dist = None
    if dist_cls is not None:
        missing = [key for key in dist_cls.entry_keys if key not in entry]
        problems += [
            ConfigProblem(f"{where}.{k}", f"missing; required by {dist_cls.name}") for k in missing
        ]
        if not missing:
            try:
                dist = dist_cls.from_entry(entry)
            except ConfigError as exc:
                problems += [p.at(f"{where}.{p.path}") for p in exc.problems]
    ok = len(problems) == before
    return (name if isinstance(name, str) and not _name_problem(name) else None), (
        dist if ok else None
    )


def _distribution_class(
    entry: Mapping[str, Any], where: str, problems: list[ConfigProblem]
) -> type[Distribution] | None:
    valid = ", ".join(DISTRIBUTIONS)
    if "distribution" not in entry:
        problems.append(ConfigProblem(f"{where}.distribution", f"missing; one of {valid}"))
        return None
    name = entry["distribution"]
    if isinstance(name, str) and name in DISTRIBUTIONS:
        return DISTRIBUTIONS[name]
    hint = did_you_mean(name, list(DISTRIBUTIONS)) if isinstance(name, str) else ""
    problems.append(
        ConfigProblem(
            f"{where}.distribution", f"unknown distribution {name!r}; valid: {valid}{hint}"
        )
    )
    return None


def _prefix_conflicts(names: list[str], path: str, index: Mapping[str, int]) -> list[ConfigProblem]:
    """Problems for names that are a dotted prefix of another name (``a`` and ``a.b``)."""
    problems = []
    for name in names:
        for other in names:
            if other.startswith(name + "."):
                problems.append(
                    ConfigProblem(
                        f"{path}[{index[other]}].param",
                        f"{other!r} lies inside parameter {name!r} ({path}[{index[name]}]); "
                        "a name cannot be both a value and a parent of other names",
                    )
                )
    return problems
