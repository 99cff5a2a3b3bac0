"""Distributions over one parameter's values, and their registry by config name.

Distributions are immutable: :meth:`Distribution.fit` returns a new distribution refitted
to elite samples (used by the CEM sampler), with a floor on its spread.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from hpoptim.errors import ConfigError

#: Default floor on a refitted distribution's spread, as a fraction of its range.
MIN_SPREAD = 0.05


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    """A number that converts to a finite float (an int too large for one is not)."""
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def _json_problem(value: Any) -> str | None:
    """Why ``value`` is not a plain JSON value, or None."""
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, (list, tuple)):
        return next((p for p in map(_json_problem, value) if p), None)
    if isinstance(value, Mapping):
        if any(not isinstance(k, str) for k in value):
            return f"{value!r} has non-string keys"
        return next((p for p in map(_json_problem, value.values()) if p), None)
    return f"{value!r} of type {type(value).__name__} is not a JSON value"


def _canonical(value: Any) -> str:
    """A key equal for equal JSON values (lists and tuples alike, dict order ignored)."""
    return json.dumps(value, sort_keys=True)


class Distribution(ABC):
    """A distribution over the values of one parameter.

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
        """The entry keys (without ``param``) that rebuild this distribution's initial state."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value: a plain Python int, float or JSON value, never a numpy type."""

    @abstractmethod
    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> Distribution:
        """A new distribution fitted to ``values`` (elite samples).

        Args:
            values: Values previously sampled from this distribution.
            min_spread: Floor on the spread: the standard deviation stays at least
                this fraction of the range, each option's probability at least this
                fraction of the uniform one.
            momentum: For normal distributions, how far sampling extrapolates the move
                of the mean (cluster_utils uses 0.75: the last move, repeated 3 times).
        """

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a value this distribution can produce."""

    @abstractmethod
    def grid(self, n_points: int | None = None) -> tuple[Any, ...] | None:
        """Values for a grid search: the options, or ``n_points`` spread over the bounds.

        Returns None if the distribution is continuous and ``n_points`` is None.
        """


def _problem(key: str, message: str) -> ConfigError:
    return ConfigError.single(key, message)


@dataclass(frozen=True)
class _Bounded(Distribution):
    """Shared parts of the distributions over a numeric interval ``bounds``."""

    bounds: tuple[float, float]

    entry_keys: ClassVar[tuple[str, ...]] = ("bounds",)
    log: ClassVar[bool] = False
    integer: ClassVar[bool] = False

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        if not (_is_finite_number(lo) and _is_finite_number(hi)):
            raise _problem("bounds", f"must be two finite numbers [low, high], got {[lo, hi]}")
        if self.integer and not (float(lo).is_integer() and float(hi).is_integer()):
            raise _problem("bounds", f"must be integers for {self.name}, got {[lo, hi]}")
        if not lo < hi:
            raise _problem("bounds", f"must satisfy low < high, got {[lo, hi]}")
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

    def _to_inner(self, value: float) -> float:
        return math.log(value) if self.log else float(value)

    def _from_inner(self, inner: float) -> float | int:
        lo, hi = self.bounds
        value = math.exp(inner) if self.log else inner
        if self.integer:
            return int(min(max(math.floor(value + 0.5), lo), hi))
        return float(min(max(value, lo), hi))

    def _inner_bounds(self) -> tuple[float, float]:
        """The bounds in the inner (log or linear) space."""
        return self._to_inner(self.bounds[0]), self._to_inner(self.bounds[1])

    def _domain(self) -> tuple[float, float]:
        """The inner interval sampled: integers own ±0.5 around them before rounding."""
        lo, hi = self.bounds
        pad = 0.5 if self.integer else 0.0
        return self._to_inner(lo - pad), self._to_inner(hi + pad)

    def _inner_values(self, values: Sequence[Any]) -> list[float]:
        inner = []
        for value in values:
            if not self.contains(value):
                raise ValueError(f"{value!r} is outside {self.name} with bounds {self.bounds}")
            inner.append(self._to_inner(value))
        return inner

    def _elite_moments(
        self, values: Sequence[Any], min_spread: float
    ) -> tuple[float, float] | None:
        """Mean and std of ``values`` in inner space, the std floored at a share of the range.

        Returns None when there are no values to fit to.
        """
        inner = self._inner_values(values)
        if not inner:
            return None
        lo, hi = self._domain()
        std = max(statistics.pstdev(inner), min_spread * (hi - lo), 1e-12 * (hi - lo))
        return statistics.fmean(inner), std

    def contains(self, value: Any) -> bool:
        kind = int if self.integer else float
        return (
            isinstance(value, kind)
            and _is_number(value)
            and self.bounds[0] <= value <= self.bounds[1]
        )

    def grid(self, n_points: int | None = None) -> tuple[Any, ...] | None:
        if n_points is None:
            return None
        lo, hi = self._inner_bounds()
        if n_points == 1:
            return (self._from_inner((lo + hi) / 2),)
        points = [self._from_inner(lo + (hi - lo) * i / (n_points - 1)) for i in range(n_points)]
        return tuple(dict.fromkeys(points))


def _std_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _truncated_standard_normal(rng: np.random.Generator, alpha: float, beta: float) -> float:
    """Inverse-CDF sample of N(0, 1) truncated to [alpha, beta], accurate in the lower tail."""
    if alpha > 0:  # work in the lower tail, where the CDF keeps its precision
        return -_truncated_standard_normal(rng, -beta, -alpha)
    p_lo, p_hi = _std_normal_cdf(alpha), _std_normal_cdf(beta)
    p = p_lo + float(rng.random()) * (p_hi - p_lo)
    if not 0.0 < p < 1.0 or p_hi <= p_lo:  # all mass at the edge, beyond float precision
        return alpha
    return min(max(statistics.NormalDist().inv_cdf(p), alpha), beta)


@dataclass(frozen=True)
class _Normal(_Bounded):
    """Normal distribution in inner space, truncated (not clipped) to the bounds.

    Attributes:
        bounds: ``(low, high)``.
        mean: Mean in inner space (log space for log variants); None: the bounds' midpoint.
        std: Standard deviation in inner space; None: a quarter of the bounds' width.
        last_mean: The mean before the last fit, for momentum.
        momentum: Sampling uses ``mean + momentum / (1 - momentum) * (mean - last_mean)``
            when that lies within the bounds.
    """

    mean: float | None = None
    std: float | None = None
    last_mean: float | None = None
    momentum: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.std is not None and not (math.isfinite(self.std) and self.std > 0):
            raise _problem("std", f"must be a positive finite number, got {self.std!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise _problem("momentum", f"must be in [0, 1), got {self.momentum!r}")

    @property
    def loc(self) -> float:
        """The mean in inner space."""
        lo, hi = self._inner_bounds()
        return (lo + hi) / 2 if self.mean is None else self.mean

    @property
    def scale(self) -> float:
        """The standard deviation in inner space."""
        lo, hi = self._inner_bounds()
        return (hi - lo) / 4 if self.std is None else self.std

    def _sampling_mean(self) -> float:
        mean = self.loc
        if self.momentum and self.last_mean is not None:
            shifted = mean + self.momentum / (1.0 - self.momentum) * (mean - self.last_mean)
            lo, hi = self._inner_bounds()
            if lo <= shifted <= hi:
                return shifted
        return mean

    def sample(self, rng: np.random.Generator) -> Any:
        mean, std = self._sampling_mean(), self.scale
        lo, hi = self._domain()
        z = _truncated_standard_normal(rng, (lo - mean) / std, (hi - mean) / std)
        return self._from_inner(min(max(mean + std * z, lo), hi))

    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> Distribution:
        moments = self._elite_moments(values, min_spread)
        if moments is None:
            return self
        mean, std = moments
        return replace(self, mean=mean, std=std, last_mean=self.loc, momentum=momentum)


@dataclass(frozen=True)
class TruncatedNormal(_Normal):
    """Normal over ``bounds`` truncated to them; starts at their midpoint, std width / 4."""

    name: ClassVar[str] = "TruncatedNormal"


@dataclass(frozen=True)
class TruncatedLogNormal(_Normal):
    """Normal in log space truncated to positive ``bounds``; mean and std are in log space."""

    name: ClassVar[str] = "TruncatedLogNormal"
    log: ClassVar[bool] = True


@dataclass(frozen=True)
class IntNormal(_Normal):
    """:class:`TruncatedNormal` over integer ``bounds``, rounded to integers within them."""

    name: ClassVar[str] = "IntNormal"
    integer: ClassVar[bool] = True


@dataclass(frozen=True)
class IntLogNormal(_Normal):
    """:class:`TruncatedLogNormal` over positive integer ``bounds``, rounded."""

    name: ClassVar[str] = "IntLogNormal"
    log: ClassVar[bool] = True
    integer: ClassVar[bool] = True


@dataclass(frozen=True)
class _Uniform(_Bounded):
    """Uniform in inner space over ``window`` (default: all of the bounds).

    Attributes:
        bounds: ``(low, high)``.
        window: Inner-space interval sampled after a fit (moment-matched to the elite).
    """

    window: tuple[float, float] | None = None

    def sample(self, rng: np.random.Generator) -> Any:
        lo, hi = self._domain() if self.window is None else self.window
        return self._from_inner(lo + (hi - lo) * float(rng.random()))

    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> Distribution:
        moments = self._elite_moments(values, min_spread)
        if moments is None:
            return self
        mean, std = moments
        lo, hi = self._domain()
        half = min(math.sqrt(3.0) * std, (hi - lo) / 2)  # a uniform's std is width / sqrt(12)
        centre = min(max(mean, lo + half), hi - half)
        return replace(self, window=(centre - half, centre + half))


@dataclass(frozen=True)
class Uniform(_Uniform):
    """Uniform over ``bounds``."""

    name: ClassVar[str] = "Uniform"


@dataclass(frozen=True)
class LogUniform(_Uniform):
    """Uniform in log space over positive ``bounds``."""

    name: ClassVar[str] = "LogUniform"
    log: ClassVar[bool] = True


@dataclass(frozen=True)
class IntUniform(_Uniform):
    """Uniform over the integers from ``bounds[0]`` to ``bounds[1]``, both included."""

    name: ClassVar[str] = "IntUniform"
    integer: ClassVar[bool] = True


@dataclass(frozen=True)
class Discrete(Distribution):
    """A choice among ``options`` (any JSON values, lists and dicts included).

    Attributes:
        options: The distinct values.
        probs: Probability of each option; None: uniform.
    """

    options: tuple[Any, ...]
    probs: tuple[float, ...] | None = None

    name: ClassVar[str] = "Discrete"
    entry_keys: ClassVar[tuple[str, ...]] = ("options",)

    def __post_init__(self) -> None:
        if not self.options:
            raise _problem("options", "must be a non-empty list of values, got []")
        seen: dict[str, int] = {}
        for i, option in enumerate(self.options):
            why = _json_problem(option)
            if why is not None:
                raise _problem(f"options[{i}]", f"options must be JSON values: {why}")
            j = seen.setdefault(_canonical(option), i)
            if j != i:
                raise _problem(f"options[{i}]", f"duplicate of options[{j}]: {option!r}")
        if self.probs is not None and (
            len(self.probs) != len(self.options)
            or min(self.probs) < 0
            or not math.isclose(sum(self.probs), 1.0, rel_tol=1e-9)
        ):
            raise _problem(
                "probs", f"must be one probability per option summing to 1, got {self.probs!r}"
            )

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Distribution:
        options = entry["options"]
        if not isinstance(options, (list, tuple)):
            raise _problem("options", f"must be a non-empty list of values, got {options!r}")
        return cls(options=tuple(options))

    def to_entry(self) -> dict[str, Any]:
        return {"options": copy.deepcopy(list(self.options))}

    def sample(self, rng: np.random.Generator) -> Any:
        n = len(self.options)
        index = int(rng.integers(n)) if self.probs is None else int(rng.choice(n, p=self.probs))
        return copy.deepcopy(self.options[index])

    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> Distribution:
        if not values:
            return self
        keys = [_canonical(option) for option in self.options]
        counts = dict.fromkeys(keys, 0)
        for value in values:
            key = _canonical(value)
            if key not in counts:
                raise ValueError(f"{value!r} is not an option of {self.name} {self.options!r}")
            counts[key] += 1
        k, n = len(keys), len(values)
        # cluster_utils' add-one smoothing, then mixed with uniform to floor every option
        smoothed = [(1 + counts[key]) / (n + k) for key in keys]
        probs = [(1 - min_spread) * p + min_spread / k for p in smoothed]
        total = sum(probs)
        return replace(self, probs=tuple(p / total for p in probs))

    def contains(self, value: Any) -> bool:
        return _canonical(value) in {_canonical(option) for option in self.options}

    def grid(self, n_points: int | None = None) -> tuple[Any, ...] | None:
        return tuple(copy.deepcopy(list(self.options)))


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
    )
}
