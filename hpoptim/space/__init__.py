"""The search space: distributions (plain descriptions of a domain) and :class:`SearchSpace`."""

from __future__ import annotations

from hpoptim.messages import did_you_mean, unknown_key_problems
from hpoptim.space.distributions import (
    DISTRIBUTIONS,
    Bounded,
    Discrete,
    Distribution,
    IntLogNormal,
    IntLogUniform,
    IntNormal,
    IntUniform,
    LogUniform,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
    canonical,
)
from hpoptim.space.search import SearchSpace, flatten, nest
from hpoptim.space.zipped import ZipGroup, entry_names

__all__ = [
    "DISTRIBUTIONS",
    "Bounded",
    "Discrete",
    "Distribution",
    "IntLogNormal",
    "IntLogUniform",
    "IntNormal",
    "IntUniform",
    "LogUniform",
    "SearchSpace",
    "TruncatedLogNormal",
    "TruncatedNormal",
    "Uniform",
    "ZipGroup",
    "canonical",
    "did_you_mean",
    "entry_names",
    "flatten",
    "nest",
    "unknown_key_problems",
]
