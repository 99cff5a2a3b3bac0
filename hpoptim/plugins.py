"""Third-party launchers, samplers and stopping rules, found through entry points.

A package registers one in its metadata, for example in ``pyproject.toml``::

    [project.entry-points."hpoptim.launchers"]
    mycluster = "mypackage.launcher:MyClusterLauncher"

The groups are :data:`GROUPS`. Each registry (:mod:`hpoptim.launchers`,
:mod:`hpoptim.samplers`, :mod:`hpoptim.stopping`) looks its built-in names up first and
reads the entry points only for a name it does not know, or to list every name, so a
run that uses only built-ins never scans the installed packages. A plug-in cannot
replace a built-in: an entry point with a built-in's name is an error (naming the
package that declares it) whenever the entry points are read.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from hpoptim.errors import ConfigError, ConfigProblem

__all__ = ["GROUPS", "load_object", "registered"]

GROUPS = {
    "launcher": "hpoptim.launchers",
    "sampler": "hpoptim.samplers",
    "method": "hpoptim.early_stopping",
}
"""What a plug-in provides -> its entry-point group."""


@cache
def _entry_points(group: str) -> tuple[tuple[str, str, str], ...]:
    """``(name, "module:attr", distribution)`` of each entry point in ``group``."""
    from importlib.metadata import entry_points

    found = []
    for point in entry_points(group=group):
        dist = getattr(point, "dist", None)
        found.append((point.name, point.value, getattr(dist, "name", "?") if dist else "?"))
    return tuple(sorted(found))


def registered(builtin: Mapping[str, Any], kind: str, path: str) -> dict[str, Any]:
    """``builtin`` followed by the plug-ins of ``kind``'s group (name -> ``module:attr``).

    Args:
        builtin: The registry's own entries, name -> entry.
        kind: A key of :data:`GROUPS`.
        path: The config key the names are given in, for errors.

    Raises:
        ConfigError: A plug-in takes a built-in's name, or two take the same name.
    """
    plugins: dict[str, str] = {}
    problems = []
    for name, target, dist in _entry_points(GROUPS[kind]):
        if name in builtin or name in plugins:
            problems.append(
                ConfigProblem(
                    path,
                    f"{kind} plug-in {name!r} ({target}, from package {dist!r}) takes the name "
                    f"of {'a built-in' if name in builtin else 'another plug-in'} {kind}; a "
                    "built-in cannot be replaced: uninstall the package or rename its entry "
                    f"point in group {GROUPS[kind]!r}",
                )
            )
        plugins[name] = target
    if problems:
        raise ConfigError(problems)
    return {**builtin, **plugins}


def load_object(target: str, base: type, path: str, name: str) -> Any:
    """The subclass of ``base`` that ``module:attr`` names (importing its module).

    Raises:
        ConfigError: It cannot be imported, or is not a subclass of ``base``.
    """
    module, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # a plug-in's import may fail in any way
        raise ConfigError.single(
            path, f"cannot load {name!r} from {target}: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ConfigError.single(path, f"{name!r} ({target}) is not a {base.__name__} subclass")
    return obj


def clear_cache() -> None:
    """Forget the entry points read so far (after installing a package at run time)."""
    _entry_points.cache_clear()
