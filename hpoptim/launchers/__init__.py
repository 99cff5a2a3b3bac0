"""Launchers run jobs somewhere: on this machine, on a Slurm or a Grid Engine cluster.

The registry names each launcher by ``module:Class`` so that importing this
package stays cheap; :func:`load` imports the one asked for.
"""

from __future__ import annotations

import importlib

from hpoptim.errors import ConfigError
from hpoptim.launchers.base import BaseLauncher
from hpoptim.sections import Section

LAUNCHERS: dict[str, str] = {
    "local": "hpoptim.launchers.local:LocalLauncher",
    "slurm": "hpoptim.launchers.slurm:SlurmLauncher",
    "sge": "hpoptim.launchers.sge:SgeLauncher",
}

__all__ = ["LAUNCHERS", "BaseLauncher", "available", "load", "settings_models"]


def available() -> list[str]:
    """Names of the known launchers."""
    return sorted(LAUNCHERS)


def load(name: str) -> type[BaseLauncher]:
    """The launcher class registered as ``name``.

    Raises:
        ConfigError: ``name`` is not a known launcher.
    """
    try:
        target = LAUNCHERS[name]
    except KeyError:
        raise ConfigError.single(
            "launcher", f"unknown launcher {name!r}; valid launchers: {', '.join(available())}"
        ) from None
    module, _, cls = target.partition(":")
    launcher: type[BaseLauncher] = getattr(importlib.import_module(module), cls)
    return launcher


def settings_models() -> dict[str, type[Section]]:
    """Each launcher's name -> the model of its config section, in name order.

    Imports every registered launcher's module (the run config nests each section).
    """
    return {name: load(name).settings_model for name in available()}
