"""Rules that are Optuna pruners over an in-memory study: trial number = setting id."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from hpoptim.stopping.base import BaseStoppingRule, StoppingSettings

if TYPE_CHECKING:
    import optuna

__all__ = ["OptunaPruningRule", "load_optuna"]


def load_optuna() -> Any:
    """Import Optuna (on first use: it takes a second) with its logging at WARNING."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class OptunaPruningRule(BaseStoppingRule):
    """A rule that is one of Optuna's pruners; subclasses build it in :meth:`pruner`."""

    def __init__(self, settings: StoppingSettings, *, n_iterations: int, minimize: bool) -> None:
        super().__init__(settings, n_iterations=n_iterations, minimize=minimize)
        lib = load_optuna()
        self._lib = lib
        self._study: optuna.Study = lib.create_study(
            study_name="hpoptim-early-stopping",  # Hyperband's brackets hash it
            storage=lib.storages.InMemoryStorage(),
            sampler=lib.samplers.RandomSampler(seed=0),
            pruner=self.pruner(lib.pruners),
            direction="minimize" if minimize else "maximize",
        )
        self._trials: list[optuna.Trial] = []
        self._reported: dict[int, set[int]] = {}

    @abstractmethod
    def pruner(self, pruners: Any) -> optuna.pruners.BasePruner:
        """The pruner of :attr:`settings`, built from the module ``optuna.pruners``."""

    def _trial(self, sid: int) -> optuna.Trial:
        while len(self._trials) <= sid:
            self._trials.append(self._study.ask())
        return self._trials[sid]

    def _report(self, sid: int, step: int, value: float) -> optuna.Trial:
        trial = self._trial(sid)
        steps = self._reported.setdefault(sid, set())
        if step not in steps:
            trial.report(value, step)
            steps.add(step)
        return trial

    def judge(self, sid: int, step: int, value: float) -> bool:
        return bool(self._report(sid, step, value).should_prune())

    def finished(self, sid: int, value: float | None, *, stopped: bool) -> None:
        TrialState = self._lib.trial.TrialState
        trial = self._trial(sid)
        if stopped:
            self._study.tell(trial, state=TrialState.PRUNED)
        elif value is None or not math.isfinite(value):
            self._study.tell(trial, state=TrialState.FAIL)
        else:
            # the final value is the curve's last point, for the rules that compare curves
            n = max(self._reported.get(sid, {0})) + 1
            self._report(sid, n, value)
            self._study.tell(trial, value)
