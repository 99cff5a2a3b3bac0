"""TPE first, then CMA-ES warm-started from what TPE found (the default sampler).

On the benchmark (``benchmarks/optimizers.py``) no single sampler wins at every
budget: TPE finds good regions fastest, CMA-ES closes in on an optimum best once a
few hundred settings are known. This sampler runs Optuna's TPE (multivariate,
constant liar) until ``switch_after`` settings have succeeded, then CMA-ES (the
``cmaes`` package) over the numeric parameters in the unit cube of their inner (log
or linear) space, warm-started from those settings (WS-CMA-ES: mean and covariance
fitted to the best tenth). ``Discrete`` parameters are then drawn from their options'
frequencies among the best settings so far, floored so every option stays possible.

After the switch each proposal costs the same whatever the number of settings
known, and a restore tells CMA-ES the journal's results again in their order
without touching Optuna, so resuming a long run is quick and exact.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hpoptim.samplers.base import Check, SamplerHistory, is_int
from hpoptim.samplers.cmaes import UnitCma, cube_domains, import_cmaes, to_cube
from hpoptim.samplers.models import prior
from hpoptim.samplers.optuna_study import OptunaSampler, load_optuna
from hpoptim.space import Bounded, Discrete, SearchSpace

if TYPE_CHECKING:
    import optuna

#: Best settings the options of ``Discrete`` parameters are fitted to after the switch.
N_ELITE = 20
#: Floor on each option's probability after the switch, as a share of the uniform one.
MIN_OPTION_SHARE = 0.1


class TPECmaEsSampler(OptunaSampler):
    """TPE, then CMA-ES once ``switch_after`` settings have succeeded.

    Settings (all optional):
        n_startup_trials (int, default 10): finished settings drawn from the prior
            before TPE takes over (settings stopped early do not count).
        switch_after (int >= 10, default 100): successful settings after which
            CMA-ES takes over from TPE (its warm start needs a best tenth of them).
        popsize (int >= 2, default unset): CMA-ES settings per generation; unset:
            ``4 + 3 ln(n_numeric_params)``.

    Args:
        space: The search space.
        minimize: True if lower metric values are better.
        seed: Seed of the proposals.
        settings: ``optimizer_settings``, validated with :meth:`validate_settings`.
    """

    name: ClassVar[str] = "tpe_cmaes"
    checks: ClassVar[dict[str, Check]] = {
        "n_startup_trials": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        "switch_after": (
            lambda v: is_int(v) and v >= 10,
            "an integer >= 10 (CMA-ES starts from the best tenth of them)",
        ),
        "popsize": (lambda v: is_int(v) and v >= 2, "an integer >= 2"),
    }
    defaults: ClassVar[dict[str, Any]] = {"n_startup_trials": 10, "switch_after": 100}

    def __init__(
        self,
        space: SearchSpace,
        *,
        minimize: bool,
        seed: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(space, minimize=minimize, seed=seed, settings=settings)
        self._numeric = {n: d for n, d in space.distributions.items() if isinstance(d, Bounded)}
        self._domains = cube_domains(self._numeric)
        self._successes: list[tuple[np.ndarray[Any, Any], float]] = []  # until the switch
        self._elite: list[tuple[float, int, dict[str, Any]]] = []  # (loss, order, params)
        self._cma: UnitCma | None = None
        self._n_recorded = 0
        if self._numeric:
            # Now, while the driver has one thread: import_cmaes hides scipy.stats for
            # the moment it imports cmaes, which another thread must not see mid-run.
            import_cmaes()

    def optuna_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        lib = load_optuna()
        sampler: optuna.samplers.BaseSampler = lib.samplers.TPESampler(
            n_startup_trials=self.n_startup, multivariate=True, constant_liar=True, seed=seed
        )
        return sampler

    # -- ask / tell ------------------------------------------------------------------
    def ask(self) -> dict[str, Any]:
        """TPE's proposal before the switch; a CMA-ES sample after it."""
        if self._cma is None:
            return super().ask()
        index = self.n_asked
        self.n_asked += 1
        rng = self.rng_for(index)
        drawn = self._cma.ask(self.derived_seed(index))
        params: dict[str, Any] = {}
        for name, dist in self.space.distributions.items():
            if isinstance(dist, Bounded):
                params[name] = drawn[name]
            elif isinstance(dist, Discrete):
                values = [elite[name] for _, _, elite in self._elite]
                params[name] = prior(dist).fit(values, min_spread=MIN_OPTION_SHARE).sample(rng)
        return params

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Tell TPE before the switch, CMA-ES (a generation at a time) after it."""
        loss = self._record(params, value)
        if self._cma is None:
            super().tell(params, value)
            self._before_switch(params, loss)
        else:
            self._n_finished += 1
            self._after_switch(params, loss)

    def tell_stopped(self, params: Mapping[str, Any], value: float, iteration: int) -> None:
        """A stopped setting's value is not a final one: before the switch the study
        records it as :meth:`OptunaSampler.tell_stopped` does, and it counts neither
        towards ``switch_after`` nor for the elite (CMA-ES's warm start); after the
        switch CMA-ES, which ranks final values, is not told it."""
        if self._cma is None:
            super().tell_stopped(params, value, iteration)
        else:
            self._n_finished += 1

    def restore(self, history: SamplerHistory) -> None:
        """Before the switch, the study's trials; after it, the results told again."""
        switch_after, n_ok = int(self.options["switch_after"]), 0
        outcomes = [  # stopped settings, as tell_stopped, count for nothing here
            (sid, None if sid in history.stopped else value) for sid, value in history.told
        ]
        for sid, value in outcomes:
            if n_ok == switch_after:
                break
            n_ok += self.loss(history.asked[sid], value) is not None
        if not self._numeric or n_ok < switch_after:
            super().restore(history)
            for sid, value in outcomes:  # the elite and successes; no switch yet
                params = history.asked[sid]
                self._before_switch(params, self._record(params, value))
            return
        for sid, value in outcomes:  # as tell, without the study: never asked again
            params = history.asked[sid]
            loss = self._record(params, value)
            self._n_finished += 1
            if self._cma is None:
                self._before_switch(params, loss)
            else:
                self._after_switch(params, loss)
        self.n_asked = len(history.asked)

    # -- helpers ---------------------------------------------------------------------
    def _record(self, params: Mapping[str, Any], value: float | None) -> float | None:
        """Enter a result into the elite; its loss (lower is better), None if it failed."""
        loss = self.loss(params, value)
        if loss is None:
            return None
        order = self._n_recorded
        self._n_recorded += 1
        if len(self._elite) < N_ELITE or (loss, order) < self._elite[-1][:2]:
            bisect.insort(self._elite, (loss, order, dict(params)), key=lambda e: e[:2])
            del self._elite[N_ELITE:]
        return loss

    def _before_switch(self, params: Mapping[str, Any], loss: float | None) -> None:
        if loss is None or not self._numeric:
            return
        self._successes.append((to_cube(params, self._domains), loss))
        if len(self._successes) >= int(self.options["switch_after"]):
            self._switch()

    def _after_switch(self, params: Mapping[str, Any], loss: float | None) -> None:
        assert self._cma is not None
        if loss is not None:
            self._cma.tell(params, loss)

    def _switch(self) -> None:
        """Start CMA-ES from the successful settings so far."""
        cmaes = import_cmaes()
        mean, sigma, cov = cmaes.get_warm_start_mgd(self._successes, gamma=0.1, alpha=0.1)
        optimizer = cmaes.CMA(
            mean=np.clip(mean, 0.0, 1.0),
            sigma=max(float(sigma), 1e-3),
            cov=cov,
            bounds=np.array([[0.0, 1.0]] * len(self._numeric)),
            seed=self.derived_seed(2**40),
            population_size=self.options.get("popsize"),
        )
        self._cma = UnitCma(self._numeric, optimizer)
        self._successes = []
