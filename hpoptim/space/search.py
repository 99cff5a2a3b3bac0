"""The search space: parameters by dotted name, each with a distribution, and dotted-name helpers.

A config lists the optimised parameters in cluster_utils' form::

    {"param": "model.lr", "distribution": "TruncatedLogNormal", "bounds": [1e-5, 1e-2]}
    {"param": "config.rl.net_arch:1", "distribution": "Discrete", "options": [64, 128]}

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

    Raises:
        ConfigError: A name is not a dotted path of identifiers (with an optional
            ``:<index>`` suffix), or one name is a prefix of another.
    """

    def __init__(self, distributions: Mapping[str, Distribution]) -> None:
        problems = [ConfigProblem(name, _name_problem(name)) for name in distributions]
        problems = [p for p in problems if p.message]
        if problems:
            raise ConfigError(problems)
        nest(dict.fromkeys(distributions))
        self._dists = dict(distributions)

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in config order."""
        return tuple(self._dists)

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
        return isinstance(other, SearchSpace) and list(self._dists.items()) == list(
            other._dists.items()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SearchSpace({self._dists!r})"

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` has exactly this space's names, each with a possible value."""
        return set(params) == set(self._dists) and all(
            dist.contains(params[name]) for name, dist in self._dists.items()
        )

    def to_config(self) -> list[dict[str, Any]]:
        """The config entries that rebuild this space."""
        return [
            {"param": name, "distribution": dist.name, **dist.to_entry()}
            for name, dist in self._dists.items()
        ]

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
        first_index: dict[str, int] = {}
        for i, entry in enumerate(entries):
            where = f"{path}[{i}]"
            name, dist = _parse_entry(entry, where, problems)
            if name is None:
                continue
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
        return cls(dists)


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
                problems += [ConfigProblem(f"{where}.{p.path}", p.message) for p in exc.problems]
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
