"""``hpoptim resume RUN --retry-failed``: after fixing the cause, only the failed
settings' failed jobs run again, in the same run, journaled."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hpoptim.cli import main

JOB = """\
import json, os, sys
p = json.load(open(sys.argv[-1]))
x = p["params"]["x"]
if x > 0.5 and not os.path.exists("fixed"):
    sys.exit("x > 0.5 needs the fix")
out = os.environ["HPOPTIM_METRICS_FILE"]
json.dump({"loss": x}, open(out + ".tmp", "w")); os.replace(out + ".tmp", out)
"""


@pytest.fixture
def failed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text(JOB)
    config = {
        "optimization_procedure_name": "r",
        "results_dir": "results",
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [
            {"param": "x", "distribution": "Discrete", "options": [0.2, 0.4, 0.6, 0.8]}
        ],
        "optimizer_str": "gridsearch",
        "number_of_samples": 4,
        "n_jobs_per_iteration": 2,
        "n_reruns": 2,
        "max_attempts": 1,
        "max_failed_fraction": 1.0,
        "metric_to_optimize": "loss",
        "minimize": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert main(["run", "config.json", "-q"]) == 0
    root = tmp_path / "results" / "r"
    settings = pd.read_csv(root / "settings.csv").set_index("setting_id")
    assert list(settings["status"]) == ["complete", "complete", "failed", "failed"]
    return root


def _jobs(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "jobs.csv").set_index("job_id")


def test_retry_failed_runs_only_the_failed_jobs_again(
    failed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _jobs(failed_run)
    assert len(before) == 8
    (failed_run.parent.parent / "fixed").touch()
    capsys.readouterr()
    assert main(["resume", str(failed_run), "--retry-failed", "-q"]) == 0
    assert "retrying the failed jobs of setting(s) 2, 3" in capsys.readouterr().err
    settings = pd.read_csv(failed_run / "settings.csv").set_index("setting_id")
    assert list(settings["status"]) == ["complete"] * 4
    assert list(settings["loss"]) == [0.2, 0.4, 0.6, 0.8]
    after = _jobs(failed_run)
    new = sorted(set(after.index) - set(before.index))
    assert new == ["2_0.0-1", "2_1.0-1", "3_0.0-1", "3_1.0-1"]  # new attempts, new dirs
    assert after.loc[before.index, "status"].tolist() == before["status"].tolist()
    journal = (failed_run / "journal.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in journal]
    assert [e["sids"] for e in events if e["e"] == "retry_failed"] == [[2, 3]]
    assert sum(e["e"] == "asked" for e in events) == 4  # the sampler was not asked again


def test_retry_failed_without_failures_runs_nothing(
    failed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (failed_run.parent.parent / "fixed").touch()
    assert main(["resume", str(failed_run), "--retry-failed", "-q"]) == 0
    n_jobs = len(_jobs(failed_run))
    capsys.readouterr()
    assert main(["resume", str(failed_run), "--retry-failed", "-q"]) == 0
    captured = capsys.readouterr()
    assert "no setting failed; nothing to retry" in captured.err
    assert "already complete" in captured.out
    assert len(_jobs(failed_run)) == n_jobs


def test_without_retry_failed_a_finished_run_is_left_as_it_is(
    failed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (failed_run.parent.parent / "fixed").touch()
    assert main(["resume", str(failed_run), "-q"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert len(_jobs(failed_run)) == 8
