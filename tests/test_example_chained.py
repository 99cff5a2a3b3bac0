"""examples/chained: a checkpointing job chained over training iterations."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "chained"


def _train_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chained_train", EXAMPLE / "train.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
def test_chained_iterations_train_like_one_long_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpoptim",
            str(EXAMPLE / "config.yaml"),
            f"results_dir={str(tmp_path)!r}",
            "number_of_samples=3",
            "-q",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "chained"
    jobs = pd.read_csv(root / "jobs.csv")
    settings = pd.read_csv(root / "settings.csv")
    assert len(settings) == 3
    assert set(settings["status"]) == {"complete"}
    assert (settings["n_iterations"] == 4).all()
    # 3 settings x 2 reruns x 4 iterations, one process each, in run_R.I-0
    assert len(jobs) == 24
    assert (
        jobs.groupby(["setting_id", "rerun"])["status"]
        .apply(list)
        .map(lambda s: s == ["resume", "resume", "resume", "completed"])
        .all()
    )

    train = _train_module()
    for _, last in jobs[jobs["iteration"] == 3].iterrows():
        run_dir = Path(last["job_dir"])
        params_doc = json.loads((run_dir / "params.json").read_text())
        assert Path(params_doc["job"]["previous_run_dir"]).name == f"run_{last['rerun']}.2-0"
        whole = train.Trainer(params_doc["params"], params_doc["job"]["seed"], None)
        whole.train(4 * params_doc["params"]["steps_per_iteration"])
        assert last["step"] == whole.step == 200
        assert last["loss"] == pytest.approx(train.loss(whole.weights), rel=1e-12, abs=1e-15)
