#!/usr/bin/env python3
"""Run an mle-toolbox training script the way mle-toolbox starts it.

A job script for hpoptim (``script_relative_path: wrappers/run_mle.py``; an mle-toolbox
experiment YAML is translated to it), started with its params file. Standard library
only; it does not import hpoptim.

1. The fixed parameter ``mle_toolbox.train_script`` names the training script and
   ``mle_toolbox.base_config`` its base JSON config (absolute paths; the translation
   resolves them).
2. Every sampled ``train_config.<name>`` parameter is written into the config's
   ``train_config`` section (nested for dotted names; a missing section is created);
   the result goes to ``<run_dir>/config.json`` (``config.yaml`` for a YAML base config,
   read and written with PyYAML, which the job's Python then needs).
3. The script is exec'd as ``<this python> SCRIPT -config <run_dir>/config.json -seed N
   -exp_dir <run_dir>`` in the working directory the job was started in (mle-toolbox's
   contract). N is ``mle_toolbox.seed_id`` when given (multiple-experiments), else the
   job's seed. Its exit code is the job's; the score is what it reports through
   ``hpoptim.job.report`` (``hpoptim`` is on the job's ``PYTHONPATH``).

A missing script or config exits 78 (:data:`SETUP_ERROR_EXIT_CODE`): hpoptim stops the
run instead of retrying.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# the job contract (hpoptim/contract.py; tests/test_contract.py holds these copies equal)
ENV_PARAMS_FILE = "HPOPTIM_PARAMS_FILE"
SETUP_ERROR_EXIT_CODE = 78  # stops the run

SECTION = "mle_toolbox"
TRAIN_CONFIG = "train_config"
CONFIG_STEM = "config"
YAML_SUFFIXES = (".yaml", ".yml")


class SetupError(Exception):
    """The parameters name no usable script or config."""


def patched_config(base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``values`` (nested) merged into its ``train_config`` section."""
    config = json.loads(json.dumps(base))
    section = config.setdefault(TRAIN_CONFIG, {})
    if not isinstance(section, dict):
        raise SetupError(f"the base config's {TRAIN_CONFIG} is not an object: {section!r}")
    _merge(section, values)
    return config


def _merge(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _suffix(path: Path) -> str:
    return ".yaml" if path.suffix in YAML_SUFFIXES else ".json"


def _yaml() -> Any:
    try:
        import yaml  # PyYAML, when the job's Python has it (YAML base configs only)
    except ImportError:
        raise SetupError("a YAML base config needs PyYAML in the job's Python") from None
    return yaml


def _read(path: Path) -> dict[str, Any]:
    """The base config, JSON or (``.yaml``/``.yml``, with PyYAML) YAML."""
    text = path.read_text(encoding="utf-8")
    loads = _yaml().safe_load if _suffix(path) == ".yaml" else json.loads
    try:
        data = loads(text)
    except Exception as exc:  # json's ValueError, or PyYAML's YAMLError
        raise SetupError(f"base config {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise SetupError(f"base config {path} is not a mapping")
    return data


def _dump(config: Mapping[str, Any], target: Path) -> None:
    if target.suffix == ".yaml":
        text = _yaml().safe_dump(dict(config), sort_keys=False)
    else:
        text = json.dumps(config, indent=1)
    target.write_text(text, encoding="utf-8")


def command(document: Mapping[str, Any], python: str) -> tuple[list[str], dict[str, Any], Path]:
    """The argv to exec, the patched config and where it goes, from a params file."""
    params, job = document["params"], document["job"]
    mle = params.get(SECTION)
    if not isinstance(mle, Mapping) or not mle.get("train_script"):
        raise SetupError(f"the params name no {SECTION}.train_script")
    script, base_path = Path(mle["train_script"]), mle.get("base_config")
    if not script.is_file():
        raise SetupError(f"training script {script} does not exist")
    if not base_path or not Path(base_path).is_file():
        raise SetupError(f"base config {base_path} does not exist")
    base = _read(Path(base_path))
    config = patched_config(base, params.get(TRAIN_CONFIG) or {})
    run_dir = Path(job["run_dir"])
    seed = mle.get("seed_id", job["seed"])
    target = run_dir / f"{CONFIG_STEM}{_suffix(Path(base_path))}"
    argv = [python, str(script), "-config", str(target), "-seed", str(seed)]
    return [*argv, "-exp_dir", str(run_dir)], config, target


def main(argv: list[str]) -> int:
    path = os.environ.get(ENV_PARAMS_FILE) or (argv[-1] if argv else "")
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        args, config, target = command(document, sys.executable)
    except (OSError, ValueError, KeyError, SetupError) as exc:
        print(f"run_mle: {exc}", file=sys.stderr)
        return SETUP_ERROR_EXIT_CODE
    _dump(config, target)
    sys.stdout.flush()
    os.execv(args[0], args)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
