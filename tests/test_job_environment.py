"""The job side imports in any job environment, as it does inside a container image.

A job whose environment is a virtualenv without hpoptim (cluster_utils'
``environment_setup.virtual_env_path``) still imports ``hpoptim.compat``: the run's
``job_side/`` directory, first on every job's ``PYTHONPATH``, holds only ``hpoptim``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hpoptim.cli import main

JOB = """\
import sys
from hpoptim.compat import finalize_job, initialize_job

params = initialize_job(verbose=False)
finalize_job({"loss": params.x, "in_venv": float(sys.prefix != sys.base_prefix)}, params)
"""


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with no package installed (no hpoptim, no pip)."""
    venv = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import hpoptim"],
        cwd=venv,
        env=env,
        capture_output=True,
        check=False,
    )
    assert probe.returncode != 0  # the environment itself lacks hpoptim
    return venv


def test_a_job_in_a_virtualenv_without_hpoptim_imports_the_job_side(
    bare_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    (tmp_path / "main.py").write_text(JOB)
    config = {
        "optimization_procedure_name": "venv",
        "results_dir": "results",
        "run_in_working_dir": True,
        "script_relative_path": "main.py",
        "environment_setup": {"virtual_env_path": str(bare_venv)},
        "cluster_requirements": {"request_cpus": 1},
        "restarts": 1,
        "local_run": True,
        "hyperparam_list": [{"param": "x", "values": [1, 2]}],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert main(["run", "config.json", "-q"]) == 0
    root = tmp_path / "results" / "venv"
    settings = pd.read_csv(root / "settings.csv")
    assert list(settings["status"]) == ["complete", "complete"]
    assert list(settings["in_venv"]) == [1.0, 1.0]  # the venv's python ran the jobs
    assert sorted((root / "job_side").iterdir()) == [root / "job_side" / "hpoptim"]


@pytest.mark.parametrize(
    ("fixed", "image"),
    [
        pytest.param({"singularity.image": "{tmp}/missing.sif"}, "{tmp}/missing.sif", id="flat"),
        pytest.param({"singularity": {"image": "missing.sif"}}, "missing.sif", id="relative"),
    ],
)
def test_check_refuses_a_fixed_params_image_that_does_not_exist(
    fixed: dict[str, object],
    image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.py").write_text(JOB)
    fixed = json.loads(json.dumps(fixed).replace("{tmp}", str(tmp_path)))
    config = {
        "optimization_procedure_name": "img",
        "results_dir": "results",
        "run_in_working_dir": True,
        "script_relative_path": "wrappers/run_singularity.py",
        "fixed_params": {**fixed, "singularity.script": "main.py"},
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "number_of_samples": 2,
        "n_jobs_per_iteration": 1,
        "metric_to_optimize": "loss",
        "minimize": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert main(["check", "config.json"]) == 2
    shown = image.replace("{tmp}", str(tmp_path))
    expected = f"fixed_params.singularity.image: image {shown!r} does not exist"
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
