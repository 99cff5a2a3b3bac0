"""What the Optuna-based samplers share: the mapping of distributions, and a study.

Each hpoptim distribution maps onto one Optuna distribution (:func:`to_optuna`):
bounded ones onto ``FloatDistribution`` / ``IntDistribution`` with the same bounds
and log flag, ``Discrete`` onto a ``CategoricalDistribution`` over the canonical JSON
texts of its options, so any JSON option (lists and dicts too) is a category and
comes back as a fresh copy of the configured value.

The study lives in Optuna's in-memory storage and is driven through its ask/tell
API; the journal stays the source of truth, and :meth:`OptunaSampler.restore` rebuilds
the study from it in one pass (one trial per setting asked: complete, failed, or
running if no result was told yet). Every ask uses an Optuna sampler seeded from the
run seed and the ask index, so proposals depend only on the seed and the trials,
and a restored study proposes what the uninterrupted one would.

Priors: while fewer settings than ``n_startup_trials`` have finished, settings are
drawn from hpoptim's prior of each parameter (truncated normals included) and given
to the study as fixed parameters; after that the Optuna sampler's own model takes
over, which knows only the bounds and the log flag of each parameter.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.samplers.models import prior
from hpoptim.space import Bounded, Discrete, Distribution, SearchSpace, canonical

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

#: User attributes of a stopped setting's trial: the iteration (0-based) it stopped
#: after, and its value there.
STOPPED_AT = "hpoptim:stopped_at"
STOPPED_VALUE = "hpoptim:stopped_value"


@functools.cache
def load_optuna() -> Any:
    """Import Optuna (on first use: it takes a second) with its logging at WARNING.

    Optuna announces every study and trial at INFO; hpoptim's own log says what matters.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def to_optuna(dist: Distribution) -> BaseDistribution:
    """The Optuna distribution of ``dist``'s domain (its prior is not part of it)."""
    distributions = load_optuna().distributions
    if isinstance(dist, Discrete):
        return distributions.CategoricalDistribution(dist.keys())  # type: ignore[no-any-return]
    if isinstance(dist, Bounded):
        lo, hi = dist.bounds
        if dist.integer:
            return distributions.IntDistribution(  # type: ignore[no-any-return]
                int(lo), int(hi), log=dist.log
            )
        return distributions.FloatDistribution(  # type: ignore[no-any-return]
            float(lo), float(hi), log=dist.log
        )
    raise TypeError(f"no Optuna distribution for {type(dist).__name__}")


def to_optuna_value(dist: Distribution, value: Any) -> Any:
    """``value`` as Optuna stores it: options by their canonical JSON text."""
    return canonical(value) if isinstance(dist, Discrete) else value


def from_optuna_value(dist: Distribution, value: Any) -> Any:
    """The hpoptim value of an Optuna parameter value: plain int, float or option copy."""
    if isinstance(dist, Discrete):
        return dist.option(dist.keys().index(value))
    if isinstance(dist, Bounded) and dist.integer:
        return int(value)
    return float(value)


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


