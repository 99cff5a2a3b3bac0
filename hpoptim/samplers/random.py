"""Random search: every setting is an independent sample of the search space."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.samplers.models import prior
from hpoptim.space import SearchSpace


class RandomSampler(BaseSampler):
    """Samples each parameter independently from its distribution; takes no settings.

    Args:
        space: The search space.
        minimize: True if lower metric values are better (unused).
        seed: Seed of the random generator.
        settings: Must be empty.
    """

    name: ClassVar[str] = "random"
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
        self._priors = {name: prior(dist) for name, dist in space.distributions.items()}

    def ask(self) -> dict[str, Any]:
        """A fresh independent sample of every parameter."""
        rng = self.rng_for(self.n_asked)
        self.n_asked += 1
        return {name: model.sample(rng) for name, model in self._priors.items()}

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Ignored: random search does not learn."""

    def restore(self, history: SamplerHistory) -> None:
        """Only the number of asks matters."""
        self.n_asked = len(history.asked)
