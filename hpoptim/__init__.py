"""hpoptim: hyperparameter optimisation of training jobs, locally or on Slurm."""

from __future__ import annotations

from hpoptim.errors import (
    CheckoutError,
    ConfigError,
    HpoptimError,
    JobFailedError,
    LaunchError,
    OverrideError,
    StorageError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckoutError",
    "ConfigError",
    "HpoptimError",
    "JobFailedError",
    "LaunchError",
    "OverrideError",
    "StorageError",
    "__version__",
]
