"""``hpoptim run CONFIG --generate-only``: the job directories, for launching them
another way; nothing is run or journaled."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hpoptim.cli import main

REPO = Path(__file__).resolve().parent.parent
JOB = """\
import json, os, sys
p = json.load(open(sys.argv[-1]))
out = os.environ["HPOPTIM_METRICS_FILE"]
json.dump({"loss": p["params"]["x"] * 2}, open(out + ".tmp", "w")); os.replace(out + ".tmp", out)
"""


def _config(tmp_path: Path) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    config = {
        "optimization_procedure_name": "g",
        "results_dir": "results",
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Discrete", "options": [1, 2, 3]}],
        "optimizer_str": "gridsearch",
        "number_of_samples": 3,
        "n_jobs_per_iteration": 1,
        "n_reruns": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def _manifest(root: Path) -> list[dict[str, object]]:
    lines = (root / "generated" / "jobs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_generated_jobs_run_as_listed_and_a_real_run_follows_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--generate-only", str(_config(tmp_path))]) == 0
    root = tmp_path / "results" / "g"
    assert not (root / "journal.jsonl").exists()  # nothing ran, nothing journaled
    jobs = _manifest(root)
    assert [(j["job_id"], j["params"]) for j in jobs] == [
        (f"{sid}_{rerun}.0-0", {"x": x}) for sid, x in enumerate([1, 2, 3]) for rerun in (0, 1)
    ]
    for job in jobs:  # launched "another way": as listed
        env = {**os.environ, **job["env"]}
        subprocess.run(job["argv"], cwd=job["cwd"], env=env, check=True)
        metrics = json.loads((Path(str(job["run_dir"])) / "metrics.json").read_text())
        assert metrics == {"loss": job["params"]["x"] * 2}
    assert main(["run", "config.json", "-q"]) == 0  # the generated dirs are out of its way
    assert len((root / "journal.jsonl").read_text().splitlines()) > 6


def test_generate_only_writes_the_patched_config_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    results = f"results_dir={str(tmp_path)!r}"
    argv = ["--generate-only", "examples/learning/config.yaml", results, "number_of_samples=2"]
    assert main(argv) == 0
    jobs = _manifest(tmp_path / "learning")
    assert len(jobs) == 2 * 2  # 2 reruns each
    for job in jobs:
        run_dir = Path(str(job["run_dir"]))
        main_config = json.loads((run_dir / "main_config.json").read_text())
        rl = json.loads(Path(main_config["rl_config"]).read_text())
        assert rl["optimizer"]["lr"] == job["params"]["config.rl_config.optimizer.lr"]
