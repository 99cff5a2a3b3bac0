"""Distributions: plain descriptions of one parameter's domain, and their registry.

A distribution says which values a parameter may take (bounds, log scale, integers,
options) and what prior the config gives it (normal or uniform); it holds no fitted
state. Samplers keep their own models of it: the CEM sampler's refitted normals and
windows live in :mod:`hpoptim.samplers.models`, the grid's spreading of values over
the bounds in :mod:`hpoptim.samplers.grid`.
"""

from __future__ import annotations

import copy
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from hpoptim.errors import ConfigError
from hpoptim.messages import json_problem


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    """A number that converts to a finite float (an int too large for one is not)."""
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def canonical(value: Any) -> str:
    """A key equal for equal JSON values (lists and tuples alike, dict order ignored)."""
    return json.dumps(value, sort_keys=True)


class Distribution(ABC):
    """The domain of one parameter and the prior the config gives it.

    Subclasses are frozen dataclasses validated in their constructor; invalid
    arguments raise :class:`ConfigError` whose problem paths are the entry keys
    (``bounds``, ``options``).
    """

    #: The ``distribution`` name in configs.
    name: ClassVar[str]
    #: Entry keys besides ``param`` and ``distribution``, all required.
    entry_keys: ClassVar[tuple[str, ...]]

    @classmethod
    @abstractmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Distribution:
        """Build from a config entry whose keys were already checked."""

    @abstractmethod
    def to_entry(self) -> dict[str, Any]:
        """The entry keys (without ``param``) that rebuild this distribution."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a value of this domain."""


def _problem(key: str, message: str) -> ConfigError:
    return ConfigError.single(key, message)


@dataclass(frozen=True)
class Bounded(Distribution):
    """A numeric interval ``bounds`` (both ends included), possibly log-scaled or integer.

    Attributes:
        bounds: ``(low, high)``; ints for integer distributions, floats otherwise.
        log: Whether the parameter varies on a log scale (``bounds`` must be positive).
        integer: Whether the values are integers.
        prior: ``"normal"``: a normal in the (log) space truncated to the bounds,
            centred at their midpoint with a standard deviation of a quarter of
            their width; ``"uniform"``: uniform over the bounds in that space.
    """

    bounds: tuple[float, float]

    entry_keys: ClassVar[tuple[str, ...]] = ("bounds",)
    log: ClassVar[bool] = False
    integer: ClassVar[bool] = False
    prior: ClassVar[Literal["normal", "uniform"]] = "uniform"

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        if not (_is_finite_number(lo) and _is_finite_number(hi)):
            raise _problem("bounds", f"must be two finite numbers [low, high], got {[lo, hi]}")
        if self.integer and not (float(lo).is_integer() and float(hi).is_integer()):
            raise _problem("bounds", f"must be integers for {self.name}, got {[lo, hi]}")
        if not lo < hi:
            raise _problem("bounds", f"must satisfy low < high, got {[lo, hi]}")
        if not math.isfinite(float(hi) - float(lo)):
            raise _problem("bounds", f"must be less than 1e308 apart, got {[lo, hi]}")
        if self.log and lo <= 0:
            raise _problem("bounds", f"must be positive for {self.name}, got {[lo, hi]}")
        kind = int if self.integer else float
        object.__setattr__(self, "bounds", (kind(lo), kind(hi)))

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Distribution:
        bounds = entry["bounds"]
        if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
            raise _problem("bounds", f"must be a list [low, high] of two numbers, got {bounds!r}")
        return cls(bounds=(bounds[0], bounds[1]))

    def to_entry(self) -> dict[str, Any]:
        return {"bounds": list(self.bounds)}

    def contains(self, value: Any) -> bool:
        kind = int if self.integer else float
        return (
            isinstance(value, kind)
            and _is_number(value)
            and self.bounds[0] <= value <= self.bounds[1]
        )

    def to_inner(self, value: float) -> float:
        """``value`` in the inner space: its log for log distributions, else itself."""
        return math.log(value) if self.log else float(value)

    def from_inner(self, inner: float) -> float | int:
        """The value at ``inner``, clipped to the bounds (and rounded, for integers)."""
        lo, hi = self.bounds
        value = math.exp(inner) if self.log else inner
        if self.integer:
            return int(min(max(math.floor(value + 0.5), lo), hi))
        return float(min(max(value, lo), hi))

    def inner_bounds(self) -> tuple[float, float]:
        """The bounds in the inner (log or linear) space."""
        return self.to_inner(self.bounds[0]), self.to_inner(self.bounds[1])

    def inner_domain(self) -> tuple[float, float]:
        """The inner interval a continuous model covers: integers own ±0.5 around them."""
        lo, hi = self.bounds
        pad = 0.5 if self.integer else 0.0
        return self.to_inner(lo - pad), self.to_inner(hi + pad)


