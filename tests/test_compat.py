"""cluster_utils job scripts under hpoptim (hpoptim.compat), run for real through the CLI."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim import compat
from hpoptim.cli import main

# A job script as written for cluster_utils: attribute access to nested params,
# a checkpoint in working_dir, exit_for_resume, finalize_job.
CLUSTER_UTILS_JOB = """\
import json, os, sys
from cluster_utils import exit_for_resume, finalize_job, initialize_job

params = initialize_job()
ckpt = os.path.join(params.working_dir, "ckpt.json")
state = json.load(open(ckpt)) if os.path.exists(ckpt) else {"starts": 0}
state["starts"] += 1
with open(os.path.join(params.working_dir, "starts.log"), "a") as log:
    log.write(f"{params.id} {os.environ['HPOPTIM_RUN_DIR']}\\n")
json.dump(state, open(ckpt, "w"))
if state["starts"] < params.model.n_starts:
    exit_for_resume()
loss = (params.model.lr - 0.3) ** 2 + 0 * len(params.tags)
finalize_job({"loss": loss, "starts": state["starts"]}, params)
"""
IMPORT_BEFORE = "from cluster_utils import exit_for_resume, finalize_job, initialize_job"
IMPORT_AFTER = "from hpoptim.compat import exit_for_resume, finalize_job, initialize_job"


def _config(tmp_path: Path, **extra: Any) -> Path:
    script = CLUSTER_UTILS_JOB.replace(IMPORT_BEFORE, IMPORT_AFTER)
    changed = [
        (a, b)
        for a, b in zip(CLUSTER_UTILS_JOB.splitlines(), script.splitlines(), strict=True)
        if a != b
    ]
    assert changed == [(IMPORT_BEFORE, IMPORT_AFTER)]  # the one-line migration
    (tmp_path / "job.py").write_text(script, encoding="utf-8")
    cfg = {
        "optimization_procedure_name": "cu",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "model.lr", "distribution": "Uniform", "bounds": [0, 1]}],
        "fixed_params": {"model.n_starts": 3, "tags": ["a", "b"]},
        "optimizer_str": "random",
        "number_of_samples": 2,
        "n_jobs_per_iteration": 2,
        "n_reruns": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 5,
        **extra,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


@pytest.mark.integration
def test_cluster_utils_job_script_runs_after_its_import_line_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(_config(tmp_path))]) == 0
    root = tmp_path / "results" / "cu"
    jobs = pd.read_csv(root / "jobs.csv")
    # 2 settings x 2 reruns, each started 3 times (exit_for_resume twice, no
    # training_iterations configured)
    assert len(jobs) == 12
    assert sorted(jobs["exit_code"]) == [0] * 4 + [3] * 8
    working_dirs = sorted(root.glob("jobs/*/working_dir_*"))
    assert len(working_dirs) == 4
    ids = set()
    for working_dir in working_dirs:
        lines = (working_dir / "starts.log").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 3  # the same working_dir for every start of that run
        (job_id,) = {line.split()[0] for line in lines}
        ids.add(int(job_id))
        assert json.loads((working_dir / "ckpt.json").read_text()) == {"starts": 3}
        settings = json.loads((working_dir / "settings.json").read_text())
        assert settings["working_dir"] == str(working_dir)
        assert settings["model"]["n_starts"] == 3
        with (working_dir / "metrics.csv").open() as fh:
            (row,) = list(csv.DictReader(fh))
        assert float(row["starts"]) == 3
        assert float(row["time_elapsed"]) >= 0
        with (working_dir / "param_choice.csv").open() as fh:
            (row,) = list(csv.DictReader(fh))
        assert {"model.lr", "model.n_starts", "tags", "working_dir", "id"} <= row.keys()
    assert ids == {0, 1, 2, 3}  # setting_id * n_reruns + rerun
    finished = jobs[jobs["exit_code"] == 0]
    assert finished["loss"].notna().all()
    assert set(finished["starts"]) == {3}


def _params_file(tmp_path: Path, params: dict[str, Any]) -> Path:
    run_dir = tmp_path / "jobs" / "4" / "run_1.0-0"
    run_dir.mkdir(parents=True)
    context = {"setting_id": 4, "rerun": 1, "n_reruns": 2, "run_dir": str(run_dir)}
    context["setting_dir"] = str(run_dir.parent)
    path = run_dir / "params.json"
    path.write_text(json.dumps({"params": params, "job": context}), encoding="utf-8")
    return path


def test_params_are_nested_read_only_attributes(tmp_path: Path) -> None:
    path = _params_file(tmp_path, {"opt": {"lr": 0.1, "layers": [{"n": 2}]}})
    params = compat.initialize_job(["job.py", str(path)], verbose=False)
    assert params.opt.lr == 0.1
    assert params.opt.layers[0].n == 2
    assert params.id == 9
    assert params.working_dir == str(tmp_path / "jobs" / "4" / "working_dir_1")
    assert Path(params.working_dir, "settings.json").is_file()
    with pytest.raises(TypeError, match="read-only"):
        params.opt.lr = 1  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no parameter 'lrr'; known: layers, lr"):
        _ = params.opt.lrr


def test_reserved_parameter_names_are_refused(tmp_path: Path) -> None:
    path = _params_file(tmp_path, {"id": 3})
    with pytest.raises(ValueError, match="parameter\\(s\\) id are set by hpoptim"):
        compat.initialize_job(["job.py", str(path)], verbose=False)


def test_old_names_warn_and_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _params_file(tmp_path, {"x": 1})
    monkeypatch.setenv("HPOPTIM_RUN_DIR", str(path.parent))
    monkeypatch.setenv("HPOPTIM_METRICS_FILE", str(path.parent / "metrics.json"))
    with pytest.warns(FutureWarning, match="initialize_job"):
        params = compat.read_params_from_cmdline(["job.py", str(path)], verbose=False)
    with pytest.warns(FutureWarning, match="finalize_job"):
        compat.save_metrics_params({"loss": 1.5, "name": "text"}, params)
    reported = json.loads((path.parent / "metrics.json").read_text())
    assert reported["loss"] == 1.5
    assert "name" not in reported  # only numbers reach hpoptim; the CSV keeps all
    with (Path(params.working_dir) / "metrics.csv").open() as fh:
        assert next(csv.DictReader(fh))["name"] == "text"


def test_reported_metrics_follow_the_umask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _params_file(tmp_path, {"x": 1})
    metrics = path.parent / "metrics.json"
    monkeypatch.setenv("HPOPTIM_RUN_DIR", str(path.parent))
    monkeypatch.setenv("HPOPTIM_METRICS_FILE", str(metrics))
    params = compat.initialize_job(["job.py", str(path)], verbose=False)
    old = os.umask(0o027)
    try:
        compat.finalize_job({"loss": 0.5}, params)
    finally:
        os.umask(old)
    assert json.loads(metrics.read_text())["loss"] == 0.5
    assert metrics.stat().st_mode & 0o777 == 0o640  # as hpoptim.job writes it
    recorded = json.loads((path.parent / "job_env.json").read_text())  # for the provenance
    assert recorded["python"] == sys.version.split()[0]
    assert recorded["executable"] == sys.executable
