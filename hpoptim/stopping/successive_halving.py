"""``successive_halving``: Optuna's asynchronous successive halving."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from hpoptim.stopping.base import StoppingSettings
from hpoptim.stopping.pruning import OptunaPruningRule

if TYPE_CHECKING:
    import optuna

__all__ = ["SuccessiveHalvingRule", "SuccessiveHalvingSettings"]


class SuccessiveHalvingSettings(StoppingSettings):
    """Asynchronous successive halving: at each rung, 1 in reduction_factor goes on."""

    method: Literal["successive_halving"] = Field(
        "successive_halving", description="Selects this rule."
    )
    min_iterations: int = Field(
        1,
        ge=1,
        description="Iterations every setting runs before it can be stopped (the first rung).",
    )
    reduction_factor: int = Field(3, ge=2, description="1 in this many goes on at a rung.")
    min_early_stopping_rate: int = Field(
        0, ge=0, description="The first rung is min_iterations * reduction_factor ** this."
    )


class SuccessiveHalvingRule(OptunaPruningRule):
    """Optuna's ``SuccessiveHalvingPruner``."""

    name: ClassVar[str] = "successive_halving"
    settings_model: ClassVar[type[StoppingSettings]] = SuccessiveHalvingSettings
    settings: SuccessiveHalvingSettings

    def pruner(self, pruners: Any) -> optuna.pruners.BasePruner:
        s = self.settings
        return pruners.SuccessiveHalvingPruner(  # type: ignore[no-any-return]
            min_resource=s.min_iterations,
            reduction_factor=s.reduction_factor,
            min_early_stopping_rate=s.min_early_stopping_rate,
        )
