"""examples/learning: a learner optimised through wrappers/run_learning.py."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "learning"
LEARNER = EXAMPLE / "learner.py"
INDEX = REPO / "templates" / "learning" / "index.json"
METRIC = "rollout/ep_rew_mean"


def _templates() -> dict[str, Any]:
    index = json.loads(INDEX.read_text(encoding="utf-8"))
    return {
        name: json.loads((INDEX.parent / path).read_text(encoding="utf-8"))
        for name, path in index.items()
    }


def _run_learner(
    run_dir: Path, configs: dict[str, Any], seed: int, resume_from: Path | None
) -> list[str]:
    """Run the learner on ``configs``; return the last row of its progress.csv."""
    run_dir.mkdir(parents=True)
    paths = {}
    for name, config in configs.items():
        paths[name] = str(run_dir / f"{name}.json")
        Path(paths[name]).write_text(json.dumps(config), encoding="utf-8")
    info = {
        "output_dir": str(run_dir),
        "log_dir": str(run_dir),
        "checkpoint_dir": str(run_dir),
        "resume_from": None if resume_from is None else str(resume_from),
        "seed": seed,
    }
    main_path = run_dir / "main.json"
    main_path.write_text(json.dumps(paths), encoding="utf-8")
    (run_dir / "run_info.json").write_text(json.dumps(info), encoding="utf-8")
    subprocess.run(
        [sys.executable, str(LEARNER), str(main_path)], check=True, timeout=120, cwd=REPO
    )
    with open(run_dir / "progress.csv", encoding="utf-8") as fh:
        return list(csv.reader(fh))[-1]


def _with_steps(configs: dict[str, Any], steps: int) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(configs))
    copy["rl_config"]["train_steps"] = steps
    return copy


@pytest.mark.parametrize(
    ("n_iterations", "steps"),
    [pytest.param(3, 20, id="3x20"), pytest.param(2, 35, id="2x35-log-interval-not-dividing")],
)
def test_chained_learner_trains_like_one_long_run(
    tmp_path: Path, n_iterations: int, steps: int
) -> None:
    configs = _templates()
    previous = None
    for i in range(n_iterations):
        run_dir = tmp_path / f"it{i}"
        chained = _run_learner(run_dir, _with_steps(configs, steps), 5, previous)
        previous = run_dir
    assert previous is not None
    whole = _run_learner(tmp_path / "whole", _with_steps(configs, n_iterations * steps), 5, None)
    assert int(whole[0]) == n_iterations * steps
    assert chained == whole
    checkpoint = json.loads((previous / "checkpoint.json").read_text(encoding="utf-8"))
    whole_ckpt = json.loads((tmp_path / "whole" / "checkpoint.json").read_text(encoding="utf-8"))
    assert checkpoint == whole_ckpt


@pytest.mark.integration
def test_learning_example_runs_and_keeps_patched_configs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hpoptim", str(EXAMPLE / "config.yaml"),
         f"results_dir={str(tmp_path)!r}", "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "learning"
    settings = pd.read_csv(root / "settings.csv")
    jobs = pd.read_csv(root / "jobs.csv")
    assert set(settings["status"]) == {"complete"}
    assert (settings["n_iterations"] == 3).all()
    assert len(jobs) == len(settings) * 2 * 3

    ranking = json.loads((root / "best_jobs" / "ranking.json").read_text(encoding="utf-8"))
    assert len(ranking) == 2
    best = json.loads((root / "best_params.json").read_text(encoding="utf-8"))
    assert ranking[0]["setting_id"] == best["setting_id"]
    template = _templates()["rl_config"]
    for entry in ranking:
        row = settings[settings["setting_id"] == entry["setting_id"]].iloc[0]
        setting_dir = root / "best_jobs" / f"setting_{entry['setting_id']}"
        for rerun in (0, 1):
            rl = json.loads(
                (setting_dir / f"run_{rerun}.2-0" / "config" / "rl_config.json").read_text(
                    encoding="utf-8"
                )
            )
            assert rl["optimizer"]["lr"] == row["config.rl_config.optimizer.lr"]
            assert rl["policy"]["log_std_init"] == row["config.rl_config.policy.log_std_init"]
            assert rl["policy"]["net_arch"] == [
                row["config.rl_config.policy.net_arch:0"],
                *template["policy"]["net_arch"][1:],
            ]
            assert rl["train_steps"] == 40
            assert rl["optimizer"]["betas"] == template["optimizer"]["betas"]

    # The last iteration's metric equals one uninterrupted run of 3 x 40 steps.
    last = root / "jobs" / str(best["setting_id"]) / "run_0.2-0"
    params = json.loads((last / "params.json").read_text(encoding="utf-8"))
    info = json.loads((last / "run_info.json").read_text(encoding="utf-8"))
    assert Path(info["resume_from"]).name == "run_0.1-0"
    main = json.loads((last / "main_config.json").read_text(encoding="utf-8"))
    configs = {
        name: json.loads(Path(path).read_text(encoding="utf-8")) for name, path in main.items()
    }
    whole = _run_learner(tmp_path / "whole", _with_steps(configs, 120), params["job"]["seed"], None)
    reported = json.loads((last / "metrics.json").read_text(encoding="utf-8"))[METRIC]
    assert int(whole[0]) == 120
    assert float(whole[2]) == reported
