"""Sampling models of one parameter: its prior, and the CEM sampler's refitted state.

:func:`prior` turns a :class:`~hpoptim.space.distributions.Distribution` (a plain
description of a domain) into a model that can be sampled; the random sampler samples
priors, the CEM sampler refits the models to its elite with :meth:`ParamModel.fit`.
Models are immutable: ``fit`` returns a new one.
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hpoptim.space import Bounded, Discrete, Distribution

#: Default floor on a refitted model's spread, as a fraction of its range. Chosen on
#: ``benchmarks/optimizers.py`` (10 seeds, 10 in flight): at 400 settings the median
#: regret falls steadily from a floor of 0.05 to 0.005 (average rank over six problems
#: 4.8 at 0.05, 3.2 at 0.03, 1.5 at 0.005), but with one setting in flight a floor of
#: 0.02 or less let CEM settle early beside the optimum of a quadratic
#: (``tests/samplers/test_cem.py``); 0.03 is the smallest floor that did not.
MIN_SPREAD = 0.03


class ParamModel(ABC):
    """A distribution over one parameter's values that can be sampled and refitted."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value: a plain Python int, float or JSON value, never a numpy type."""

    @abstractmethod
    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> ParamModel:
        """A new model fitted to ``values`` (elite samples).

        Args:
            values: Values of the parameter's domain.
            min_spread: Floor on the spread: the standard deviation stays at least
                this fraction of the range, each option's probability at least this
                fraction of the uniform one.
            momentum: For normal models, how far sampling extrapolates the last move
                of the mean (see :class:`NormalModel`).

        Raises:
            ValueError: A value is outside the domain.
        """


def prior(dist: Distribution) -> ParamModel:
    """The prior the config gives ``dist``, as a model."""
    if isinstance(dist, Discrete):
        return CategoricalModel(dist)
    if isinstance(dist, Bounded):
        return NormalModel(dist) if dist.prior == "normal" else WindowModel(dist)
    raise TypeError(f"no model for {type(dist).__name__}")


@dataclass(frozen=True)
class _BoundedModel(ParamModel):
    dist: Bounded

    def _elite_moments(
        self, values: Sequence[Any], min_spread: float
    ) -> tuple[float, float] | None:
        """Mean and std of ``values`` in inner space, the std floored at a share of the range.

        Returns None when there are no values to fit to.
        """
        inner = []
        for value in values:
            if not self.dist.contains(value):
                raise ValueError(f"{value!r} is outside {self.dist!r}")
            inner.append(self.dist.to_inner(value))
        if not inner:
            return None
        lo, hi = self.dist.inner_domain()
        std = max(statistics.pstdev(inner), min_spread * (hi - lo), 1e-12 * (hi - lo))
        return statistics.fmean(inner), std


def _std_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def truncated_standard_normal(rng: np.random.Generator, alpha: float, beta: float) -> float:
    """Inverse-CDF sample of N(0, 1) truncated to [alpha, beta], accurate in the lower tail."""
    if alpha > 0:  # work in the lower tail, where the CDF keeps its precision
        return -truncated_standard_normal(rng, -beta, -alpha)
    p_lo, p_hi = _std_normal_cdf(alpha), _std_normal_cdf(beta)
    p = p_lo + float(rng.random()) * (p_hi - p_lo)
    if not 0.0 < p < 1.0 or p_hi <= p_lo:  # all mass at the edge, beyond float precision
        return alpha
    return min(max(statistics.NormalDist().inv_cdf(p), alpha), beta)


