"""cluster_utils grid searches as written: no metric to optimise, every metric collected.

cluster_utils' ``grid_search`` has no ``metric_to_optimize``/``minimize``: it runs every
point of the grid and records what the jobs report. Such a config runs as written; no
setting is "best" until ``hpoptim report --metric NAME [--maximize]`` names a metric.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main

JOB = """\
from hpoptim.compat import finalize_job, initialize_job

params = initialize_job()
u, w = params.fn_args.u, params.fn_args.w
finalize_job({"score": u * w, "size": w + 0.5 * (params.id % 2)}, params)
"""


def _grid_search(tmp_path: Path, **extra: Any) -> Path:
    """The shape of cluster_utils' examples/basic/grid_search.json, with a zipped entry."""
    (tmp_path / "main.py").write_text(JOB)
    data: dict[str, Any] = {
        "optimization_procedure_name": "gs",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "main.py",
        "remove_jobs_dir": False,
        "environment_setup": {},
        "cluster_requirements": {"request_cpus": 1},
        "fixed_params": {"test_resume": False},
        "restarts": 2,
        "samples": None,
        "local_run": True,
        "hyperparam_list": [
            {"param": "fn_args.u", "values": [-0.5, 0.5]},
            {"param": ["fn_args.w", "tag"], "values": [[1, "a"], [2, "b"]]},
        ],
        **extra,
    }
    path = tmp_path / "grid_search.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def grid_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(_grid_search(tmp_path)), "-q"]) == 0
    return tmp_path / "results" / "gs"


def test_a_grid_search_without_a_metric_runs_and_collects_every_metric(grid_run: Path) -> None:
    settings = pd.read_csv(grid_run / "settings.csv")
    assert len(settings) == 4
    assert set(settings["status"]) == {"complete"}
    assert (settings["n_ok"] == 2).all()  # restarts: 2
    for _, row in settings.iterrows():
        assert row["score"] == pytest.approx(row["fn_args.u"] * row["fn_args.w"])
        assert row["size"] == pytest.approx(row["fn_args.w"] + 0.25)  # mean over id % 2
    jobs = pd.read_csv(grid_run / "jobs.csv")
    assert len(jobs) == 8
    assert set(jobs["status"]) == {"completed"}
    assert {"score", "size"} <= set(jobs.columns)
    report = (grid_run / "report.md").read_text()
    assert "metrics collected: `score`, `size`, `time_elapsed`; no metric to optimise" in report
    assert "## Settings" in report
    assert "## Best settings" not in report
    assert not (grid_run / "best_params.json").exists()
    assert not any((grid_run / "best_jobs").glob("setting_*"))
    assert main(["report", str(grid_run), "--html-only"]) == 0  # drawn now, not in background
    html = (grid_run / "report.html").read_text()
    assert "no metric to optimise" in html
    assert "<th>score</th>" in html


def test_report_metric_names_the_best_afterwards(
    grid_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["report", str(grid_run), "--metric", "score", "--maximize"]) == 0
    out = capsys.readouterr().out
    assert "best score = 1 (n=2) from setting" in out
    best = json.loads((grid_run / "best_params.json").read_text())
    assert best["metric"] == "score"
    assert best["minimize"] is False
    assert best["params"]["fn_args.u"] == 0.5
    assert best["params"]["fn_args.w"] == 2
    assert "## Best settings" in (grid_run / "report.md").read_text()
    assert (grid_run / "best_jobs" / f"setting_{best['setting_id']}").is_dir()
    assert main(["report", str(grid_run), "--metric", "score"]) == 0  # minimised
    best = json.loads((grid_run / "best_params.json").read_text())
    assert (best["params"]["fn_args.u"], best["params"]["fn_args.w"]) == (-0.5, 2)


def test_report_metric_refuses_a_metric_nobody_reported(
    grid_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["report", str(grid_run), "--metric", "scor"]) == 2
    err = capsys.readouterr().err
    assert "--metric: no completed setting reported 'scor' (metrics reported: score, size" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            {"optimizer_str": "cem_metaoptimizer"},
            "metric_to_optimize: required by optimizer 'cem_metaoptimizer'",
            id="learning-sampler",
        ),
        pytest.param(
            {"metric_to_optimize": "score"},
            "minimize: required with metric_to_optimize ('score')",
            id="metric-without-direction",
        ),
        pytest.param(
            {"training_iterations": 2, "early_stopping": {"method": "median"}},
            "early_stopping.method: needs metric_to_optimize",
            id="early-stopping-without-metric",
        ),
    ],
)
def test_a_missing_metric_is_refused_where_it_is_needed(
    extra: dict[str, Any],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _grid_search(tmp_path)
    data = json.loads(path.read_text())
    if "optimizer_str" in extra:  # a native config with a learning sampler
        data = {
            "optimization_procedure_name": "n",
            "results_dir": "results",
            "run_in_working_dir": True,
            "script_relative_path": "main.py",
            "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
            "number_of_samples": 2,
            "n_jobs_per_iteration": 1,
        }
    path.write_text(json.dumps({**data, **extra}))
    assert main(["check", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_samples_runs_a_random_subset_of_the_grid_each_point_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _grid_search(tmp_path, samples=3, restarts=1)
    assert main(["run", str(path), "-q"]) == 0
    settings = pd.read_csv(tmp_path / "results" / "gs" / "settings.csv")
    columns = (settings["fn_args.u"], settings["fn_args.w"], settings["tag"])
    points = set(zip(*columns, strict=True))
    assert len(settings) == 3
    assert len(points) == 3  # no grid point twice
    grid = {(u, w, t) for u in (-0.5, 0.5) for w, t in ((1, "a"), (2, "b"))}
    assert points <= grid
    assert set(settings["status"]) == {"complete"}
