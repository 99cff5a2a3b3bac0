"""Launchers run jobs somewhere: on this machine, on a Slurm or Grid Engine cluster, or
an HTCondor pool.

The registry names each launcher by ``module:Class`` so that importing this
package stays cheap; :func:`load` imports the one asked for. Third-party launchers
are entry points in group ``hpoptim.launchers`` (:mod:`hpoptim.plugins`); a built-in
name cannot be taken by one.
"""

from __future__ import annotations

from hpoptim.errors import ConfigError
from hpoptim.launchers.base import BaseLauncher
from hpoptim.plugins import load_object, registered
from hpoptim.sections import Section

LAUNCHERS: dict[str, str] = {
    "htcondor": "hpoptim.launchers.htcondor:HTCondorLauncher",
    "local": "hpoptim.launchers.local:LocalLauncher",
    "slurm": "hpoptim.launchers.slurm:SlurmLauncher",
    "sge": "hpoptim.launchers.sge:SgeLauncher",
}

__all__ = ["LAUNCHERS", "BaseLauncher", "available", "load", "settings_models"]


def _all() -> dict[str, str]:
    return registered(LAUNCHERS, "launcher", "launcher")


def available() -> list[str]:
    """Names of the known launchers: built-in and plug-ins."""
    return sorted(_all())


def load(name: str) -> type[BaseLauncher]:
    """The launcher class registered as ``name``.

    Raises:
        ConfigError: ``name`` is not a known launcher.
    """
    target = LAUNCHERS.get(name) or _all().get(name)
    if target is None:
        raise ConfigError.single(
            "launcher", f"unknown launcher {name!r}; valid launchers: {', '.join(available())}"
        )
    launcher: type[BaseLauncher] = load_object(target, BaseLauncher, "launcher", name)
    return launcher


def settings_models(*, plugins: bool = True) -> dict[str, type[Section]]:
    """Each launcher's name -> the model of its config section, in name order; without
    ``plugins``, only the built-in launchers'.

    Imports every such launcher's module (the run config nests each section).
    """
    names = available() if plugins else sorted(LAUNCHERS)
    return {name: load(name).settings_model for name in names}