@dataclass(frozen=True)
class NormalModel(_BoundedModel):
    """Normal in inner space, truncated (not clipped) to the domain.

    Attributes:
        dist: The domain.
        mean: Mean in inner space (log space for log domains); None: the bounds' midpoint.
        std: Standard deviation in inner space; None: a quarter of the bounds' width.
        last_mean: The mean before the last fit, for momentum.
        momentum: Sampling centres on ``mean + momentum / (1 - momentum) * (mean -
            last_mean)`` when that lies within the bounds: the last move of the mean,
            repeated ``momentum / (1 - momentum)`` times (3 times for 0.75).
    """

    mean: float | None = None
    std: float | None = None
    last_mean: float | None = None
    momentum: float = 0.0

    @property
    def loc(self) -> float:
        """The mean in inner space."""
        lo, hi = self.dist.inner_bounds()
        return (lo + hi) / 2 if self.mean is None else self.mean

    @property
    def scale(self) -> float:
        """The standard deviation in inner space."""
        lo, hi = self.dist.inner_bounds()
        return (hi - lo) / 4 if self.std is None else self.std

    def sampling_mean(self) -> float:
        """The centre samples are drawn around: the mean, moved on by momentum."""
        mean = self.loc
        if self.momentum and self.last_mean is not None:
            shifted = mean + self.momentum / (1.0 - self.momentum) * (mean - self.last_mean)
            lo, hi = self.dist.inner_bounds()
            if lo <= shifted <= hi:
                return shifted
        return mean

    def sample(self, rng: np.random.Generator) -> Any:
        mean, std = self.sampling_mean(), self.scale
        lo, hi = self.dist.inner_domain()
        z = truncated_standard_normal(rng, (lo - mean) / std, (hi - mean) / std)
        return self.dist.from_inner(min(max(mean + std * z, lo), hi))

    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> ParamModel:
        moments = self._elite_moments(values, min_spread)
        if moments is None:
            return self
        mean, std = moments
        return replace(self, mean=mean, std=std, last_mean=self.loc, momentum=momentum)


@dataclass(frozen=True)
class WindowModel(_BoundedModel):
    """Uniform in inner space over ``window`` (default: the whole domain).

    Attributes:
        dist: The domain.
        window: Inner-space interval sampled after a fit (moment-matched to the elite).
    """

    window: tuple[float, float] | None = None

    def sample(self, rng: np.random.Generator) -> Any:
        lo, hi = self.dist.inner_domain() if self.window is None else self.window
        return self.dist.from_inner(lo + (hi - lo) * float(rng.random()))

    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> ParamModel:
        moments = self._elite_moments(values, min_spread)
        if moments is None:
            return self
        mean, std = moments
        lo, hi = self.dist.inner_domain()
        half = min(math.sqrt(3.0) * std, (hi - lo) / 2)  # a uniform's std is width / sqrt(12)
        centre = min(max(mean, lo + half), hi - half)
        return replace(self, window=(centre - half, centre + half))


@dataclass(frozen=True)
class CategoricalModel(ParamModel):
    """A choice among a :class:`Discrete` domain's options.

    Attributes:
        dist: The domain.
        probs: Probability of each option; None: uniform.
    """

    dist: Discrete
    probs: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.probs is not None and (
            len(self.probs) != len(self.dist.options)
            or min(self.probs) < 0
            or not math.isclose(sum(self.probs), 1.0, rel_tol=1e-9)
        ):
            raise ValueError(f"probs must be one probability per option summing to 1: {self}")

    def sample(self, rng: np.random.Generator) -> Any:
        n = len(self.dist.options)
        index = int(rng.integers(n)) if self.probs is None else int(rng.choice(n, p=self.probs))
        return self.dist.option(index)

    def fit(
        self, values: Sequence[Any], *, min_spread: float = MIN_SPREAD, momentum: float = 0.0
    ) -> ParamModel:
        if not values:
            return self
        k, n = len(self.dist.options), len(values)
        counts = [0] * k
        for value in values:
            index = self.dist.index(value)
            if index is None:
                raise ValueError(f"{value!r} is not an option of {self.dist!r}")
            counts[index] += 1
        # cluster_utils' add-one smoothing, then mixed with uniform to floor every option
        smoothed = [(1 + count) / (n + k) for count in counts]
        probs = [(1 - min_spread) * p + min_spread / k for p in smoothed]
        total = sum(probs)
        return replace(self, probs=tuple(p / total for p in probs))
