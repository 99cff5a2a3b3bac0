"""learning_table_tennis_from_scratch's lifecycle keys in ``fixed_params`` -> hpoptim's.

``learning_runs_per_job``, ``max_attempts`` and ``training_iterations`` (LTTFS's
hp_optim/README) become the runs, attempts and chained iterations hpoptim drives, and
stay in ``fixed_params`` for the job. A config that runs run_learning without them
gets LTTFS's defaults (3 runs, 3 attempts).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpoptim.config.dialects.notes import Note

#: LTTFS's lifecycle keys in fixed_params -> hpoptim's keys, with LTTFS's defaults.
LIFECYCLE = {"learning_runs_per_job": "n_reruns", "max_attempts": "max_attempts"}
LIFECYCLE_KEYS = (*LIFECYCLE, "training_iterations")
LTTFS_DEFAULTS = {"n_reruns": 3, "max_attempts": 3}


def lifecycle(out: dict[str, Any], notes: list[Note], lttfs_defaults: bool) -> None:
    fixed = out.get("fixed_params")
    if not isinstance(fixed, Mapping):
        fixed = {}
    for key in LIFECYCLE_KEYS:
        if key not in fixed:
            continue
        target = LIFECYCLE.get(key, key)
        value = fixed[key]
        if target in out and out[target] != value:
            notes.append(
                Note(
                    f"fixed_params.{key}",
                    "error",
                    f"is {value!r} but {target} is {out[target]!r}; give one value",
                )
            )
            continue
        out[target] = value
        notes.append(
            Note(
                f"fixed_params.{key}", "translated", f"-> {target} (also passed to the job)", target
            )
        )
    if lttfs_defaults:
        for target, default in LTTFS_DEFAULTS.items():
            key = next(k for k, v in LIFECYCLE.items() if v == target)
            if key not in fixed and target not in out:
                out[target] = default
                notes.append(
                    Note(
                        f"fixed_params.{key}",
                        "translated",
                        f"not given: {target} = {default}, run_learning's default",
                        target,
                    )
                )


def uses_run_learning(out: Mapping[str, Any]) -> bool:
    fixed = out.get("fixed_params") or {}
    scripts = [out.get("script_relative_path"), fixed.get("singularity.script")]
    nested = fixed.get("singularity")
    if isinstance(nested, Mapping):
        scripts.append(nested.get("script"))
    return any(isinstance(s, str) and Path(s).name == "run_learning.py" for s in scripts)
