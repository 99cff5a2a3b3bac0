"""examples/mle_toolbox: mle-toolbox experiments as written, run on the local launcher."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mle_toolbox"


def _hpoptim(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hpoptim", *args, "-q"],
        cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def _job_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "jobs").glob("*/*/params.json"))


@pytest.mark.integration
def test_a_hyperparameter_search_finds_the_best_setting(tmp_path: Path) -> None:
    _hpoptim(EXAMPLE, "experiment.yaml", f"results_dir={str(tmp_path)!r}")
    root = tmp_path / "toy_search"
    settings = pd.read_csv(root / "settings.csv")
    # grid: lrate linspace(0.1, 0.5, 3) x arch, each evaluated num_evals_per_iter = 2 times
    assert len(settings) == 6
    assert set(settings["status"]) == {"complete"}
    assert (settings["n_ok"] == 2).all()
    best = json.loads((root / "best_params.json").read_text(encoding="utf-8"))
    assert best["params"]["train_config.arch"] == "mlp"
    assert best["params"]["train_config.lrate"] == pytest.approx(0.3)
    assert best["value"] < 0.01
    for run_dir in _job_dirs(root):
        params = json.loads((run_dir / "params.json").read_text(encoding="utf-8"))
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        assert config["train_config"] == {"num_epochs": 4, **params["params"]["train_config"]}
        assert config["log_config"]["what_to_track"] == ["test_loss"]
        assert (run_dir / "seed.txt").read_text() == str(params["job"]["seed"])
        reported = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        sampled = params["params"]["train_config"]
        offset = {"mlp": 0.0, "cnn": 0.5}[sampled["arch"]]
        assert reported["test_loss"] == pytest.approx(
            (sampled["lrate"] - 0.3) ** 2 + offset, abs=0.01
        )
    assert len(_job_dirs(root)) == 12


@pytest.mark.integration
def test_multiple_experiments_run_every_config_and_seed(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE / "train.py", tmp_path)
    base = json.loads((EXAMPLE / "base_config.json").read_text(encoding="utf-8"))
    for name, arch in (("mlp.json", "mlp"), ("cnn.json", "cnn")):
        config = {**base, "train_config": {**base["train_config"], "arch": arch}}
        (tmp_path / name).write_text(json.dumps(config), encoding="utf-8")
    experiment = {
        "meta_job_args": {
            "project_name": "seeds",
            "job_type": "multiple-experiments",
            "base_train_fname": "train.py",
            "experiment_dir": "experiments",
        },
        "multi_experiment_args": {"config_fnames": ["mlp.json", "cnn.json"], "num_seeds": 2},
        "single_job_args": {"num_logical_cores": 1},
    }
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(experiment), encoding="utf-8")
    _hpoptim(tmp_path, "experiment.yaml")
    root = tmp_path / "experiments" / "seeds"
    runs = set()
    for run_dir in _job_dirs(root):
        params = json.loads((run_dir / "params.json").read_text(encoding="utf-8"))["params"]
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        assert Path(params["mle_toolbox"]["base_config"]).stem == config["train_config"]["arch"]
        seed = (run_dir / "seed.txt").read_text()
        runs.add((config["train_config"]["arch"], seed))
        assert seed == str(params["mle_toolbox"]["seed_id"])
    assert runs == {("mlp", "0"), ("mlp", "1"), ("cnn", "0"), ("cnn", "1")}
    settings = pd.read_csv(root / "settings.csv")
    assert set(settings["status"]) == {"complete"}
    assert settings["test_loss"].notna().all()