class OptunaSampler(BaseSampler):
    """An Optuna sampler driving an in-memory study through ask and tell.

    Subclasses set :attr:`checks` and :attr:`defaults` (their settings) and build the
    Optuna sampler for one ask in :meth:`optuna_sampler`.
    """

    restores_exactly: ClassVar[bool] = True

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
        self._running: dict[str, list[int]] = {}  # params key -> trial numbers, oldest first
        self._n_finished = 0

    @functools.cached_property
    def _optuna(self) -> Any:
        """The Optuna module, imported when first needed (a restore may never need it)."""
        return load_optuna()

    @functools.cached_property
    def _dists(self) -> dict[str, BaseDistribution]:
        return {name: to_optuna(dist) for name, dist in self.space.distributions.items()}

    @functools.cached_property
    def _study(self) -> optuna.Study:
        """The in-memory study, created when first needed."""
        lib = self._optuna
        study: optuna.Study = lib.create_study(
            storage=lib.storages.InMemoryStorage(),
            sampler=lib.samplers.RandomSampler(seed=0),
            direction="minimize" if self.minimize else "maximize",
        )
        return study

    @property
    def n_startup(self) -> int:
        """Finished settings before the model takes over from the prior."""
        return int(self.options.get("n_startup_trials", 0))

    @abstractmethod
    def optuna_sampler(self, seed: int) -> optuna.samplers.BaseSampler:
        """The Optuna sampler that proposes one setting, seeded with ``seed``."""

    def ask(self) -> dict[str, Any]:
        """The study's next trial (a prior sample during the startup phase)."""
        index = self.n_asked
        self.n_asked += 1
        if self._n_finished < self.n_startup:
            rng = self.rng_for(index)
            drawn = {name: model.sample(rng) for name, model in self._priors.items()}
            self._study.enqueue_trial(
                {n: to_optuna_value(self.space[n], v) for n, v in drawn.items()}
            )
        with warnings.catch_warnings():
            # Optuna marks some of the samplers' arguments experimental; the choice is ours.
            warnings.simplefilter("ignore", self._optuna.exceptions.ExperimentalWarning)
            self._study.sampler = self.optuna_sampler(self.derived_seed(index))
            trial = self._study.ask(self._dists)
        params = {
            name: from_optuna_value(self.space[name], trial.params[name]) for name in self._dists
        }
        self._running.setdefault(_key(params), []).append(trial.number)
        return params

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Complete (or fail, for None or a non-finite value) the trial of ``params``."""
        self._finish(params, value, stopped_at=None)

    def tell_stopped(self, params: Mapping[str, Any], value: float, iteration: int) -> None:
        """Finish the trial of ``params`` without a value for the model: a stopped setting.

        Its value after ``iteration`` is not a final one, and the model learns from final
        values only. Told as a pruned trial (ranked below every completed one), it taught
        TPE to prefer settings that learn fast over settings that end best, since the
        early-stopping rules decide on early iterations, where learning curves still
        cross (``benchmarks/early_stopping.py``). So the trial is finished as failed,
        which Optuna's samplers leave out, with :data:`STOPPED_AT` and
        :data:`STOPPED_VALUE` among its user attributes; nor does it count towards
        ``n_startup_trials`` (as Optuna's TPE counts only completed trials).
        """
        self._finish(params, value, stopped_at=iteration)

    def _finish(
        self, params: Mapping[str, Any], value: float | None, *, stopped_at: int | None
    ) -> None:
        failed = value is None or not math.isfinite(value)
        TrialState = self._optuna.trial.TrialState
        numbers = self._running.get(_key(params))
        if numbers:
            number = numbers.pop(0)
            if failed or stopped_at is not None:
                if not failed:
                    trial_id = self._study._storage.get_trial_id_from_study_id_trial_number(
                        self._study._study_id, number
                    )
                    for key, attr in _stopped_attrs(stopped_at, value).items():
                        self._study._storage.set_trial_user_attr(trial_id, key, attr)
                self._study.tell(number, state=TrialState.FAIL)
            else:
                self._study.tell(number, value)
        elif self.space.contains(params):  # told without an ask: a trial of its own
            trial = self._trial(params, value, done=True, stopped_at=stopped_at)
            self._study.add_trial(trial)
        if stopped_at is None:  # the model takes over after n_startup finished runs
            self._n_finished += 1

    def restore(self, history: SamplerHistory) -> None:
        """One trial per setting asked, in ask order; results as told."""
        told = dict(history.told)
        start = len(self._study.get_trials(deepcopy=False))
        trials: list[optuna.trial.FrozenTrial] = []
        for sid, params in enumerate(history.asked):
            if not self.space.contains(params):
                continue
            done = sid in told
            if not done:
                self._running.setdefault(_key(params), []).append(start + len(trials))
            stopped = history.stopped.get(sid)
            trials.append(self._trial(params, told.get(sid), done=done, stopped_at=stopped))
        self._study.add_trials(trials)
        self._n_finished = len(told) - len(set(history.stopped) & told.keys())
        self.n_asked = len(history.asked)

    def _trial(
        self,
        params: Mapping[str, Any],
        value: float | None,
        *,
        done: bool,
        stopped_at: int | None = None,
    ) -> optuna.trial.FrozenTrial:
        TrialState = self._optuna.trial.TrialState
        ok = value is not None and math.isfinite(value)
        complete = ok and stopped_at is None
        state = (
            (TrialState.COMPLETE if complete else TrialState.FAIL) if done else TrialState.RUNNING
        )
        stopped = done and ok and stopped_at is not None
        return self._optuna.trial.create_trial(  # type: ignore[no-any-return]
            state=state,
            value=value if complete and done else None,
            user_attrs=_stopped_attrs(stopped_at, value) if stopped else None,
            params={name: to_optuna_value(self.space[name], params[name]) for name in self._dists},
            distributions=self._dists,
        )


def _stopped_attrs(stopped_at: int | None, value: float | None) -> dict[str, Any]:
    """The user attributes of a stopped setting's trial."""
    return {STOPPED_AT: stopped_at, STOPPED_VALUE: value}
