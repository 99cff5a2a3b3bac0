"""``rank``: cluster_utils' ``kill_bad_looking_jobs``, judged at iteration boundaries."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from hpoptim.stopping.base import BaseStoppingRule, StoppingSettings

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RankRule", "RankSettings"]


class RankSettings(StoppingSettings):
    """Stop a setting ranked far below the target among completed settings' curves."""

    method: Literal["rank"] = Field("rank", description="Selects this rule.")
    n_startup_settings: int = Field(
        5, ge=0, description="Settings to finish before any is stopped."
    )
    target_rank: int = Field(
        5, ge=0, description="Stop when the rank, less how_many_stds deviations, is above."
    )
    how_many_stds: float = Field(
        3.0, ge=0, description="Deviations of the rank at that iteration allowed."
    )


class RankRule(BaseStoppingRule):
    """cluster_utils' ``kill_bad_looking_jobs``, judged at iteration boundaries.

    Once ``n_startup_settings`` (cluster_utils: 5) settings have completed every
    iteration, each completed setting's rank at each step is compared with its final
    rank: ``deviation[step] = sqrt(mean((rank_at_step - final_rank) ** 2))``. A setting
    not past half of ``training_iterations`` is stopped when its rank among the
    completed settings' values at that step (itself included, 0 = best) less
    ``how_many_stds * deviation[step]`` is above ``target_rank``.
    """

    name: ClassVar[str] = "rank"
    settings_model: ClassVar[type[StoppingSettings]] = RankSettings
    settings: RankSettings

    def __init__(self, settings: StoppingSettings, *, n_iterations: int, minimize: bool) -> None:
        super().__init__(settings, n_iterations=n_iterations, minimize=minimize)
        self.sign = 1.0 if minimize else -1.0
        self._curves: dict[int, dict[int, float]] = {}
        self._complete: list[np.ndarray] = []  # step 1 .. n values, sign applied

    def judge(self, sid: int, step: int, value: float) -> bool:
        import numpy as np

        self._curves.setdefault(sid, {})[step] = value
        n_done = len(self._complete)
        if n_done < max(self.settings.n_startup_settings, 1) or 2 * step > self.n_iterations:
            return False
        curves = np.array(self._complete)  # (settings, steps)
        ranks = _ranks(curves)
        deviation = np.sqrt(np.mean((ranks - ranks[:, -1:]) ** 2, axis=0))
        at_step = np.append(curves[:, step - 1], self.sign * value)
        rank = _ranks(at_step[:, None])[-1, 0]
        s = self.settings
        return bool(rank - s.how_many_stds * deviation[step - 1] > s.target_rank)

    def finished(self, sid: int, value: float | None, *, stopped: bool) -> None:
        import numpy as np

        curve = self._curves.pop(sid, {})
        if stopped or value is None or not math.isfinite(value):
            return
        curve[self.n_iterations] = value
        steps = range(1, self.n_iterations + 1)
        if all(k in curve and math.isfinite(curve[k]) for k in steps):
            self._complete.append(np.array([self.sign * curve[k] for k in steps]))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Rank (0 = lowest) of each row within its column."""
    import numpy as np

    return np.argsort(np.argsort(values, axis=0, kind="stable"), axis=0, kind="stable").astype(
        float
    )
