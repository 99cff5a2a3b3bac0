"""Grid search: every combination of the parameters' values, each exactly once.

Explicit value lists are given as ``Discrete`` options. Other distributions have no
finite set of values; with the ``n_grid_points`` setting they contribute that many
values evenly spread over their bounds (in log space for log distributions; integer
distributions round them and drop duplicates). Zipped parameters (a ``Discrete``
entry whose ``param`` lists several names) are one axis of the grid: its rows.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.space import Bounded, Discrete, Distribution, SearchSpace, unknown_key_problems

#: One axis of the grid: the names it sets and its rows (one value per name).
Axis = tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]

#: Largest grid that ``shuffle`` can permute.
MAX_SHUFFLED_GRID = 10_000_000
_VALID = ("n_grid_points", "shuffle")


def grid_axis(dist: Distribution, n_points: int | None = None) -> tuple[Any, ...] | None:
    """A parameter's values in the grid: its options, or ``n_points`` spread over its bounds.

    Points are evenly spaced in the inner (log or linear) space; integer domains round
    them and drop duplicates. Returns None for a bounded domain when ``n_points`` is None.
    """
    if isinstance(dist, Discrete):
        return tuple(dist.option(i) for i in range(len(dist.options)))
    if n_points is None or not isinstance(dist, Bounded):
        return None
    lo, hi = dist.inner_bounds()
    if n_points == 1:
        return (dist.from_inner((lo + hi) / 2),)
    points = [dist.from_inner(lo + (hi - lo) * i / (n_points - 1)) for i in range(n_points)]
    return tuple(dict.fromkeys(points))


def grid_axes(
    space: SearchSpace, n_points: int | None = None
) -> tuple[list[Axis], list[ConfigProblem]]:
    """The grid's axes, one per config entry (a zip group's rows are one axis).

    Returns:
        The axes, and a problem for each entry with no finite set of values.
    """
    groups = {group.names: group for group in space.groups}
    axes: list[Axis] = []
    problems = []
    for i, names in enumerate(space.entries()):
        if names in groups:
            axes.append((names, groups[names].rows))
            continue
        axis = grid_axis(space[names[0]], n_points)
        if axis is None:
            problems.append(_continuous_problem(i, names[0], space[names[0]].name))
        else:
            axes.append((names, tuple((value,) for value in axis)))
    return axes, problems


class GridSampler(BaseSampler):
    """Proposes the grid's settings in order (last parameter fastest), then None.

    Settings:
        shuffle (bool, default False): visit the grid in a random order fixed by the seed.
        n_grid_points (int, default unset): values per non-``Discrete`` parameter.

    Args:
        space: The search space.
        minimize: True if lower metric values are better (unused).
        seed: Seed of the shuffle.
        settings: ``optimizer_settings``.

    Raises:
        ConfigError: A parameter has no finite set of values (see ``n_grid_points``).
    """

    name: ClassVar[str] = "gridsearch"
    restores_exactly: ClassVar[bool] = True
    zips: ClassVar[bool] = True
    learns: ClassVar[bool] = False

    def __init__(
        self,
        space: SearchSpace,
        *,
        minimize: bool,
        seed: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(space, minimize=minimize, seed=seed, settings=settings)
        self._axes, continuous = grid_axes(space, self.settings.get("n_grid_points"))
        if continuous:
            raise ConfigError(continuous)
        self._size = math.prod(len(rows) for _, rows in self._axes)
        self._order: np.ndarray[Any, Any] | None = None
        if self.settings.get("shuffle", False):
            self._order = np.random.default_rng(seed).permutation(self._size)

    @classmethod
    def validate_settings(
        cls, settings: Mapping[str, Any], space: SearchSpace
    ) -> list[ConfigProblem]:
        """Check the settings, and that every parameter has a finite set of values."""
        problems = unknown_key_problems(settings, _VALID, "optimizer_settings", repr(cls.name))
        n_points = settings.get("n_grid_points")
        shuffle = settings.get("shuffle", False)
        if n_points is not None and (
            not isinstance(n_points, int) or isinstance(n_points, bool) or n_points < 1
        ):
            problems.append(
                ConfigProblem(
                    "optimizer_settings.n_grid_points",
                    f"must be a positive integer, got {n_points!r}",
                )
            )
            n_points = None
        if not isinstance(shuffle, bool):
            problems.append(
                ConfigProblem(
                    "optimizer_settings.shuffle", f"must be true or false, got {shuffle!r}"
                )
            )
        axes, continuous = grid_axes(space, n_points)
        problems += continuous
        size = math.prod(len(rows) for _, rows in axes)
        if shuffle is True and size > MAX_SHUFFLED_GRID:
            problems.append(
                ConfigProblem(
                    "optimizer_settings.shuffle",
                    f"a shuffled grid may have at most {MAX_SHUFFLED_GRID} settings, "
                    f"this one has {size}",
                )
            )
        return problems

    def n_settings(self) -> int:
        """The number of settings in the grid."""
        return self._size

    def ask(self) -> dict[str, Any] | None:
        """The next setting of the grid, or None when all were proposed."""
        if self.n_asked >= self._size:
            return None
        index = self.n_asked if self._order is None else int(self._order[self.n_asked])
        self.n_asked += 1
        params: dict[str, Any] = {}
        for names, rows in reversed(self._axes):
            index, position = divmod(index, len(rows))
            params.update(zip(names, copy.deepcopy(rows[position]), strict=True))
        return {name: params[name] for name in self.space.names}

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        """Ignored: the grid is fixed."""

    def restore(self, history: SamplerHistory) -> None:
        """Continue after the settings already asked."""
        self.n_asked = min(len(history.asked), self._size)


def _continuous_problem(index: int, name: str, distribution: str) -> ConfigProblem:
    return ConfigProblem(
        f"optimized_params[{index}].distribution",
        f"gridsearch needs a finite set of values, but {name!r} has a continuous "
        f"{distribution} distribution; list the values as Discrete options, or set "
        "optimizer_settings.n_grid_points to spread that many values over its bounds",
    )
