"""Fault injection: SIGKILL the driver at many random points, resume, lose nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hpoptim.state.storage import read_journal

REPO = Path(__file__).resolve().parent.parent
JOB = """\
import json, os, random, sys, time
p = json.load(open(sys.argv[-1]))
ctx = p["job"]
time.sleep(random.Random(ctx["seed"] + ctx["iteration"]).uniform(0.0, 0.15))
path = os.environ["HPOPTIM_METRICS_FILE"]
json.dump({"loss": p["params"]["x"] ** 2 + ctx["rerun"]}, open(path + ".tmp", "w"))
os.replace(path + ".tmp", path)
sys.exit(3 if ctx["iteration"] + 1 < ctx["n_iterations"] else 0)
"""


def _finished(journal: Path) -> dict[int, dict[str, object]]:
    return {e["sid"]: e["result"] for e in read_journal(journal) if e["e"] == "setting_finished"}


@pytest.mark.integration
def test_sigkill_at_random_points_then_resume_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB)
    n_samples = 24
    config = {
        "optimization_procedure_name": "f",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "TruncatedNormal", "bounds": [-1, 1]}],
        "optimizer_str": "cem_metaoptimizer",
        "optimizer_settings": {"num_jobs_in_elite": 3},
        "number_of_samples": n_samples,
        "n_jobs_per_iteration": 3,
        "n_reruns": 2,
        "training_iterations": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 3,
        "local": {"n_parallel_jobs": 2},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    journal = tmp_path / "results" / "f" / "journal.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "hpoptim", "config.json"]
    rng = random.Random(20261123)
    kills = 0
    seen: dict[int, dict[str, object]] = {}
    for _ in range(40):
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.2, 1.2))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        now = _finished(journal)
        assert all(now[sid] == result for sid, result in seen.items()), "a finished result changed"
        seen = now
        if any(e["e"] == "finished" for e in read_journal(journal)):
            break
    assert kills >= 10, f"only {kills} kills happened; the run finished too early"
    final = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr

    events = list(read_journal(journal))
    asked = [e["sid"] for e in events if e["e"] == "asked"]
    assert sorted(asked) == list(range(n_samples))  # each setting asked exactly once
    finished = [e["sid"] for e in events if e["e"] == "setting_finished"]
    assert sorted(finished) == list(range(n_samples))  # ... and finished exactly once
    submitted = [e["job"] for e in events if e["e"] == "submitted"]
    assert len(submitted) == len(set(submitted))  # job ids never reused
    dirs = [e["dir"] for e in events if e["e"] == "submitted"]
    assert len(dirs) == len(set(dirs))  # ... nor their directories
    settings = pd.read_csv(tmp_path / "results" / "f" / "settings.csv")
    assert sorted(settings["setting_id"]) == list(range(n_samples))
    assert set(settings["status"]) == {"complete"}
    assert (settings["n_ok"] == 2).all()
    failed_attempts = [
        e for e in events if e["e"] == "ended" and e["state"] not in ("completed", "resume")
    ]
    assert failed_attempts == []  # jobs in flight at a kill were restarted, not failed
