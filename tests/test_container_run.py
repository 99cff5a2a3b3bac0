"""An hpoptim run through the CLI with a ``singularity`` section, on the container double."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from tests.conftest import FakeContainerRuntime

# Chained job: iteration 0 exits 3 (resume), iteration 1 reads the previous
# iteration's checkpoint and reports. It also records whether it ran inside the
# (double's) container: APPTAINER_CONTAINER is set by the runtime.
JOB = """\
import json, os, sys
from pathlib import Path
params = json.load(open(sys.argv[-1]))
x, job = params["params"]["x"], params["job"]
run_dir = Path(os.environ["HPOPTIM_RUN_DIR"])
(run_dir / "container.txt").write_text(os.environ.get("APPTAINER_CONTAINER", "none"))
if job["iteration"] == 0:
    (run_dir / "ckpt.json").write_text(json.dumps({"x": x}))
    sys.exit(3)
prev = json.loads((Path(job["previous_run_dir"]) / "ckpt.json").read_text())
tmp = run_dir / "metrics.json.tmp"
tmp.write_text(json.dumps({"loss": (prev["x"] - 0.3) ** 2}))
os.replace(tmp, os.environ["HPOPTIM_METRICS_FILE"])
"""


def _config(tmp_path: Path, image: Path, **singularity: Any) -> Path:
    (tmp_path / "job.py").write_text(JOB, encoding="utf-8")
    cfg = {
        "optimization_procedure_name": "c",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 3,
        "n_jobs_per_iteration": 3,
        "training_iterations": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 3,
        "local": {"n_parallel_jobs": 2},
        "singularity": {"image": str(image), **singularity},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


@pytest.mark.integration
@pytest.mark.parametrize(
    "singularity",
    [pytest.param({}, id="exec"), pytest.param({"cleanenv": True, "use_run": True}, id="run")],
)
def test_every_job_runs_through_the_container(
    singularity: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_container_runtime: FakeContainerRuntime,
) -> None:
    monkeypatch.chdir(tmp_path)
    image = fake_container_runtime.image
    assert main([str(_config(tmp_path, image, **singularity))]) == 0
    root = tmp_path / "results" / "c"
    jobs = pd.read_csv(root / "jobs.csv")
    assert len(jobs) == 6  # 3 settings x 2 chained iterations
    assert sorted(jobs["exit_code"].tolist()) == [0, 0, 0, 3, 3, 3]
    assert jobs.loc[jobs["exit_code"] == 0, "loss"].notna().all()

    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert set(jobs["image_sha256"]) == {digest}
    events = [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]
    assert next(e for e in events if e["e"] == "run_started")["image_sha256"] == digest

    calls = fake_container_runtime.calls()
    assert len(calls) == 6
    action = "run" if singularity.get("use_run") else "exec"
    params_files = sorted(call["argv"][-1] for call in calls)
    assert all(call["argv"][:2] == ["apptainer", action] for call in calls)
    assert all(str(image) in call["argv"] for call in calls)
    run_dirs = sorted(str(Path(p).parent) for p in params_files)
    assert run_dirs == sorted(str(Path(d).resolve()) for d in jobs["job_dir"])
    for run_dir in run_dirs:
        assert (Path(run_dir) / "container.txt").read_text() == str(image)


@pytest.mark.integration
def test_run_singularity_wrapper_from_fixed_params(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_container_runtime: FakeContainerRuntime,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _config(tmp_path, fake_container_runtime.image)
    cfg = json.loads(path.read_text(encoding="utf-8"))
    del cfg["singularity"]
    script = tmp_path / "job.py"
    script.write_text(f"#!/usr/bin/env python3\n{JOB}", encoding="utf-8")
    script.chmod(0o755)
    cfg["script_relative_path"] = "wrappers/run_singularity.py"
    cfg["fixed_params"] = {
        "singularity.image": str(fake_container_runtime.image),
        "singularity.script": "job.py",
    }
    path.write_text(json.dumps(cfg), encoding="utf-8")
    assert main([str(path)]) == 0
    jobs = pd.read_csv(tmp_path / "results" / "c" / "jobs.csv")
    assert sorted(jobs["exit_code"].tolist()) == [0, 0, 0, 3, 3, 3]
    calls = fake_container_runtime.calls()
    assert len(calls) == 6
    assert all(call["argv"][-2] == str(script) for call in calls)
    digest = hashlib.sha256(fake_container_runtime.image.read_bytes()).hexdigest()
    assert set(jobs["image_sha256"]) == {digest}


@pytest.mark.integration
def test_a_wrapper_setup_error_stops_the_run_once_and_resume_continues_after_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_container_runtime: FakeContainerRuntime,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _config(tmp_path, fake_container_runtime.image)
    cfg = json.loads(path.read_text(encoding="utf-8"))
    del cfg["singularity"]
    cfg["script_relative_path"] = "wrappers/run_singularity.py"
    cfg["fixed_params"] = {
        "singularity.image": str(fake_container_runtime.image),
        "singularity.script": "train.py",  # not there yet
    }
    path.write_text(json.dumps(cfg), encoding="utf-8")
    assert main([str(path)]) == 1
    err = capfd.readouterr().err
    assert "could not set itself up (exit code 78): run_singularity: singularity.script" in err
    assert "hpoptim resume" in err
    root = tmp_path / "results" / "c"
    events = [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines()]
    ended = [e for e in events if e["e"] == "ended"]
    assert ended
    assert {e["exit_code"] for e in ended} <= {78, None}  # None: cancelled when the run stopped
    assert not [e for e in events if e["e"] == "setting_finished"]  # no setting counted failed
    assert fake_container_runtime.calls() == []

    (tmp_path / "train.py").write_text(f"#!/usr/bin/env python3\n{JOB}", encoding="utf-8")
    assert main(["resume", str(root)]) == 0
    jobs = pd.read_csv(root / "jobs.csv")
    done = jobs[jobs["exit_code"] == 0]
    assert len(done) == 3  # every setting finished after the fix
    assert done["loss"].notna().all()
