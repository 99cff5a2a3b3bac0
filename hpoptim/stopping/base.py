"""What every early-stopping rule is: its settings section and its decisions.

A rule judges a setting between chained training iterations: it is told each value
(:meth:`BaseStoppingRule.judge`: stop now, or go on) and each setting's end
(:meth:`BaseStoppingRule.finished`). Its state is a fold of those calls, so a resumed
driver rebuilds it by telling the journaled calls again. A rule's keys are a
:class:`StoppingSettings` subclass, its own ``early_stopping`` section (``method`` names
the rule); the registry (:mod:`hpoptim.stopping`) picks the model by ``method``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from pydantic import Field

from hpoptim.sections import Section

__all__ = ["BaseStoppingRule", "NoStopping", "StoppingSettings"]

NO_METHOD = "none"


class StoppingSettings(Section):
    """Stop a setting between chained training iterations when its curve looks hopeless
    (`early_stopping`)."""

    section_path: ClassVar[str] = "early_stopping"

    method: str = Field(
        NO_METHOD,
        description="A registered method: none, successive_halving (asynchronous), "
        "hyperband, median, threshold, or rank (cluster_utils' kill_bad_jobs_early); "
        "each reads its own keys (below).",
        json_schema_extra={"rule_doc": "a registered method"},
    )

    @property
    def enabled(self) -> bool:
        """Whether any setting can be stopped early."""
        return self.method != NO_METHOD


class NoStopping(StoppingSettings):
    """No early stopping: every setting runs all its iterations."""

    method: Literal["none"] = Field("none", description="No early stopping.")


class BaseStoppingRule(ABC):
    """An early-stopping rule, built from its settings for one run.

    Subclasses set :attr:`name` (the ``method``) and :attr:`settings_model`; each passes
    ``tests/contracts/stopping.py``.

    Args:
        settings: The rule's ``early_stopping`` section.
        n_iterations: ``training_iterations``: a full run's steps.
        minimize: Whether lower values are better.
    """

    name: ClassVar[str]
    settings_model: ClassVar[type[StoppingSettings]]

    def __init__(self, settings: StoppingSettings, *, n_iterations: int, minimize: bool) -> None:
        self.settings = settings
        self.n_iterations = n_iterations
        self.minimize = minimize

    @abstractmethod
    def judge(self, sid: int, step: int, value: float) -> bool:
        """Whether setting ``sid``, whose finite value after ``step`` (< n_iterations)
        iterations is ``value``, stops now."""

    @abstractmethod
    def finished(self, sid: int, value: float | None, *, stopped: bool) -> None:
        """Setting ``sid`` ended: completed with ``value`` (None: failed) or stopped early."""
