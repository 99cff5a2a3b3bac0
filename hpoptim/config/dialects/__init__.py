"""cluster_utils (2.x, 3.0), LTTFS and mle-toolbox configs -> native keys, a note per key.

:func:`translate` is a pure dict -> (dict, notes) function run before validation:
a config whose top level uses a key only cluster_utils has (``optimization_setting``,
``cluster_requirements``, ``environment_setup``, ``hyperparam_list``, ...) is
rewritten to native keys with cluster_utils' meaning, and every key it touched gets a
:class:`Note`: ``translated`` (where the value went), ``ignored`` (a feature hpoptim
lacks or does not need: the one warning line says why) or ``error`` (a value that
cannot be translated, or one given twice with different values).

LTTFS's lifecycle keys in ``fixed_params`` (``learning_runs_per_job``,
``max_attempts``, ``training_iterations``) become the runs, attempts and chained
iterations hpoptim drives, and stay in ``fixed_params`` for the job. They are read in
native configs too.

An mle-toolbox experiment (``meta_job_args``) is translated by
:mod:`hpoptim.config.dialects.mle_toolbox` alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hpoptim.config.dialects.cluster_utils import (
    Translation,
    early_killing,
    is_cluster_utils,
    knows,
    misplaced_memory,
    repository_root,
    slurm_minutes,
)
from hpoptim.config.dialects.lttfs import lifecycle, uses_run_learning
from hpoptim.config.dialects.mle_toolbox import is_mle_toolbox, translate_mle
from hpoptim.config.dialects.notes import Note, warnings_of
from hpoptim.config.dialects.smart_settings import import_promise, resolve_imports

__all__ = [
    "Note",
    "is_cluster_utils",
    "knows",
    "repository_root",
    "resolve_imports",
    "slurm_minutes",
    "translate",
    "warnings_of",
]


def translate(
    data: Mapping[str, Any],
    *,
    is_native: Callable[[str], bool] | None = None,
    cwd: Path | None = None,
) -> tuple[dict[str, Any], list[Note]]:
    """Rewrite a cluster_utils/LTTFS config into native keys.

    Args:
        data: The config as read (overrides already applied); not modified.
        is_native: Whether a top-level key is native (a key in neither dialect that
            resembles a cluster_utils key gets that hint); None: no such check.
        cwd: Directory whose git repository ``git_params`` without ``url`` means.

    Returns:
        The native config and one note per key translated, ignored or refused.
    """
    if is_mle_toolbox(data):
        return translate_mle(copy.deepcopy(dict(data)), cwd or Path.cwd())
    out = copy.deepcopy(dict(data))
    notes: list[Note] = []
    if is_cluster_utils(data):
        t = Translation(out, notes)
        t.dynamic_references(data)
        if is_native is not None:
            t.resembling(is_native)
        t.optimization_setting()
        t.environment_setup()
        t.cluster_requirements()
        t.top_level()
        t.grid_search()
        t.singularity()
        t.git_params(cwd or Path.cwd())
        in_cwd = out.get("run_in_working_dir") is True
        notes += import_promise(out, (cwd or Path.cwd()) if in_cwd else None)
    misplaced_memory(out, notes)
    lifecycle(out, notes, lttfs_defaults=is_cluster_utils(data) and uses_run_learning(out))
    if is_cluster_utils(data):
        early_killing(data, out, notes)
    return out, notes
