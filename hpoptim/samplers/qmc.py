"""Quasi-random search: a scrambled Sobol sequence mapped through each parameter's prior.

Like random search it learns nothing, but its settings cover the space more evenly
than independent draws: every prefix of ``2**m`` points puts the same number of
points in each of a fine grid of cells. Point ``k`` of the sequence becomes setting
``k`` by the inverse CDF of each parameter's prior (a truncated normal's quantiles
for the normal priors, uniform in the log or linear space otherwise, equal shares
for the options of a ``Discrete``), so the prior is honoured exactly.

The sequence comes from :class:`scipy.stats.qmc.Sobol`, seeded with the run seed;
point ``k`` depends only on the seed and ``k``, so a resume continues the sequence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.space import Bounded, Discrete, Distribution, SearchSpace


def from_unit(dist: Distribution, u: float) -> Any:
    """The value at quantile ``u`` in [0, 1) of ``dist``'s prior."""
    if isinstance(dist, Discrete):
        return dist.option(min(int(u * len(dist.options)), len(dist.options) - 1))
    assert isinstance(dist, Bounded)
    lo, hi = dist.inner_domain()
    if dist.prior == "uniform":
        return dist.from_inner(lo + (hi - lo) * u)
    from scipy.stats import truncnorm  # imported on first use: scipy.stats takes a second

    b_lo, b_hi = dist.inner_bounds()
    mean, std = (b_lo + b_hi) / 2, (b_hi - b_lo) / 4
    inner = float(truncnorm.ppf(u, (lo - mean) / std, (hi - mean) / std, loc=mean, scale=std))
    return dist.from_inner(min(max(inner, lo), hi))


class QMCSampler(BaseSampler):
    """Scrambled Sobol points through each parameter's prior; takes no settings.

    Args:
        space: The search space.
        minimize: True if lower metric values are better (unused).
        seed: Seed of the scrambling.
        settings: Must be empty.
    """

    name: ClassVar[str] = "quasirandom"
    restores_exactly: ClassVar[bool] = True
    learns: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        *,
        minimize: bool,
        seed: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(space, minimize=minimize, seed=seed, settings=settings)
        self._points = np.empty((0, len(space)))

    def _point(self, index: int) -> np.ndarray[Any, Any]:
        """Point ``index`` of the sequence: the first ``2**m`` points are a balanced set."""
        if index >= len(self._points):
            from scipy.stats import qmc

            m = max(4, math.ceil(math.log2(index + 1)))
            engine = qmc.Sobol(d=len(self.space), scramble=True, seed=self._entropy)
            self._points = engine.random_base2(m)
        point: np.ndarray[Any, Any] = self._points[index]
        return point

    def ask(self) -> dict[str, Any]:
        """The next point of the sequence, as a setting."""
        point = self._point(self.n_asked)
        self.n_asked += 1
        return {
            name: from_unit(self.space[name], float(u))
            for name, u in zip(self.space.names, point, strict=True)
        }

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Ignored: quasi-random search does not learn."""

    def restore(self, history: SamplerHistory) -> None:
        """Only the number of asks matters."""
        self.n_asked = len(history.asked)
