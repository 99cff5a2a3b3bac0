"""``median``: Optuna's percentile pruner (the median by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from hpoptim.stopping.base import StoppingSettings
from hpoptim.stopping.pruning import OptunaPruningRule

if TYPE_CHECKING:
    import optuna

__all__ = ["MedianRule", "MedianSettings"]


class MedianSettings(StoppingSettings):
    """Stop a setting below a percentile of the finished settings at the same iteration."""

    method: Literal["median"] = Field("median", description="Selects this rule.")
    min_iterations: int = Field(
        1, ge=1, description="Iterations every setting runs before it can be stopped."
    )
    n_startup_settings: int = Field(
        5, ge=0, description="Settings to finish before any is stopped."
    )
    percentile: float = Field(
        50.0,
        ge=0,
        le=100,
        description="Stop below this percentile of finished settings at the same iteration "
        "(50: the median; counted from the best).",
    )


class MedianRule(OptunaPruningRule):
    """Optuna's ``PercentilePruner``."""

    name: ClassVar[str] = "median"
    settings_model: ClassVar[type[StoppingSettings]] = MedianSettings
    settings: MedianSettings

    def pruner(self, pruners: Any) -> optuna.pruners.BasePruner:
        s = self.settings
        return pruners.PercentilePruner(  # type: ignore[no-any-return]
            s.percentile, n_startup_trials=s.n_startup_settings, n_warmup_steps=s.min_iterations
        )
