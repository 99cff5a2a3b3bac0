"""Shared pieces of the config tests: a minimal valid config and a way to write it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpoptim.config import load_config_dict
from hpoptim.errors import ConfigError


def minimal() -> dict[str, Any]:
    """The smallest valid config (absolute results_dir, so the cwd does not matter)."""
    return {
        "optimization_procedure_name": "t",
        "results_dir": "/tmp/hpoptim-config-tests",
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "number_of_samples": 4,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
    }


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    """Key path -> message of every problem ``data`` has (fails if it has none)."""
    with pytest.raises(ConfigError) as info:
        load_config_dict(data)
    return {p.path: p.message for p in info.value.problems}


def toml_dumps(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the configs used here (scalars, lists, one level of tables)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    plain = [f"{json.dumps(k)} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "\n".join(f"{json.dumps(sk)} = {value(sv)}" for sk, sv in v.items())
        for k, v in data.items()
        if isinstance(v, dict)
    ]
    return "\n".join(plain) + "\n\n" + "\n\n".join(tables) + "\n"


def write(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` in the format ``path``'s extension names."""
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2))
    elif path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    else:
        path.write_text(toml_dumps(data))
    return path
