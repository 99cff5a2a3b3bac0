"""hpoptim: hyperparameter optimisation of training jobs, locally or on Slurm."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpoptim.errors import (
    CheckoutError,
    ConfigError,
    HpoptimError,
    LaunchError,
    OverrideError,
    StorageError,
)

if TYPE_CHECKING:
    from hpoptim.results.load import RunData, load_run

__version__ = "0.1.0"

__all__ = [
    "CheckoutError",
    "ConfigError",
    "HpoptimError",
    "LaunchError",
    "OverrideError",
    "RunData",
    "StorageError",
    "__version__",
    "load_run",
    "run",
]


def __getattr__(name: str) -> Any:
    """``load_run``, ``RunData`` and ``run`` are imported on first use: they need pandas,
    and ``hpoptim.job`` (imported by every job) must stay cheap to import.

    ``hpoptim.run`` is the package of the run, which is callable:
    ``hpoptim.run(config, overrides, launcher=...)`` runs an optimisation and returns
    its results (see :func:`hpoptim.run.api.run`).
    """
    if name == "run":
        import importlib

        return importlib.import_module("hpoptim.run")
    if name in ("load_run", "RunData"):
        from hpoptim.results import load

        return getattr(load, name)
    raise AttributeError(f"module 'hpoptim' has no attribute {name!r}")
