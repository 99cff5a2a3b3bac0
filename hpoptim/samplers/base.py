"""The sampler (optimiser) interface: ask for parameters, tell results, restore from history."""

from __future__ import annotations

import math
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from hpoptim.errors import ConfigProblem
from hpoptim.space import SearchSpace, unknown_key_problems

if TYPE_CHECKING:
    import numpy as np

#: A setting's check: (test, rule shown when it fails).
Check = tuple[Callable[[Any], bool], str]


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def settings_problems(
    name: str, checks: Mapping[str, Check], settings: Mapping[str, Any]
) -> list[ConfigProblem]:
    """Unknown keys of ``settings`` (listed with the valid ones, closest first) and values
    that fail their check, for the sampler ``name``."""
    problems = unknown_key_problems(settings, tuple(checks), "optimizer_settings", repr(name))
    for key, (check, rule) in checks.items():
        if key in settings and not check(settings[key]):
            problems.append(
                ConfigProblem(f"optimizer_settings.{key}", f"must be {rule}, got {settings[key]!r}")
            )
    return problems


@dataclass(frozen=True)
class SamplerHistory:
    """What a sampler had been through when its driver stopped, as the journal records it.

    Attributes:
        asked: The params of every setting asked, in ask order (index = setting id).
        told: ``(setting id, value)`` of every setting told, in the order told;
            a value of None is a failed setting.
        stopped: ``setting id -> iteration`` (0-based) of the told settings that early
            stopping stopped after that iteration; their value is the one there.
    """

    asked: tuple[Mapping[str, Any], ...]
    told: tuple[tuple[int, float | None], ...]
    stopped: Mapping[int, int] = field(default_factory=dict)


class BaseSampler(ABC):
    """Proposes parameter settings and learns from their results.

    On resume the driver rebuilds a sampler with :meth:`restore` from the journal's
    settings, in one pass and without asking again. A sampler whose
    :attr:`restores_exactly` is true then proposes exactly what it would have
    proposed had the driver never stopped: its state depends only on its seed, the
    settings asked and the results told (in their order), not on where the asks fell
    between the tells. Every ask draws from its own generator (:meth:`rng_for`).

    Args:
        space: The search space.
        minimize: True if lower metric values are better.
        seed: Seed of the sampler's random generator.
        settings: ``optimizer_settings`` from the config, already validated with
            :meth:`validate_settings`.
    """

    name: ClassVar[str] = "base"
    #: Whether :meth:`restore` gives the state of an uninterrupted run.
    restores_exactly: ClassVar[bool] = False
    #: Whether it proposes zipped parameters (``space.groups``) together, row by row.
    zips: ClassVar[bool] = False
    #: Whether its proposals depend on the values told; one that does not runs without a
    #: metric to optimise (a grid search that only collects metrics).
    learns: ClassVar[bool] = True
    #: Setting name -> (check, rule); every setting is optional.
    checks: ClassVar[Mapping[str, Check]] = {}
    #: Setting name -> default value.
    defaults: ClassVar[Mapping[str, Any]] = {}

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
        #: :attr:`defaults` overridden by ``settings``.
        self.options = {**self.defaults, **self.settings}
        self._entropy = secrets.randbits(63) if seed is None else seed % 2**63
        #: Settings asked so far (restored ones included).
        self.n_asked = 0

    def rng_for(self, index: int) -> np.random.Generator:
        """The random generator of ask number ``index``: fixed by the seed and the index."""
        import numpy as np  # a sampler's draws need it; validating a config does not

        return np.random.default_rng([self._entropy, index])

    def derived_seed(self, index: int) -> int:
        """A 31-bit seed for ask number ``index``, for libraries that take an int seed."""
        return int(self.rng_for(index).integers(2**31 - 1))

    def loss(self, params: Mapping[str, Any], value: float | None) -> float | None:
        """``value`` with lower meaning better, or None for a result to learn nothing from:
        a failed setting (no value), a value that is not finite, or ``params`` outside
        the space."""
        if value is None or not math.isfinite(value) or not self.space.contains(params):
            return None
        return value if self.minimize else -value

    @classmethod
    def validate_settings(
        cls, settings: Mapping[str, Any], space: SearchSpace
    ) -> list[ConfigProblem]:
        """Return the problems of ``settings`` (paths start with ``optimizer_settings``):
        by default, unknown keys (listed with the valid ones, closest first) and values
        that fail their check in :attr:`checks`."""
        return settings_problems(cls.name, cls.checks, settings)

    @abstractmethod
    def ask(self) -> dict[str, Any] | None:
        """Propose a setting: flat ``{param name: value}``, or None when exhausted."""

    @abstractmethod
    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Report the metric of a setting asked before (None: the setting failed)."""

    def tell_stopped(self, params: Mapping[str, Any], value: float, iteration: int) -> None:
        """Report a setting early stopping stopped after ``iteration`` (0-based), with its
        value there.

        By default it is told like a finished setting with that value: a stopped setting
        is one whose curve looked worse than the others', so the value of a partial run
        counts against it (CEM does not pick it for its elite; random, grid and
        quasi-random samplers learn nothing from any value). TPE, CMA-ES and
        ``tpe_cmaes`` override this to leave it out of their model, which learns from
        final values only (see
        :meth:`~hpoptim.samplers.optuna_study.OptunaSampler.tell_stopped`).
        """
        self.tell(params, value)

    def restore(self, history: SamplerHistory) -> None:
        """Rebuild the state after ``history`` on a freshly built sampler.

        The fallback asks as often as ``history`` did, then tells every result; samplers
        override it with a single pass that asks nothing.
        """
        for _ in history.asked:
            self.ask()
        for sid, value in history.told:
            self.tell(history.asked[sid], value)

    def n_settings(self) -> int | None:
        """Number of distinct settings this sampler can propose (None: unbounded)."""
        return None
