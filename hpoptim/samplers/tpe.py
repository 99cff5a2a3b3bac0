"""Tree-structured Parzen estimator (Optuna's ``TPESampler``), multivariate by default.

TPE splits the finished settings into a good and a bad group and proposes the
candidate that is most likely under the good group's density relative to the bad
one's. Settings still in flight count as bad ones while they run (Optuna's
``constant_liar``), so a batch of settings in flight spreads out instead of piling
onto one spot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from hpoptim.samplers.base import Check, is_int
from hpoptim.samplers.optuna_study import OptunaSampler, load_optuna

if TYPE_CHECKING:
    import optuna


class TPESampler(OptunaSampler):
    """Optuna's TPE over the search space.

    Settings (all optional):
        n_startup_trials (int, default 10): finished settings drawn from the prior
            before TPE takes over (settings stopped early do not count).
        n_ei_candidates (int, default 24): candidates scored per proposal.
        multivariate (bool, default true): model the parameters jointly.
        constant_liar (bool, default true): treat settings in flight as bad results.

    Args:
        space: The search space.
        minimize: True if lower metric values are better.
        seed: Seed of the proposals.
        settings: ``optimizer_settings``, validated with :meth:`validate_settings`.
    """

    name: ClassVar[str] = "tpe"
    checks: ClassVar[dict[str, Check]] = {
        "n_startup_trials": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
        "n_ei_candidates": (lambda v: is_int(v) and v >= 1, "a positive integer"),
        "multivariate": (lambda v: isinstance(v, bool), "true or false"),
        "constant_liar": (lambda v: isinstance(v, bool), "true or false"),
    }
    defaults: ClassVar[dict[str, Any]] = {
        "n_startup_trials": 10,
        "n_ei_candidates": 24,
        "multivariate": True,
        "constant_liar": True,
    }

    def optuna_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        o, lib = self.options, load_optuna()
        sampler: optuna.samplers.BaseSampler = lib.samplers.TPESampler(
            n_startup_trials=int(o["n_startup_trials"]),
            n_ei_candidates=int(o["n_ei_candidates"]),
            multivariate=bool(o["multivariate"]),
            constant_liar=bool(o["constant_liar"]),
            seed=seed,
        )
        return sampler
