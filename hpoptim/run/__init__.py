"""The run: the optimisation loop, the session around it, and assembling its parts from a config.

The package is also callable: ``hpoptim.run(config, ...)`` runs an optimisation from
Python (see :func:`hpoptim.run.api.run`).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """``hpoptim.run`` is this package, and ``hpoptim.run(...)`` runs an optimisation."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from hpoptim.run.api import run

        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
