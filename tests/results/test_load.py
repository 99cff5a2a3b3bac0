"""load_run: a run's results as typed DataFrames, read without disturbing the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import hpoptim
from hpoptim.cli import main
from hpoptim.errors import StorageError
from hpoptim.state.storage import RunLock

# n is an integer parameter; n == 3 fails with a traceback; every setting runs two chained
# iterations and reports an integer metric "steps" next to the float "loss".
JOB = """\
import sys
from hpoptim import job
p, ctx = job.get_params(), job.get_context()
if p["n"] == 3:
    raise ValueError("n=3 is not allowed")
job.report({"loss": (p["n"] - 2) ** 2 + p["x"] + ctx["iteration"], "steps": 10 * ctx["iteration"]})
if ctx["iteration"] + 1 < ctx["n_iterations"]:
    job.exit_for_resume()
"""


def run_config(tmp_path: Path, **extra: Any) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "r",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [
            {"param": "n", "distribution": "Discrete", "options": [1, 2, 3]},
            {"param": "x", "distribution": "Discrete", "options": [0.5]},
        ],
        "optimizer_str": "gridsearch",
        "number_of_samples": 3,
        "n_jobs_per_iteration": 3,
        "metric_to_optimize": "loss",
        "minimize": True,
        "max_attempts": 1,
        "max_failed_fraction": 1.0,
        "training_iterations": 2,
        "seed": 3,
        "local": {"n_parallel_jobs": 2},
    }
    cfg.update(extra)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("load")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        assert main([str(run_config(tmp)), "-q"]) == 0
    return tmp / "results" / "r"


def test_dtypes(finished_run: Path) -> None:
    run = hpoptim.load_run(finished_run)
    jobs, settings = run.jobs, run.settings
    for name in ("setting_id", "rerun", "iteration", "attempt", "exit_code", "signal"):
        assert jobs[name].dtype == "Int64", name
    for name in ("setting_id", "n_ok", "n_failed", "n_iterations", "n_attempts", "n"):
        assert settings[name].dtype == "Int64", name
    assert jobs["n"].dtype == "Int64"
    assert jobs["x"].dtype == "float64"
    assert jobs["loss"].dtype == "float64"
    assert isinstance(jobs["start_time"].dtype, pd.DatetimeTZDtype)
    assert isinstance(jobs["end_time"].dtype, pd.DatetimeTZDtype)
    assert (jobs["end_time"] >= jobs["start_time"]).all()
    assert jobs["status"].dtype == "string"
    # missing values are NA, not "" or NaN-as-float in an integer column
    assert jobs["signal"].isna().all()
    failed = settings[settings["status"] == "failed"]
    assert len(failed) == 1
    assert failed["loss"].isna().all()
    assert failed["n_ok"].tolist() == [0]


def test_values_and_failure_reason(finished_run: Path) -> None:
    run = hpoptim.load_run(finished_run)
    jobs = run.jobs
    assert sorted(jobs["exit_code"].tolist()) == [0, 0, 1, 3, 3]
    failed_job = jobs[jobs["exit_code"] == 1].iloc[0]
    assert failed_job["n"] == 3
    assert "ValueError: n=3 is not allowed" in failed_job["reason"]
    assert run.best is not None
    assert run.best["n"] == 2
    assert run.best["loss"] == pytest.approx(0.5 + 1)
    assert run.config["number_of_samples"] == 3
    assert run.metric == "loss"


def test_intermediate_values_per_iteration(finished_run: Path) -> None:
    it = hpoptim.load_run(finished_run).iterations
    assert len(it) == 4  # two settings that work x two iterations
    assert it["iteration"].dtype == "Int64"
    by = it.set_index(["setting_id", "iteration"]).sort_index()
    for sid in it["setting_id"].unique():
        assert by.loc[(sid, 1), "loss"] - by.loc[(sid, 0), "loss"] == pytest.approx(1.0)
        assert by.loc[(sid, 1), "steps"] == 10.0


def test_reads_a_running_run_without_its_lock_and_writes_nothing(
    finished_run: Path, tmp_path: Path
) -> None:
    """A driver holds the lock and is mid-way through writing an event."""
    import shutil

    root = tmp_path / "r"
    shutil.copytree(finished_run, root)
    lines = (root / "journal.jsonl").read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"e":"setting_finished"' in line)
    (root / "journal.jsonl").write_text("".join(lines[:cut]) + '{"e":"ended","jo')
    with RunLock(root / ".lock"):
        before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
        run = hpoptim.load_run(root)
        assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert set(run.settings["status"]) == {"running"}
    assert run.best is None
    assert run.settings["loss"].isna().all()


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="holds no hpoptim run"):
        hpoptim.load_run(tmp_path)
