"""The ``early_stopping`` section: whether and how settings are stopped between iterations.

Each method has its own keys; a key of another method given a value other than its
default is refused, naming the methods it applies to, so a leftover of an earlier
method is never silently ignored (the saved config holds every key at its value).
The rules themselves live in :mod:`hpoptim.run.early_stopping`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from hpoptim.errors import ConfigProblem
from hpoptim.sections import Section, rule_error

__all__ = ["METHOD_KEYS", "EarlyStopping"]

Method = Literal["none", "successive_halving", "hyperband", "median", "threshold", "rank"]

#: The keys each method reads (besides ``method``).
METHOD_KEYS: Mapping[str, tuple[str, ...]] = {
    "none": (),
    "successive_halving": ("min_iterations", "reduction_factor", "min_early_stopping_rate"),
    "hyperband": ("min_iterations", "reduction_factor"),
    "median": ("min_iterations", "n_startup_settings", "percentile"),
    "threshold": ("min_iterations", "lower", "upper"),
    "rank": ("n_startup_settings", "target_rank", "how_many_stds"),
}


class EarlyStopping(Section):
    """Stop a setting between chained training iterations when its curve looks hopeless
    (`early_stopping`)."""

    section_path: ClassVar[str] = "early_stopping"

    method: Method = Field(
        "none",
        description="none, successive_halving (asynchronous), hyperband, median, threshold, "
        "or rank (cluster_utils' kill_bad_jobs_early).",
    )
    min_iterations: int = Field(
        1,
        ge=1,
        description="Iterations every setting runs before it can be stopped (successive "
        "halving and hyperband: the first rung).",
    )
    reduction_factor: int = Field(
        3, ge=2, description="successive_halving, hyperband: 1 in this many goes on at a rung."
    )
    min_early_stopping_rate: int = Field(
        0,
        ge=0,
        description="successive_halving: the first rung is min_iterations * "
        "reduction_factor ** this.",
    )
    n_startup_settings: int = Field(
        5, ge=0, description="median, rank: settings to finish before any is stopped."
    )
    percentile: float = Field(
        50.0,
        ge=0,
        le=100,
        description="median: stop below this percentile of finished settings at the same "
        "iteration (50: the median; counted from the best).",
    )
    lower: float | None = Field(
        None, description="threshold: stop when the value falls below this."
    )
    upper: float | None = Field(
        None, description="threshold: stop when the value rises above this."
    )
    target_rank: int = Field(
        5, ge=0, description="rank: stop when the rank, less how_many_stds deviations, is above."
    )
    how_many_stds: float = Field(
        3.0, ge=0, description="rank: deviations of the rank at that iteration allowed."
    )

    @property
    def enabled(self) -> bool:
        """Whether any setting can be stopped early."""
        return self.method != "none"

    @model_validator(mode="after")
    def _keys_of_method(self) -> EarlyStopping:
        allowed = METHOD_KEYS[self.method]
        fields = type(self).model_fields
        problems = [  # a saved config holds every key, the others at their defaults
            ConfigProblem(key, _not_for(key, self.method))
            for key in sorted(self.model_fields_set - {"method"})
            if key not in allowed and getattr(self, key) != fields[key].default
        ]
        if self.method == "threshold" and self.lower is None and self.upper is None:
            problems.append(
                ConfigProblem("method", "threshold needs lower or upper (or both), got neither")
            )
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            problems.append(
                ConfigProblem("lower", f"must be <= upper ({self.upper:g}), got {self.lower:g}")
            )
        if problems:
            raise rule_error(problems=problems)
        return self


def _not_for(key: str, method: str) -> str:
    users = [m for m, keys in METHOD_KEYS.items() if key in keys]
    valid = ", ".join(METHOD_KEYS[method]) or "none"
    return (
        f"applies to method {' and '.join(repr(u) for u in users)}, not to {method!r} "
        f"(its keys: {valid})"
    )
