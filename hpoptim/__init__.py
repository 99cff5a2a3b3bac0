"""hpoptim: hyperparameter optimisation of training jobs, locally or on Slurm."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs every job (``import hpoptim.job``) start-up time
if TYPE_CHECKING:
    from typing import Any

    from hpoptim.errors import (
        CheckoutError,
        ConfigError,
        HpoptimError,
        LaunchError,
        OverrideError,
        StorageError,
    )
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


_LAZY = {
    **dict.fromkeys(("load_run", "RunData"), "hpoptim.results.load"),
    **dict.fromkeys(
        (
            "CheckoutError",
            "ConfigError",
            "HpoptimError",
            "LaunchError",
            "OverrideError",
            "StorageError",
        ),
        "hpoptim.errors",
    ),
}


def __getattr__(name: str) -> Any:
    """The public API is imported on first use: ``load_run`` needs pandas, and
    ``hpoptim.job`` and the local supervisor (which import ``hpoptim.contract``, and so
    this package) must stay cheap to start.

    ``hpoptim.run`` is the package of the run, which is callable:
    ``hpoptim.run(config, overrides, launcher=...)`` runs an optimisation and returns
    its results (see :func:`hpoptim.run.api.run`).
    """
    import importlib

    if name == "run":
        return importlib.import_module("hpoptim.run")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpoptim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