@dataclass(frozen=True)
class TruncatedNormal(Bounded):
    """Values in ``bounds``; prior: a normal truncated to them, mean midpoint, std width / 4."""

    name: ClassVar[str] = "TruncatedNormal"
    prior: ClassVar[Literal["normal", "uniform"]] = "normal"


@dataclass(frozen=True)
class TruncatedLogNormal(Bounded):
    """Positive values in ``bounds`` on a log scale; prior: :class:`TruncatedNormal` of the log."""

    name: ClassVar[str] = "TruncatedLogNormal"
    log: ClassVar[bool] = True
    prior: ClassVar[Literal["normal", "uniform"]] = "normal"


@dataclass(frozen=True)
class IntNormal(Bounded):
    """Integers in ``bounds``; prior: :class:`TruncatedNormal`, rounded."""

    name: ClassVar[str] = "IntNormal"
    integer: ClassVar[bool] = True
    prior: ClassVar[Literal["normal", "uniform"]] = "normal"


@dataclass(frozen=True)
class IntLogNormal(Bounded):
    """Positive integers in ``bounds``, log scale; prior: :class:`TruncatedLogNormal`, rounded."""

    name: ClassVar[str] = "IntLogNormal"
    log: ClassVar[bool] = True
    integer: ClassVar[bool] = True
    prior: ClassVar[Literal["normal", "uniform"]] = "normal"


@dataclass(frozen=True)
class Uniform(Bounded):
    """Values in ``bounds``; prior: uniform."""

    name: ClassVar[str] = "Uniform"


@dataclass(frozen=True)
class LogUniform(Bounded):
    """Positive values in ``bounds`` on a log scale; prior: uniform in log space."""

    name: ClassVar[str] = "LogUniform"
    log: ClassVar[bool] = True


@dataclass(frozen=True)
class IntUniform(Bounded):
    """The integers from ``bounds[0]`` to ``bounds[1]``, both included; prior: uniform."""

    name: ClassVar[str] = "IntUniform"
    integer: ClassVar[bool] = True


@dataclass(frozen=True)
class IntLogUniform(Bounded):
    """Positive integers in ``bounds`` on a log scale (batch sizes); prior: log-uniform, rounded.

    Each integer gets the prior mass of the log interval ±0.5 around it.
    """

    name: ClassVar[str] = "IntLogUniform"
    log: ClassVar[bool] = True
    integer: ClassVar[bool] = True


@dataclass(frozen=True)
class Discrete(Distribution):
    """A choice among ``options`` (any JSON values, lists and dicts included).

    Attributes:
        options: The distinct values, in config order.
    """

    options: tuple[Any, ...]
    _keys: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    name: ClassVar[str] = "Discrete"
    entry_keys: ClassVar[tuple[str, ...]] = ("options",)

    def __post_init__(self) -> None:
        if not self.options:
            raise _problem("options", "must be a non-empty list of values, got []")
        seen: dict[str, int] = {}
        for i, option in enumerate(self.options):
            why = json_problem(option)
            if why:
                raise _problem(f"options[{i}]", f"options must be JSON values: {why}")
            j = seen.setdefault(canonical(option), i)
            if j != i:
                raise _problem(f"options[{i}]", f"duplicate of options[{j}]: {option!r}")
        object.__setattr__(self, "_keys", tuple(seen))

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Distribution:
        options = entry["options"]
        if not isinstance(options, (list, tuple)):
            raise _problem("options", f"must be a non-empty list of values, got {options!r}")
        return cls(options=tuple(options))

    def to_entry(self) -> dict[str, Any]:
        return {"options": copy.deepcopy(list(self.options))}

    def contains(self, value: Any) -> bool:
        return self.index(value) is not None

    def keys(self) -> tuple[str, ...]:
        """Each option's canonical JSON text, in option order."""
        return self._keys

    def index(self, value: Any) -> int | None:
        """The position of ``value`` among the options (lists and tuples alike), or None."""
        try:
            key = canonical(value)
        except (TypeError, ValueError):
            return None
        return next((i for i, k in enumerate(self.keys()) if k == key), None)

    def option(self, index: int) -> Any:
        """A fresh copy of option ``index``."""
        return copy.deepcopy(self.options[index])


DISTRIBUTIONS: dict[str, type[Distribution]] = {
    cls.name: cls
    for cls in (
        TruncatedNormal,
        TruncatedLogNormal,
        IntNormal,
        IntLogNormal,
        Discrete,
        Uniform,
        LogUniform,
        IntUniform,
        IntLogUniform,
    )
}
