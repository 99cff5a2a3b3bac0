"""Driver-side check of ``config.*`` parameters against run_learning.py's templates.

The patching rules live in the job-side wrapper ``wrappers/run_learning.py`` (shipped as
``hpoptim._wrappers.run_learning``); this module loads that file and calls its pure
``find_problems``, so the rules are written once and a typo in a parameter name fails
the run before any job starts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hpoptim.errors import ConfigProblem
from hpoptim.shipped import load_wrapper

if TYPE_CHECKING:
    from hpoptim.config import RunConfig

WRAPPER_NAME = "run_learning.py"
TEMPLATES_PARAM = "config.config_templates"
_log = logging.getLogger(__name__)


@cache
def wrapper_module() -> ModuleType:
    """The run_learning.py wrapper shipped with hpoptim, loaded from its file."""
    return load_wrapper("run_learning")


def uses_templates(script_relative_path: str, fixed_params: Mapping[str, Any]) -> bool:
    """Whether a run patches templates: its script is run_learning.py or it names an index."""
    if Path(script_relative_path).name == WRAPPER_NAME:
        return True
    return TEMPLATES_PARAM in wrapper_module().flatten(fixed_params)


def template_problems(
    fixed_params: Mapping[str, Any],
    optimized: Sequence[str] | Mapping[str, int],
    root: Path,
    metric: str | None = None,
    in_image: bool = False,
) -> list[ConfigProblem]:
    """Problems with the learner settings and every fixed and optimised ``config.*`` name.

    Args:
        fixed_params: The fixed parameters, nested by their dotted names.
        optimized: The optimised parameters' names, in config order (or mapped to the
            index of their ``optimized_params`` entry, for zipped parameters).
        root: Where jobs run; ``config.config_templates`` is relative to it.
        metric: ``metric_to_optimize``, which the wrapper must report.
        in_image: Jobs run in a container, where templates at absolute paths missing
            on this host may exist; those are logged as unchecked instead.

    Returns:
        One problem per offending parameter, at its config path
        (``fixed_params.<name>`` or ``optimized_params[<i>].param``).
    """
    wrapper = wrapper_module()
    positions = (
        dict(optimized)
        if isinstance(optimized, Mapping)
        else {name: i for i, name in enumerate(optimized)}
    )
    names = [*wrapper.flatten(fixed_params), *optimized]
    found = wrapper.find_problems(fixed_params, names, root, metric, in_image)
    if in_image:
        index = wrapper.templates_file(fixed_params, root)
        for name, path in wrapper.image_only_templates(index).items():
            _log.warning(
                "fixed_params.%s: template %r at %s does not exist on this host; it could "
                "not be checked here and is checked inside the job's container",
                TEMPLATES_PARAM,
                name,
                path,
            )
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
    entries = cfg.search_space().entries()
    names = {name: i for i, group in enumerate(entries) for name in group}
    in_image = cfg.singularity is not None or "singularity.image" in wrapper_module().flatten(
        cfg.fixed_params
    )
    return template_problems(cfg.fixed_params, names, root, cfg.metric_to_optimize, in_image)
