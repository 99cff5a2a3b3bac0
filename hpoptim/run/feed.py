"""What the sampler is told, and when: results as settings finish, or in ask order.

With ``deterministic_order`` the sampler is told results in ask order, and setting
``k`` is asked only once settings ``0 .. k - n_in_flight`` have been told: every
proposal then depends on the seed and the results alone, whatever order jobs finish in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpoptim.run.plan import LoopSettings
from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.state.history import RunHistory, SettingRecord


class SamplerFeed:
    """Asks the sampler for settings and tells it their results.

    Args:
        sampler: Proposes settings.
        settings: ``n_in_flight`` and ``deterministic_order`` are read.
        history: The run's history, where results are read.
    """

    def __init__(self, sampler: BaseSampler, settings: LoopSettings, history: RunHistory) -> None:
        self.sampler = sampler
        self.settings = settings
        self.history = history
        self._n_told_in_order = 0  # deterministic_order: settings 0 .. n - 1 were told

    def may_ask(self) -> bool:
        """Whether the next setting may be asked now; in ask order, first tells the
        results due before it (False if one of them is still missing)."""
        if not self.settings.deterministic_order:
            return True
        due = self._n_due(self.history.n_asked)
        while self._n_told_in_order < due:
            setting = self.history.settings[self._n_told_in_order]
            if setting.result is None:
                return False
            self._tell(setting)
            self._n_told_in_order += 1
        return True

    def ask(self) -> dict[str, Any] | None:
        """The next setting's params, or None when the sampler has none left."""
        return self.sampler.ask()

    def finished(self, setting: SettingRecord) -> None:
        """Setting ``setting`` has its result: tell it now, unless told in ask order."""
        if not self.settings.deterministic_order:
            self._tell(setting)

    def restore(self) -> None:
        """Restore the sampler from the history in one pass, without asking it again.

        It is given the settings asked and the results it had been told (in ask order
        with ``deterministic_order``, else in the order they finished).
        """
        history = self.history
        order: Sequence[int] = history.finished_order
        if self.settings.deterministic_order:
            # what was due before the last ask (all finished then), the rest told later
            due = self._n_due(history.n_asked - 1) if history.n_asked else 0
            n = next((i for i in range(due) if history.settings[i].result is None), due)
            self._n_told_in_order = n
            order = range(n)
        self.sampler.restore(
            SamplerHistory(
                asked=tuple(history.settings[sid].params for sid in range(history.n_asked)),
                told=tuple((sid, setting_value(history.settings[sid])) for sid in order),
                stopped={
                    sid: at for sid in order if (at := history.settings[sid].stopped_at) is not None
                },
            )
        )

    def _n_due(self, n_asked: int) -> int:
        """How many settings, in ask order, are told before setting ``n_asked`` is asked."""
        return max(0, n_asked - self.settings.n_in_flight + 1)

    def _tell(self, setting: SettingRecord) -> None:
        result = setting.result
        assert result is not None
        if result.stopped_at is not None and result.value is not None:
            self.sampler.tell_stopped(setting.params, result.value, result.stopped_at)
        else:
            self.sampler.tell(setting.params, result.value)


def setting_value(setting: SettingRecord) -> float | None:
    """The setting's aggregated value (None before its result, or when it failed)."""
    return None if setting.result is None else setting.result.value
