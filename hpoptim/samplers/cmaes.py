"""CMA-ES over the numeric parameters, on the ``cmaes`` package (as Optuna's CMA-ES is).

CMA-ES samples settings from a multivariate normal over the numeric parameters,
scaled to the unit cube of their inner space (log parameters in log space, each
integer owning the interval ±0.5 around it), and moves and reshapes that normal
towards the best of each generation. A generation is the next ``popsize`` successful
results in the order they are told, so settings still in flight when a generation is
learnt from count towards the next one instead of being dropped. The search starts at
the middle of the cube (the truncated normal priors' mean) with a step size of a sixth
of each range. ``Discrete`` parameters are outside its model: they are drawn
uniformly.

The state depends only on the seed and the results told, in their order, never on
where the asks fell between the tells: :meth:`CmaEsSampler.restore` tells the
journal's results again in one pass (asking nothing, without Optuna), and the
restored sampler proposes exactly what the uninterrupted one would.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import numpy as np

from hpoptim.errors import ConfigProblem
from hpoptim.samplers.base import BaseSampler, Check, SamplerHistory, is_int, settings_problems
from hpoptim.samplers.models import prior
from hpoptim.space import Bounded, Discrete, SearchSpace

if TYPE_CHECKING:
    import cmaes

#: One of the ``cmaes`` package's optimisers (imported when first used).
CmaOptimizer: TypeAlias = "cmaes.CMA | cmaes.SepCMA | cmaes.CMAwM"


def import_cmaes() -> Any:
    """The ``cmaes`` package, imported without ``scipy.stats`` unless that is loaded.

    ``cmaes`` imports ``scipy.stats`` for two functions of CMA-ES with margin (the
    normal CDF and the chi-squared quantile at one degree of freedom) and falls back
    to its own versions of them when SciPy is absent. Importing ``scipy.stats`` would
    cost the driver about 60 MB of memory and 0.4 s (on every resume), so it is
    hidden while ``cmaes`` is imported; it stays importable afterwards.
    """
    if "cmaes" in sys.modules:
        return sys.modules["cmaes"]
    hide = "scipy.stats" not in sys.modules
    if hide:
        sys.modules["scipy.stats"] = None  # type: ignore[assignment]  # import fails
    try:
        import cmaes
    finally:
        if hide and sys.modules.get("scipy.stats", 0) is None:
            del sys.modules["scipy.stats"]
    return cmaes


#: A numeric parameter's distribution and the inner interval its unit interval spans.
CubeDomain = tuple[Bounded, float, float]


def cube_domains(
    numeric: Mapping[str, Bounded], on_grid: frozenset[str] = frozenset()
) -> dict[str, CubeDomain]:
    """The inner interval of each parameter the unit cube spans: ±0.5 around the
    integers, except for those in ``on_grid`` (a grid from the lower to the upper bound)."""
    return {
        name: (dist, *(dist.inner_bounds() if name in on_grid else dist.inner_domain()))
        for name, dist in numeric.items()
    }


def to_cube(params: Mapping[str, Any], domains: Mapping[str, CubeDomain]) -> np.ndarray[Any, Any]:
    """The numeric parameters of ``params`` in the unit cube of ``domains``."""
    units = [
        (dist.to_inner(params[name]) - lo) / (hi - lo) for name, (dist, lo, hi) in domains.items()
    ]
    unit: np.ndarray[Any, Any] = np.clip(np.array(units), 0.0, 1.0)
    return unit


class UnitCma:
    """A CMA-ES optimiser over numeric parameters mapped onto the unit cube.

    Results are told one at a time and learnt from a generation (``population_size``
    successful results) at a time; a failed setting is simply left out.

    Args:
        numeric: The parameters the optimiser models, in order.
        optimizer: A fresh ``cmaes`` optimiser over ``[0, 1]`` per parameter.
        on_grid: Integer parameters the optimiser handles as a grid (CMA-ES with
            margin): their unit interval spans their bounds, not ±0.5 around them.
    """

    def __init__(
        self,
        numeric: Mapping[str, Bounded],
        optimizer: CmaOptimizer,
        on_grid: frozenset[str] = frozenset(),
    ) -> None:
        self.optimizer = optimizer
        self.domains = cube_domains(numeric, on_grid)
        self._generation: list[tuple[np.ndarray[Any, Any], float]] = []

    @property
    def population_size(self) -> int:
        return int(self.optimizer.population_size)

    def ask(self, seed: int) -> dict[str, Any]:
        """A sample of the numeric parameters, drawn with ``seed``."""
        self.optimizer.reseed_rng(seed)
        drawn = self.optimizer.ask()
        x = drawn[0] if isinstance(drawn, tuple) else drawn  # CMAwM: (encoded, for tell)
        params: dict[str, Any] = {}
        for (name, (dist, lo, hi)), u in zip(self.domains.items(), x, strict=True):
            params[name] = dist.from_inner(lo + (hi - lo) * float(u))
        return params

    def tell(self, params: Mapping[str, Any], loss: float) -> None:
        """Enter a successful result (lower ``loss`` is better) into the generation."""
        self._generation.append((to_cube(params, self.domains), loss))
        if len(self._generation) == self.population_size:
            self.optimizer.tell(self._generation)
            self._generation = []


class CmaEsSampler(BaseSampler):
    """CMA-ES over the numeric parameters of the search space.

    Settings (all optional):
        n_startup_trials (int, default 1): finished settings drawn from the prior
            before CMA-ES takes over (their results are learnt from too).
        popsize (int >= 2, default unset): successful settings per generation; unset:
            ``4 + 3 ln(n_numeric_params)``.
        use_separable_cma (bool, default false): a diagonal covariance (cheaper, for
            many parameters; ignored with one numeric parameter).
        with_margin (bool, default false): keep integer parameters from freezing
            (CMA-ES with margin; log-scaled integers stay continuous).
        lr_adapt (bool, default false): adapt the learning rate (noisy metrics).

    Args:
        space: The search space.
        minimize: True if lower metric values are better.
        seed: Seed of the proposals.
        settings: ``optimizer_settings``, validated with :meth:`validate_settings`.
    """

    name: ClassVar[str] = "cmaes"
    restores_exactly: ClassVar[bool] = True
    checks: ClassVar[dict[str, Check]] = {
        "n_startup_trials": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        "popsize": (lambda v: is_int(v) and v >= 2, "an integer >= 2"),
        "use_separable_cma": (lambda v: isinstance(v, bool), "true or false"),
        "with_margin": (lambda v: isinstance(v, bool), "true or false"),
        "lr_adapt": (lambda v: isinstance(v, bool), "true or false"),
    }
    defaults: ClassVar[dict[str, Any]] = {"n_startup_trials": 1}

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
        numeric = {n: d for n, d in space.distributions.items() if isinstance(d, Bounded)}
        self._cma = self._build(numeric) if numeric else None
        self._n_finished = 0

    @classmethod
    def validate_settings(
        cls, settings: Mapping[str, Any], space: SearchSpace
    ) -> list[ConfigProblem]:
        """Unknown keys, bad values, and CMA-ES variants that do not combine."""
        problems = settings_problems(cls.name, cls.checks, settings)
        if settings.get("use_separable_cma") is True and settings.get("with_margin") is True:
            rule = "cannot be true together with use_separable_cma"
            problems.append(ConfigProblem("optimizer_settings.with_margin", rule))
        return problems

    def ask(self) -> dict[str, Any]:
        """A prior sample during the startup phase; a CMA-ES sample after it."""
        index = self.n_asked
        self.n_asked += 1
        rng = self.rng_for(index)
        if self._cma is None or self._n_finished < int(self.options["n_startup_trials"]):
            return {name: model.sample(rng) for name, model in self._priors.items()}
        drawn = self._cma.ask(int(rng.integers(2**31 - 1)))
        params: dict[str, Any] = {}
        for name, dist in self.space.distributions.items():
            if isinstance(dist, Discrete):
                params[name] = dist.option(int(rng.integers(len(dist.options))))
            else:
                params[name] = drawn[name]
        return params

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Enter a successful result into CMA-ES's current generation."""
        self._n_finished += 1
        loss = self.loss(params, value)
        if loss is not None and self._cma is not None:
            self._cma.tell(params, loss)

    def tell_stopped(self, params: Mapping[str, Any], value: float, iteration: int) -> None:
        """Nothing: a stopped setting's value is not a final one, and CMA-ES ranks final
        values (nor does it count towards ``n_startup_trials``)."""

    def restore(self, history: SamplerHistory) -> None:
        """The results told again, in their order (settings stopped early left out, as
        :meth:`tell_stopped` does); nothing is asked."""
        for sid, value in history.told:
            if sid not in history.stopped:
                self.tell(history.asked[sid], value)
        self.n_asked = len(history.asked)

    def _build(self, numeric: Mapping[str, Bounded]) -> UnitCma:
        """CMA-ES over ``numeric`` at the middle of the cube, step a sixth of each range."""
        cmaes = import_cmaes()
        o, dim = self.options, len(numeric)
        common: dict[str, Any] = {
            "mean": np.full(dim, 0.5),
            "sigma": 1 / 6,
            "bounds": np.array([[0.0, 1.0]] * dim),
            "seed": self.derived_seed(2**40),
            "n_max_resampling": 10 * dim,
            "population_size": o.get("popsize"),
        }
        on_grid = frozenset(n for n, d in numeric.items() if d.integer and not d.log)
        if o.get("with_margin") and on_grid:
            steps = [
                1 / (d.bounds[1] - d.bounds[0]) if name in on_grid else 0.0
                for name, d in numeric.items()
            ]
            return UnitCma(numeric, cmaes.CMAwM(steps=np.array(steps), **common), on_grid)
        if o.get("use_separable_cma") and dim > 1:
            return UnitCma(numeric, cmaes.SepCMA(**common))
        return UnitCma(numeric, cmaes.CMA(lr_adapt=bool(o.get("lr_adapt")), **common))
