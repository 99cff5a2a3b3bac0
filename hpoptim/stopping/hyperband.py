"""``hyperband``: Optuna's Hyperband (brackets of successive halving)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from hpoptim.stopping.base import StoppingSettings
from hpoptim.stopping.pruning import OptunaPruningRule

if TYPE_CHECKING:
    import optuna

__all__ = ["HyperbandRule", "HyperbandSettings"]


class HyperbandSettings(StoppingSettings):
    """Hyperband: successive halving in brackets of different first rungs."""

    method: Literal["hyperband"] = Field("hyperband", description="Selects this rule.")
    min_iterations: int = Field(
        1,
        ge=1,
        description="Iterations every setting runs before it can be stopped (the first rung).",
    )
    reduction_factor: int = Field(3, ge=2, description="1 in this many goes on at a rung.")


class HyperbandRule(OptunaPruningRule):
    """Optuna's ``HyperbandPruner`` up to ``training_iterations``."""

    name: ClassVar[str] = "hyperband"
    settings_model: ClassVar[type[StoppingSettings]] = HyperbandSettings
    settings: HyperbandSettings

    def pruner(self, pruners: Any) -> optuna.pruners.BasePruner:
        s = self.settings
        return pruners.HyperbandPruner(  # type: ignore[no-any-return]
            min_resource=s.min_iterations,
            max_resource=self.n_iterations,
            reduction_factor=s.reduction_factor,
        )
