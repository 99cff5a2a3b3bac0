"""CMA-ES (Optuna's ``CmaEsSampler``, on the ``cmaes`` package).

CMA-ES samples a generation of settings from a multivariate normal over the
parameters (scaled to the unit cube, log parameters in log space), then moves and
reshapes that normal towards the generation's best settings. It starts at the
middle of the bounds (the truncated normal priors' mean) with a step size of a sixth
of each range. Discrete parameters are
outside its model: they are drawn uniformly at random. Settings in flight belong to
the generation they were asked in; a generation is learnt from once ``popsize`` of
its settings have finished.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from hpoptim.samplers.optuna_study import Check, OptunaSampler, is_int, load_optuna

if TYPE_CHECKING:
    import optuna


class CmaEsSampler(OptunaSampler):
    """Optuna's CMA-ES over the search space.

    A restored sampler (after a resume) keeps every finished setting in its study,
    but CMA-ES's search distribution starts afresh: it is kept in Optuna's trial
    attributes, which the journal does not hold.

    Settings (all optional):
        n_startup_trials (int, default 1): finished settings drawn from the prior
            before CMA-ES takes over.
        popsize (int >= 2, default unset): settings per generation; unset:
            ``4 + 3 ln(n_params)``.
        use_separable_cma (bool, default false): a diagonal covariance (cheaper, for
            many parameters).
        with_margin (bool, default false): keep integer parameters from freezing.
        lr_adapt (bool, default false): adapt the learning rate (noisy metrics).

    Args:
        space: The search space.
        minimize: True if lower metric values are better.
        seed: Seed of the proposals.
        settings: ``optimizer_settings``, validated with :meth:`validate_settings`.
    """

    name: ClassVar[str] = "cmaes"
    restores_exactly: ClassVar[bool] = False
    checks: ClassVar[dict[str, Check]] = {
        "n_startup_trials": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        "popsize": (lambda v: is_int(v) and v >= 2, "an integer >= 2"),
        "use_separable_cma": (lambda v: isinstance(v, bool), "true or false"),
        "with_margin": (lambda v: isinstance(v, bool), "true or false"),
        "lr_adapt": (lambda v: isinstance(v, bool), "true or false"),
    }
    defaults: ClassVar[dict[str, Any]] = {"n_startup_trials": 1}

    def optuna_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        o, lib = self.options, load_optuna()
        sampler: optuna.samplers.BaseSampler = lib.samplers.CmaEsSampler(
            n_startup_trials=int(o["n_startup_trials"]),
            popsize=o.get("popsize"),
            use_separable_cma=bool(o.get("use_separable_cma", False)),
            with_margin=bool(o.get("with_margin", False)),
            lr_adapt=bool(o.get("lr_adapt", False)),
            independent_sampler=lib.samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
            seed=seed,
        )
        return sampler
