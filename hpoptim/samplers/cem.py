"""Cross-entropy method, as cluster_utils' ``cem_metaoptimizer``.

Every parameter keeps its own distribution. After each result the elite, the best
``num_jobs_in_elite`` settings told so far, is updated; once it holds at least
:data:`MIN_ELITE_TO_FIT` settings (or the whole elite if smaller), each distribution is
refitted to the elite's values. Failed settings never enter the elite. Normal
models sample around their mean pushed further along its last move (``momentum``).
cluster_utils moves the mean once per batch of results; here the models are refitted
whenever a single result enters the elite, so the move extrapolated is the one that
result caused. Every spread keeps a floor (``min_spread``) so exploration never
collapses. With ``with_restarts``, a fraction of the asks re-proposes
a setting from the better half of the elite, to measure it again.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from hpoptim.samplers.base import BaseSampler, Check, SamplerHistory, is_int, is_real
from hpoptim.samplers.models import MIN_SPREAD, ParamModel, prior
from hpoptim.space import SearchSpace

#: Elite size from which the distributions are refitted (cluster_utils' value).
MIN_ELITE_TO_FIT = 5

DEFAULTS: dict[str, Any] = {
    "num_jobs_in_elite": 10,
    "with_restarts": False,
    "restart_probability": 0.2,
    "momentum": 0.75,
    "min_spread": MIN_SPREAD,
}


_CHECKS: dict[str, Check] = {
    "num_jobs_in_elite": (lambda v: is_int(v) and v >= 1, "a positive integer"),
    "with_restarts": (lambda v: isinstance(v, bool), "true or false"),
    "restart_probability": (lambda v: is_real(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "momentum": (lambda v: is_real(v) and 0 <= v < 1, "a number in [0, 1)"),
    "min_spread": (lambda v: is_real(v) and 0 < v < 1, "a number in (0, 1)"),
}


class CEMSampler(BaseSampler):
    """Cross-entropy method over independent per-parameter distributions.

    Settings (all optional):
        num_jobs_in_elite (int, default 10): size of the elite.
        with_restarts (bool, default False): re-propose elite settings now and then.
        restart_probability (float, default 0.2): how often, once the elite is full.
        momentum (float in [0, 1), default 0.75): normal models sample around
            ``mean + momentum / (1 - momentum) * (mean - previous mean)``, the previous
            mean being the one before the last refit; 0 turns it off.
        min_spread (float in (0, 1), default 0.03): floor on a refitted std as a
            fraction of the bounds' width (and on option probabilities, as a
            fraction of the uniform one).

    Args:
        space: The search space.
        minimize: True if lower metric values are better.
        seed: Seed of the random generator.
        settings: ``optimizer_settings``, validated with :meth:`validate_settings`.
    """

    name: ClassVar[str] = "cem_metaoptimizer"
    restores_exactly: ClassVar[bool] = True
    checks: ClassVar[dict[str, Check]] = _CHECKS
    defaults: ClassVar[dict[str, Any]] = DEFAULTS

    def __init__(
        self,
        space: SearchSpace,
        *,
        minimize: bool,
        seed: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(space, minimize=minimize, seed=seed, settings=settings)
        self.n_elite = int(self.options["num_jobs_in_elite"])
        self.with_restarts = bool(self.options["with_restarts"])
        self.restart_probability = float(self.options["restart_probability"])
        self.momentum = float(self.options["momentum"])
        self.min_spread = float(self.options["min_spread"])
        #: Each parameter's model: its prior until the elite is large enough to fit.
        self.models: dict[str, ParamModel] = {
            name: prior(dist) for name, dist in space.distributions.items()
        }
        self._elite: list[tuple[float, int, dict[str, Any]]] = []  # (loss, order, params)
        self._n_told = 0

    @property
    def elite(self) -> list[dict[str, Any]]:
        """The elite's settings, best first (copies)."""
        return [copy.deepcopy(params) for _, _, params in self._elite]

    def ask(self) -> dict[str, Any]:
        """A sample of the current models, or with restarts sometimes an elite setting."""
        rng = self.rng_for(self.n_asked)
        self.n_asked += 1
        if (
            self.with_restarts
            and len(self._elite) >= self.n_elite
            and float(rng.random()) < self.restart_probability
        ):
            better_half = self._elite[: max(1, len(self._elite) // 2)]
            return copy.deepcopy(better_half[int(rng.integers(len(better_half)))][2])
        return {name: model.sample(rng) for name, model in self.models.items()}

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Add a result; refit the distributions if it entered the elite."""
        self._n_told += 1
        loss = self.loss(params, value)
        if loss is None:
            return
        entry = (loss, self._n_told, copy.deepcopy(dict(params)))
        position = bisect.bisect(self._elite, entry[:2], key=lambda e: e[:2])
        if position >= self.n_elite:
            return
        self._elite.insert(position, entry)
        del self._elite[self.n_elite :]
        if len(self._elite) >= min(MIN_ELITE_TO_FIT, self.n_elite):
            self._refit()

    def restore(self, history: SamplerHistory) -> None:
        """Tell ``history``'s results again in their order; asks only move the counter.

        Every ask draws from its own generator (seed and ask index), so the state
        depends on the results told and their order alone.
        """
        for sid, value in history.told:
            self.tell(history.asked[sid], value)
        self.n_asked = len(history.asked)

    def _refit(self) -> None:
        for name, model in self.models.items():
            values = [params[name] for _, _, params in self._elite]
            self.models[name] = model.fit(
                values, min_spread=self.min_spread, momentum=self.momentum
            )
