"""Whether a setting goes on after a chained training iteration: the ``early_stopping`` rule.

A setting's value after ``k`` iterations (its *step* ``k``, 1-based) is the mean of
its reruns' ``metric_to_optimize`` at that iteration. :class:`EarlyStopper` is told
each such value (:meth:`EarlyStopper.judge`, which says stop or go on) and each
setting's end (:meth:`EarlyStopper.finished`). Its state is a fold of those calls,
so the driver journals every decision (``judged``) and a resumed driver rebuilds the
same state by :meth:`EarlyStopper.replay` of the journal: nothing is decided twice.

The rules themselves are in :mod:`hpoptim.stopping`, one module per method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from hpoptim.state.events import EventKind
from hpoptim.stopping import StoppingSettings, make_rule
from hpoptim.stopping.rank import RankRule

__all__ = ["EarlyStopper", "RankRule"]


class EarlyStopper:
    """The run's early-stopping rule, fed with each setting's values as iterations end.

    Args:
        section: The config's ``early_stopping`` section (its method is not ``none``).
        n_iterations: ``training_iterations``: a full run's steps.
        minimize: Whether lower values are better.
    """

    def __init__(self, section: StoppingSettings, *, n_iterations: int, minimize: bool) -> None:
        self.section = section
        self.n_iterations = n_iterations
        self.minimize = minimize
        self._rule = make_rule(section, n_iterations=n_iterations, minimize=minimize)

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
            if ev.get("e") == EventKind.JUDGED:
                self.judge(int(ev["sid"]), int(ev["it"]) + 1, ev.get("value"))
            elif ev.get("e") == EventKind.SETTING_FINISHED:
                result = ev["result"]
                stopped = result.get("stopped_at") is not None
                self.finished(int(ev["sid"]), result.get("value"), stopped=stopped)
