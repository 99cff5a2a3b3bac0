"""The sampler (optimiser) interface: ask for parameters, tell results."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from hpoptim.errors import ConfigProblem
from hpoptim.space import SearchSpace


class BaseSampler(ABC):
    """Proposes parameter settings and learns from their results.

    A sampler is deterministic given its seed and the sequence of ask/tell calls,
    which is how the driver rebuilds it on resume: it replays the journal's asks
    and tells in their original order.

    Args:
        space: The search space.
        minimize: True if lower metric values are better.
        seed: Seed of the sampler's random generator.
        settings: ``optimizer_settings`` from the config, already validated with
            :meth:`validate_settings`.
    """

    name: ClassVar[str] = "base"

    def __init__(
        self,
        space: SearchSpace,
        *,
        minimize: bool,
        seed: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.space = space
        self.minimize = minimize
        self.seed = seed
        self.settings = dict(settings or {})

    @classmethod
    def validate_settings(
        cls, settings: Mapping[str, Any], space: SearchSpace
    ) -> list[ConfigProblem]:
        """Return the problems of ``settings`` (paths start with ``optimizer_settings``)."""
        return [
            ConfigProblem(f"optimizer_settings.{key}", f"unknown setting for {cls.name!r}")
            for key in settings
        ]

    @abstractmethod
    def ask(self) -> dict[str, Any] | None:
        """Propose a setting: flat ``{param name: value}``, or None when exhausted."""

    @abstractmethod
    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Report the metric of a setting asked before (None: the setting failed)."""

    def n_settings(self) -> int | None:
        """Number of distinct settings this sampler can propose (None: unbounded)."""
        return None
