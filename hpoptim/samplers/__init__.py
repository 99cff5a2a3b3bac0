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

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hpoptim.errors import ConfigError, ConfigProblem
from hpoptim.plugins import load_object, registered
from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.space import SearchSpace, did_you_mean

if TYPE_CHECKING:
    from hpoptim.samplers.cem import CEMSampler
    from hpoptim.samplers.cmaes import CmaEsSampler
    from hpoptim.samplers.grid import GridSampler
    from hpoptim.samplers.qmc import QMCSampler
    from hpoptim.samplers.random import RandomSampler
    from hpoptim.samplers.tpe import TPESampler
    from hpoptim.samplers.tpe_cmaes import TPECmaEsSampler

#: ``optimizer_str`` -> ``module:Class``: a sampler's module (numpy, scipy, Optuna, cmaes)
#: is imported only when that sampler is named, so checking a config stays cheap.
SAMPLER_TARGETS: dict[str, str] = {
    "cem_metaoptimizer": "hpoptim.samplers.cem:CEMSampler",
    "random": "hpoptim.samplers.random:RandomSampler",
    "gridsearch": "hpoptim.samplers.grid:GridSampler",
    "tpe": "hpoptim.samplers.tpe:TPESampler",
    "cmaes": "hpoptim.samplers.cmaes:CmaEsSampler",
    "quasirandom": "hpoptim.samplers.qmc:QMCSampler",
    "tpe_cmaes": "hpoptim.samplers.tpe_cmaes:TPECmaEsSampler",
}


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class _Builtins(Mapping[str, "type[BaseSampler]"]):
    """The built-in samplers by name; a class is imported when it is looked up."""

    def __getitem__(self, name: str) -> type[BaseSampler]:
        cls: type[BaseSampler] = _import(SAMPLER_TARGETS[name])
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(SAMPLER_TARGETS)

    def __len__(self) -> int:
        return len(SAMPLER_TARGETS)


SAMPLERS: Mapping[str, type[BaseSampler]] = _Builtins()

__all__ = [
    "SAMPLERS",
    "SAMPLER_TARGETS",
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
    return list(registered(SAMPLER_TARGETS, "sampler", "optimizer_str"))


def load(name: str) -> type[BaseSampler] | None:
    """The sampler registered as ``name`` (built-in, else a plug-in), or None.

    Raises:
        ConfigError: A plug-in clashes with another name, or cannot be loaded.
    """
    if name in SAMPLER_TARGETS:
        return SAMPLERS[name]
    target = registered(SAMPLER_TARGETS, "sampler", "optimizer_str").get(name)
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
    cls = SAMPLERS.get(name) if metric is None else None
    if cls is not None and cls.learns:
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


def __getattr__(name: str) -> Any:
    """The sampler classes, imported on first use (``hpoptim.samplers.TPESampler``)."""
    for target in SAMPLER_TARGETS.values():
        if target.endswith(f":{name}"):
            return _import(target)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
