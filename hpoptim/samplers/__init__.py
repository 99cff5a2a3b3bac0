"""Sampler registry: ``optimizer_str`` names -> sampler classes.

=====================  ==========================================
``optimizer_str``      sampler
=====================  ==========================================
``cem_metaoptimizer``  :class:`~hpoptim.samplers.cem.CEMSampler`
``random``             :class:`~hpoptim.samplers.random.RandomSampler`
``gridsearch``         :class:`~hpoptim.samplers.grid.GridSampler`
``tpe``                :class:`~hpoptim.samplers.tpe.TPESampler`
``cmaes``              :class:`~hpoptim.samplers.cmaes.CmaEsSampler`
``quasirandom``        :class:`~hpoptim.samplers.qmc.QMCSampler`
``tpe_cmaes``          :class:`~hpoptim.samplers.tpe_cmaes.TPECmaEsSampler`
=====================  ==========================================

Third-party samplers are entry points in group ``hpoptim.samplers``
(:mod:`hpoptim.plugins`), looked up only for a name not built in; a built-in name
cannot be taken by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.plugins import load_object, registered
from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.samplers.cem import CEMSampler
from hpoptim.samplers.cmaes import CmaEsSampler
from hpoptim.samplers.grid import GridSampler
from hpoptim.samplers.qmc import QMCSampler
from hpoptim.samplers.random import RandomSampler
from hpoptim.samplers.tpe import TPESampler
from hpoptim.samplers.tpe_cmaes import TPECmaEsSampler
from hpoptim.space import SearchSpace, did_you_mean

SAMPLERS: Mapping[str, type[BaseSampler]] = {
    cls.name: cls
    for cls in (
        CEMSampler,
        RandomSampler,
        GridSampler,
        TPESampler,
        CmaEsSampler,
        QMCSampler,
        TPECmaEsSampler,
    )
}

__all__ = [
    "SAMPLERS",
    "BaseSampler",
    "CEMSampler",
    "CmaEsSampler",
    "GridSampler",
    "QMCSampler",
    "RandomSampler",
    "SamplerHistory",
    "TPECmaEsSampler",
    "TPESampler",
    "available",
    "load",
    "make_sampler",
    "metric_problems",
    "validate_optimizer",
]


def available() -> list[str]:
    """Every ``optimizer_str``: the built-in samplers, then the plug-ins."""
    return list(registered(SAMPLERS, "sampler", "optimizer_str"))


def load(name: str) -> type[BaseSampler] | None:
    """The sampler registered as ``name`` (built-in, else a plug-in), or None.

    Raises:
        ConfigError: A plug-in clashes with another name, or cannot be loaded.
    """
    builtin = SAMPLERS.get(name)
    if builtin is not None:
        return builtin
    target = registered(SAMPLERS, "sampler", "optimizer_str").get(name)
    if target is None:
        return None
    cls: type[BaseSampler] = load_object(target, BaseSampler, "optimizer_str", name)
    return cls


def validate_optimizer(
    name: str, settings: Mapping[str, Any], space: SearchSpace
) -> list[ConfigProblem]:
    """Problems of ``optimizer_str`` and ``optimizer_settings`` for ``space``."""
    cls = load(name)
    if cls is None:
        names = available()
        hint = did_you_mean(str(name), names)
        message = f"unknown optimizer {name!r}; valid: {', '.join(names)}{hint}"
        return [ConfigProblem("optimizer_str", message)]
    problems = cls.validate_settings(settings, space)
    if space.groups and not cls.zips:
        zipping = [n for n, c in SAMPLERS.items() if c.zips]
        zipped = "; ".join(", ".join(group.names) for group in space.groups)
        problems.append(
            ConfigProblem(
                "optimizer_str",
                f"{name!r} cannot propose zipped parameters ({zipped}), which take their "
                f"values together row by row; use {' or '.join(zipping)}",
            )
        )
    return problems


def metric_problems(name: str, metric: str | None) -> list[ConfigProblem]:
    """A sampler that learns from values needs ``metric_to_optimize``; one that does not
    (grid, random, quasi-random) runs without it, collecting every metric the jobs
    report."""
    cls = SAMPLERS.get(name)
    if metric is None and cls is not None and cls.learns:
        free = ", ".join(n for n, c in SAMPLERS.items() if not c.learns)
        return [
            ConfigProblem(
                "metric_to_optimize",
                f"required by optimizer {name!r}, which learns from its values (only {free} "
                "run without one, collecting every metric the jobs report)",
            )
        ]
    return []


def make_sampler(
    name: str,
    space: SearchSpace,
    *,
    minimize: bool,
    seed: int | None,
    settings: Mapping[str, Any],
) -> BaseSampler:
    """Build the sampler registered as ``name``.

    Raises:
        ConfigError: The name is unknown or the settings are invalid.
    """
    problems = validate_optimizer(name, settings, space)
    if problems:
        raise ConfigError(problems)
    cls = load(name)
    assert cls is not None  # validated above
    return cls(space, minimize=minimize, seed=seed, settings=settings)
