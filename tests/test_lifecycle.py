"""Job lifecycle through whole runs: reruns, retries, chained iterations, timeouts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from hpoptim.state.storage import read_journal

HEADER = """\
import json, os, signal, sys, time
from pathlib import Path
from hpoptim import job
p = job.load()
ctx, params = p["job"], p["params"]
"""

BEHAVIOURS = {
    "ok": "job.report({'loss': params['x']})",
    "resume_then_ok": (
        "job.report({'loss': params['x'] + ctx['iteration']})\n"
        "if ctx['iteration'] + 1 < ctx['n_iterations']: job.exit_for_resume()"
    ),
    "raise": "raise RuntimeError('broken training step')",
    "exit2_before_report": "sys.exit(2)",
    "exit2_after_report": "job.report({'loss': 1.0}); sys.exit(2)",
    "sigkill_self": "os.kill(os.getpid(), signal.SIGKILL)",
    "hang": "time.sleep(60)",
    "no_metrics": "pass",
    "corrupt_metrics": "Path(os.environ['HPOPTIM_METRICS_FILE']).write_text('{not json')",
    "nan_metric": "Path(os.environ['HPOPTIM_METRICS_FILE']).write_text('{\"loss\": NaN}')",
    "string_metric": (
        'Path(os.environ[\'HPOPTIM_METRICS_FILE\']).write_text(\'{"loss": 1, "tag": "a"}\')'
    ),
    "metrics_fifo": "os.mkfifo(os.environ['HPOPTIM_METRICS_FILE'])",
    "metrics_dev_zero": "os.symlink('/dev/zero', os.environ['HPOPTIM_METRICS_FILE'])",
    "fail_first_attempt": (
        "if ctx['attempt'] == 0: sys.exit(1)\njob.report({'loss': params['x']})"
    ),
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # run_in_working_dir: jobs run from the current directory


def _run(tmp_path: Path, behaviour: str, **extra: Any) -> tuple[int, Path]:
    (tmp_path / "job.py").write_text(HEADER + BEHAVIOURS[behaviour] + "\n")
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "l",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 1,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "max_attempts": 2,
        "max_failed_fraction": 1.0,
        "seed": 5,
        "local": {"n_parallel_jobs": 2},
    }
    cfg.update(extra)
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    return main([str(tmp_path / "c.json"), "-q"]), tmp_path / "results" / "l"


@pytest.mark.parametrize(
    ("behaviour", "extra", "setting_status", "job_states", "reason"),
    [
        pytest.param("ok", {}, "complete", ["completed"], "", id="ok"),
        pytest.param(
            "resume_then_ok",
            {"training_iterations": 4},
            "complete",
            ["resume", "resume", "resume", "completed"],
            "",
            id="resume-3-times",
        ),
        pytest.param(
            "resume_then_ok",
            {"training_iterations": 1},
            "complete",
            ["completed"],
            "",
            id="one-iteration",
        ),
        pytest.param("raise", {}, "failed", ["failed", "failed"], "exit code 1", id="raise"),
        pytest.param(
            "exit2_before_report",
            {},
            "failed",
            ["failed"] * 2,
            "exit code 2",
            id="exit2-before-report",
        ),
        pytest.param(
            "exit2_after_report",
            {},
            "failed",
            ["failed"] * 2,
            "exit code 2",
            id="exit2-after-report",
        ),
        pytest.param("sigkill_self", {}, "failed", ["failed"] * 2, "signal 9", id="sigkill"),
        pytest.param(
            "hang",
            {"job_timeout_min": 0.02, "signal_lead_s": 0.3},
            "failed",
            ["timeout"] * 2,
            "timeout",
            id="hang-past-timeout",
        ),
        pytest.param(
            "no_metrics", {}, "failed", ["failed"] * 2, "no metrics file", id="no-metrics"
        ),
        pytest.param(
            "corrupt_metrics",
            {},
            "failed",
            ["failed"] * 2,
            "not valid JSON",
            id="corrupt-metrics",
        ),
        pytest.param("nan_metric", {}, "failed", ["failed"] * 2, "'loss' is NaN", id="nan-metric"),
        pytest.param(
            "string_metric",
            {},
            "failed",
            ["failed"] * 2,
            "'tag' is a string ('a')",
            id="string-metric",
        ),
        pytest.param("metrics_fifo", {}, "failed", ["failed"] * 2, "(a FIFO)", id="metrics-fifo"),
        pytest.param(
            "metrics_dev_zero",
            {},
            "failed",
            ["failed"] * 2,
            "(a character device)",
            id="metrics-dev-zero",
        ),
        pytest.param(
            "fail_first_attempt", {}, "complete", ["failed", "completed"], "", id="retry-succeeds"
        ),
    ],
)
def test_job_behaviour_ends_in_the_right_state(
    tmp_path: Path,
    behaviour: str,
    extra: dict[str, Any],
    setting_status: str,
    job_states: list[str],
    reason: str,
) -> None:
    code, root = _run(tmp_path, behaviour, **extra)
    assert code == (0 if setting_status == "complete" else 1)  # a run with no success fails
    jobs = pd.read_csv(root / "jobs.csv", keep_default_na=False)
    assert jobs["status"].tolist() == job_states
    if reason:  # each failed attempt says why, in its own row
        assert all(reason in r for r in jobs["reason"])
    settings = pd.read_csv(root / "settings.csv", keep_default_na=False)
    assert settings["status"].tolist() == [setting_status]
    if reason:
        assert reason in settings["reason"][0]
    names = [Path(d).name for d in jobs["job_dir"]]
    if behaviour == "resume_then_ok":
        assert names == [f"run_0.{i}-0" for i in range(len(job_states))]
        assert settings["n_iterations"][0] == len(job_states)
        assert settings["loss"][0] == pytest.approx(jobs["x"][0] + len(job_states) - 1)
    else:
        assert names == [f"run_0.0-{a}" for a in range(len(job_states))]
    assert all((Path(d) / "stderr.log").exists() for d in jobs["job_dir"])  # attempts kept


def test_iteration_sees_the_previous_iteration_directory(tmp_path: Path) -> None:
    code, root = _run(tmp_path, "resume_then_ok", training_iterations=3)
    assert code == 0
    contexts = [
        json.loads(p.read_text())["job"] for p in sorted(root.glob("jobs/0/run_*/params.json"))
    ]
    assert [c["iteration"] for c in contexts] == [0, 1, 2]
    assert contexts[0]["previous_run_dir"] is None
    assert contexts[1]["previous_run_dir"] == contexts[0]["run_dir"]
    assert contexts[2]["previous_run_dir"] == contexts[1]["run_dir"]
    assert len({c["seed"] for c in contexts}) == 1  # one seed through the chain


def test_reruns_give_mean_std_and_one_tell_per_setting(tmp_path: Path) -> None:
    body = "job.report({'loss': params['x'] + ctx['rerun']})"
    BEHAVIOURS["by_rerun"] = body
    code, root = _run(tmp_path, "by_rerun", n_reruns=3, number_of_samples=4)
    assert code == 0
    jobs = pd.read_csv(root / "jobs.csv")
    settings = pd.read_csv(root / "settings.csv")
    assert len(jobs) == 12
    assert len(settings) == 4
    for _, row in settings.iterrows():
        assert row["loss"] == pytest.approx(row["x"] + 1.0)  # mean of x+0, x+1, x+2
        assert row["loss_std"] == pytest.approx((2 / 3) ** 0.5)
        assert row["n_ok"] == 3
    seeds = {json.loads(p.read_text())["job"]["seed"] for p in root.glob("jobs/0/*/params.json")}
    assert len(seeds) == 3  # each rerun its own seed
    told = [e for e in read_journal(root / "journal.jsonl") if e["e"] == "setting_finished"]
    assert sorted(e["sid"] for e in told) == [0, 1, 2, 3]


def test_timeout_signal_lets_the_job_checkpoint_and_resume(tmp_path: Path) -> None:
    BEHAVIOURS["checkpointing"] = (
        "def save():\n"
        "    Path(ctx['run_dir'], 'ckpt').write_text(str(ctx['iteration']))\n"
        "    job.report({'loss': 1.0 + ctx['iteration']})\n"
        "job.install_resume_handler(save)\n"
        "if ctx['iteration'] == 0: time.sleep(60)\n"
        "job.report({'loss': 0.5})\n"
    )
    code, root = _run(
        tmp_path, "checkpointing", training_iterations=2, job_timeout_min=0.05, signal_lead_s=2.0
    )
    assert code == 0
    jobs = pd.read_csv(root / "jobs.csv")
    assert jobs["status"].tolist() == ["resume", "completed"]
    assert (Path(jobs["job_dir"][0]) / "ckpt").read_text() == "0"
