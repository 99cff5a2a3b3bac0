"""Whether a setting goes on after a chained training iteration: the ``early_stopping`` rules.

A setting's value after ``k`` iterations (its *step* ``k``, 1-based) is the mean of
its reruns' ``metric_to_optimize`` at that iteration. :class:`EarlyStopper` is told
each such value (:meth:`EarlyStopper.judge`, which says stop or go on) and each
setting's end (:meth:`EarlyStopper.finished`). Its state is a fold of those calls,
so the driver journals every decision (``judged``) and a resumed driver rebuilds the
same state by :meth:`EarlyStopper.replay` of the journal: nothing is decided twice.

``successive_halving``, ``hyperband``, ``median`` and ``threshold`` are Optuna's
pruners (asynchronous successive halving, Hyperband, percentile and threshold)
over an in-memory study with one trial per setting (trial number = setting id).
``rank`` is cluster_utils' ``kill_bad_looking_jobs``: see :class:`RankRule`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hpoptim.config.stopping import EarlyStopping
from hpoptim.samplers.optuna_study import load_optuna

if TYPE_CHECKING:
    import optuna

__all__ = ["EarlyStopper", "RankRule"]


class _Rule(Protocol):
    def judge(self, sid: int, step: int, value: float) -> bool: ...

    def finished(self, sid: int, value: float | None, *, stopped: bool) -> None: ...


class EarlyStopper:
    """The run's early-stopping rule, fed with each setting's values as iterations end.

    Args:
        section: The config's ``early_stopping`` section (its method is not ``none``).
        n_iterations: ``training_iterations``: a full run's steps.
        minimize: Whether lower values are better.
    """

    def __init__(self, section: EarlyStopping, *, n_iterations: int, minimize: bool) -> None:
        self.section = section
        self.n_iterations = n_iterations
        self.minimize = minimize
        self._rule: _Rule = (
            RankRule(section, n_iterations=n_iterations, minimize=minimize)
            if section.method == "rank"
            else _OptunaRule(section, n_iterations=n_iterations, minimize=minimize)
        )

    def judge(self, sid: int, step: int, value: float | None) -> bool:
        """Whether setting ``sid``, whose value after ``step`` iterations is ``value``,
        stops now (True) or goes on. A missing or non-finite value never stops it."""
        if value is None or not math.isfinite(value) or step >= self.n_iterations:
            return False
        return self._rule.judge(sid, step, value)

    def finished(self, sid: int, value: float | None, *, stopped: bool = False) -> None:
        """Setting ``sid`` ended: completed with ``value`` (None: failed) or stopped early."""
        self._rule.finished(sid, value, stopped=stopped)

    def replay(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild the state from journaled ``judged`` and ``setting_finished`` events."""
        for ev in events:
            if ev.get("e") == "judged":
                self.judge(int(ev["sid"]), int(ev["it"]) + 1, ev.get("value"))
            elif ev.get("e") == "setting_finished":
                result = ev["result"]
                stopped = result.get("stopped_at") is not None
                self.finished(int(ev["sid"]), result.get("value"), stopped=stopped)


class _OptunaRule:
    """One of Optuna's pruners over an in-memory study: trial number = setting id."""

    def __init__(self, section: EarlyStopping, *, n_iterations: int, minimize: bool) -> None:
        lib = load_optuna()
        self._lib = lib
        self._study: optuna.Study = lib.create_study(
            study_name="hpoptim-early-stopping",  # Hyperband's brackets hash it
            storage=lib.storages.InMemoryStorage(),
            sampler=lib.samplers.RandomSampler(seed=0),
            pruner=_pruner(lib, section, n_iterations),
            direction="minimize" if minimize else "maximize",
        )
        self._trials: list[optuna.Trial] = []
        self._reported: dict[int, set[int]] = {}

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


def _pruner(lib: Any, s: EarlyStopping, n_iterations: int) -> optuna.pruners.BasePruner:
    pruners = lib.pruners
    if s.method == "successive_halving":
        return pruners.SuccessiveHalvingPruner(  # type: ignore[no-any-return]
            min_resource=s.min_iterations,
            reduction_factor=s.reduction_factor,
            min_early_stopping_rate=s.min_early_stopping_rate,
        )
    if s.method == "hyperband":
        return pruners.HyperbandPruner(  # type: ignore[no-any-return]
            min_resource=s.min_iterations,
            max_resource=n_iterations,
            reduction_factor=s.reduction_factor,
        )
    if s.method == "median":
        return pruners.PercentilePruner(  # type: ignore[no-any-return]
            s.percentile, n_startup_trials=s.n_startup_settings, n_warmup_steps=s.min_iterations
        )
    if s.method == "threshold":
        return pruners.ThresholdPruner(  # type: ignore[no-any-return]
            lower=s.lower, upper=s.upper, n_warmup_steps=s.min_iterations
        )
    raise ValueError(f"no Optuna pruner for early_stopping.method {s.method!r}")


class RankRule:
    """cluster_utils' ``kill_bad_looking_jobs``, judged at iteration boundaries.

    Once ``n_startup_settings`` (cluster_utils: 5) settings have completed every
    iteration, each completed setting's rank at each step is compared with its final
    rank: ``deviation[step] = sqrt(mean((rank_at_step - final_rank) ** 2))``. A setting
    not past half of ``training_iterations`` is stopped when its rank among the
    completed settings' values at that step (itself included, 0 = best) less
    ``how_many_stds * deviation[step]`` is above ``target_rank``.
    """

    def __init__(self, section: EarlyStopping, *, n_iterations: int, minimize: bool) -> None:
        self.section = section
        self.n_iterations = n_iterations
        self.sign = 1.0 if minimize else -1.0
        self._curves: dict[int, dict[int, float]] = {}
        self._complete: list[np.ndarray] = []  # step 1 .. n values, sign applied

    def judge(self, sid: int, step: int, value: float) -> bool:
        self._curves.setdefault(sid, {})[step] = value
        n_done = len(self._complete)
        if n_done < max(self.section.n_startup_settings, 1) or 2 * step > self.n_iterations:
            return False
        curves = np.array(self._complete)  # (settings, steps)
        ranks = _ranks(curves)
        deviation = np.sqrt(np.mean((ranks - ranks[:, -1:]) ** 2, axis=0))
        at_step = np.append(curves[:, step - 1], self.sign * value)
        rank = _ranks(at_step[:, None])[-1, 0]
        s = self.section
        return bool(rank - s.how_many_stds * deviation[step - 1] > s.target_rank)

    def finished(self, sid: int, value: float | None, *, stopped: bool) -> None:
        curve = self._curves.pop(sid, {})
        if stopped or value is None or not math.isfinite(value):
            return
        curve[self.n_iterations] = value
        steps = range(1, self.n_iterations + 1)
        if all(k in curve and math.isfinite(curve[k]) for k in steps):
            self._complete.append(np.array([self.sign * curve[k] for k in steps]))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Rank (0 = lowest) of each row within its column."""
    return np.argsort(np.argsort(values, axis=0, kind="stable"), axis=0, kind="stable").astype(
        float
    )
