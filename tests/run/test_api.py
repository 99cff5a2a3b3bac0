"""``hpoptim.run(...)``: an optimisation from Python, with real job processes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import hpoptim
from hpoptim.errors import ConfigError, RunStoppedError

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "examples" / "rosenbrock" / "rosenbrock.py"


def _config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "optimization_procedure_name": "api",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": str(SCRIPT),
        "fixed_params": {"noise_std": 0.0},
        "optimized_params": [
            {"param": "point.x", "distribution": "TruncatedNormal", "bounds": [-2.0, 2.0]},
            {"param": "point.y", "distribution": "TruncatedNormal", "bounds": [-1.0, 3.0]},
        ],
        "optimizer_str": "random",
        "number_of_samples": 4,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 3,
        **extra,
    }


def test_run_from_a_dict_returns_the_results(tmp_path: Path) -> None:
    results = hpoptim.run(_config(tmp_path), ["number_of_samples=3"])
    assert results.root == tmp_path / "results" / "api"
    assert len(results.settings) == 3
    assert (results.settings["status"] == "complete").all()
    x, y = results.settings["point.x"], results.settings["point.y"]
    expected = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    assert results.settings["loss"].tolist() == pytest.approx(expected.tolist())


def test_a_finished_run_is_returned_without_running_again(tmp_path: Path) -> None:
    first = hpoptim.run(_config(tmp_path))
    again = hpoptim.run(_config(tmp_path))
    assert len(again.jobs) == len(first.jobs) == 4
    assert again.jobs["job_dir"].tolist() == first.jobs["job_dir"].tolist()


def test_a_config_file_and_the_launcher_argument(tmp_path: Path) -> None:
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps(_config(tmp_path)))
    results = hpoptim.run(path, launcher="local")
    assert results.config["launcher"] == "local"
    assert len(results.settings) == 4


def test_bad_input_raises_every_problem_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        hpoptim.run(_config(tmp_path, number_of_samples=0), launcher="nowhere")
    text = str(info.value)
    assert "number_of_samples: must be an integer >= 1, got 0" in text
    assert "launcher: must be" in text
    assert "got 'nowhere'" in text
    assert not (tmp_path / "results").exists()


def test_a_set_stop_event_stops_the_run_resumably(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(RunStoppedError, match="interrupted"):
        hpoptim.run(_config(tmp_path), stop=stop)
    resumed = hpoptim.run(_config(tmp_path))
    assert len(resumed.settings) == 4
