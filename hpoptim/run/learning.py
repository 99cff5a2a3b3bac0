"""Driver-side check of ``config.*`` parameters against run_learning.py's templates.

The patching rules live in the job-side wrapper ``wrappers/run_learning.py`` (shipped as
``hpoptim._wrappers.run_learning``); this module loads that file and calls its pure
``find_problems``, so the rules are written once and a typo in a parameter name fails
the run before any job starts.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hpoptim.errors import ConfigProblem
from hpoptim.shipped import wrapper_path

if TYPE_CHECKING:
    from hpoptim.config import RunConfig

WRAPPER_NAME = "run_learning.py"
TEMPLATES_PARAM = "config.config_templates"


@cache
def wrapper_module() -> ModuleType:
    """The run_learning.py wrapper, imported from its file."""
    path = wrapper_path(WRAPPER_NAME)
    spec = importlib.util.spec_from_file_location("hpoptim_run_learning", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with hpoptim
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def uses_templates(script_relative_path: str, fixed_params: Mapping[str, Any]) -> bool:
    """Whether a run patches templates: its script is run_learning.py or it names an index."""
    if Path(script_relative_path).name == WRAPPER_NAME:
        return True
    return TEMPLATES_PARAM in wrapper_module().flatten(fixed_params)


def template_problems(
    fixed_params: Mapping[str, Any],
    optimized: Sequence[str],
    root: Path,
    metric: str | None = None,
) -> list[ConfigProblem]:
    """Problems with the learner settings and every fixed and optimised ``config.*`` name.

    Args:
        fixed_params: The fixed parameters, nested by their dotted names.
        optimized: The optimised parameters' names, in config order.
        root: Where jobs run; ``config.config_templates`` is relative to it.
        metric: ``metric_to_optimize``, which the wrapper must report.

    Returns:
        One problem per offending parameter, at its config path
        (``fixed_params.<name>`` or ``optimized_params[<i>].param``).
    """
    wrapper = wrapper_module()
    positions = {name: i for i, name in enumerate(optimized)}
    names = [*wrapper.flatten(fixed_params), *optimized]
    found = wrapper.find_problems(fixed_params, names, root, metric)
    problems = []
    for param, message in found:
        if param in positions:
            path = f"optimized_params[{positions[param]}].param"
            problems.append(ConfigProblem(path, f"{param!r}: {message}"))
        else:
            problems.append(ConfigProblem(f"fixed_params.{param}", str(message)))
    return problems


def check_learning(cfg: RunConfig, root: Path) -> list[ConfigProblem]:
    """Template problems of ``cfg`` with jobs running in ``root`` (none if unused)."""
    if not uses_templates(cfg.script_relative_path, cfg.fixed_params):
        return []
    names = [str(entry.get("param", "")) for entry in cfg.optimized_params]
    return template_problems(cfg.fixed_params, names, root, cfg.metric_to_optimize)
