"""``threshold``: stop a setting whose value leaves fixed bounds (Optuna's threshold pruner)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from hpoptim.errors import ConfigProblem
from hpoptim.sections import cross_rule, rule_error
from hpoptim.stopping.base import StoppingSettings
from hpoptim.stopping.pruning import OptunaPruningRule

if TYPE_CHECKING:
    import optuna

__all__ = ["ThresholdRule", "ThresholdSettings"]


class ThresholdSettings(StoppingSettings):
    """Stop a setting whose value falls below lower or rises above upper."""

    method: Literal["threshold"] = Field("threshold", description="Selects this rule.")
    min_iterations: int = Field(
        1, ge=1, description="Iterations every setting runs before it can be stopped."
    )
    lower: float | None = Field(None, description="Stop when the value falls below this.")
    upper: float | None = Field(None, description="Stop when the value rises above this.")

    @cross_rule("lower", "upper")
    def _bounds(self) -> ThresholdSettings:
        if self.lower is None and self.upper is None:
            raise rule_error(
                problems=[
                    ConfigProblem("method", "threshold needs lower or upper (or both), got neither")
                ]
            )
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise rule_error(
                problems=[
                    ConfigProblem("lower", f"must be <= upper ({self.upper:g}), got {self.lower:g}")
                ]
            )
        return self


class ThresholdRule(OptunaPruningRule):
    """Optuna's ``ThresholdPruner``."""

    name: ClassVar[str] = "threshold"
    settings_model: ClassVar[type[StoppingSettings]] = ThresholdSettings
    settings: ThresholdSettings

    def pruner(self, pruners: Any) -> optuna.pruners.BasePruner:
        s = self.settings
        return pruners.ThresholdPruner(  # type: ignore[no-any-return]
            lower=s.lower, upper=s.upper, n_warmup_steps=s.min_iterations
        )
