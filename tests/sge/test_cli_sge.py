"""Whole runs through the CLI on the real Grid Engine: the same loop as locally."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from hpoptim.state.storage import read_journal

pytestmark = pytest.mark.sge

REPO = Path(__file__).resolve().parents[2]
HEADER = """\
import json, os, signal, sys, time
from pathlib import Path
from hpoptim import job
p = job.load()
ctx, params = p["job"], p["params"]
"""
BEHAVIOURS = {
    "ok": "job.report({'loss': params['x']})",
    "fail_first_attempt": "if ctx['attempt'] == 0: sys.exit(1)\njob.report({'loss': params['x']})",
    "chained": (
        "prev = job.previous_run_dir()\n"
        "n = 0 if prev is None else int((prev / 'ckpt').read_text())\n"
        "Path(ctx['run_dir'], 'ckpt').write_text(str(n + 1))\n"
        "job.report({'loss': params['x'] + n})\n"
        "if ctx['iteration'] + 1 < ctx['n_iterations']: job.exit_for_resume()"
    ),
    # iteration 0 runs into the time limit and checkpoints on the signal; 1 finishes
    "time_limit": (
        "def save():\n"
        "    Path(ctx['run_dir'], 'ckpt').write_text('saved at the limit')\n"
        "job.install_resume_handler(save)\n"
        "if ctx['iteration'] == 0:\n"
        "    time.sleep(600)\n"
        "assert (job.previous_run_dir() / 'ckpt').read_text() == 'saved at the limit'\n"
        "job.report({'loss': 1.0})"
    ),
    # waits for a go-file next to the results (so it can be killed or deleted meanwhile)
    "wait_for_go": (
        "Path(ctx['run_dir'], 'started').write_text(str(os.getpid()))\n"
        "Path(ctx['run_dir'], 'starts').open('a').write('x')\n"
        "go = Path(os.environ['TEST_GO_FILE'])\n"
        "while not go.exists(): time.sleep(0.2)\n"
        "job.report({'loss': params['x']})"
    ),
}


def write_config(tmp_path: Path, behaviour: str, **extra: Any) -> Path:
    (tmp_path / "job.py").write_text(HEADER + BEHAVIOURS[behaviour] + "\n")
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "s",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 1,
        "n_jobs_per_iteration": 4,
        "metric_to_optimize": "loss",
        "minimize": True,
        "max_attempts": 2,
        "max_failed_fraction": 1.0,
        "seed": 3,
        "environment": {"TEST_GO_FILE": str(tmp_path / "go")},
        "launcher": "sge",
        "sge": {"poll_interval_s": 0.5, "max_poll_interval_s": 2.0},
    }
    cfg.update(extra)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def delete_leftovers(tmp_path: Path) -> Iterator[None]:
    """qdel whatever jobs the runs under ``tmp_path`` still have when the test ends."""
    yield
    names = [json.loads(p.read_text())["name"] for p in tmp_path.glob("results/*/sge/*.json")]
    if names:
        subprocess.run(["qdel", *names], capture_output=True, check=False)


def events(results: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_journal(results / "journal.jsonl") if e["e"] == kind]


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def queued_tasks(results: Path) -> list[str]:
    """Tasks (``JOB.TASK``) of the run in ``results`` that are still in qstat."""
    names = {json.loads(p.read_text())["name"] for p in (results / "sge").glob("*.json")}
    from hpoptim.launchers.sge.states import parse_qstat

    out = subprocess.run(
        ["qstat", "-xml", "-g", "d"], capture_output=True, text=True, check=True
    ).stdout
    return sorted(n for n, task in parse_qstat(out).items() if task.name in names)


def start_driver(config: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m hpoptim CONFIG`` as a separate process; its stderr goes to driver.log."""
    with open(config.parent / "driver.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hpoptim", str(config), "-q", *args],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


@pytest.mark.parametrize(
    ("behaviour", "extra", "job_states"),
    [
        pytest.param("ok", {"number_of_samples": 3, "n_reruns": 2}, ["completed"] * 6, id="reruns"),
        pytest.param("fail_first_attempt", {}, ["failed", "completed"], id="failed-then-retried"),
        pytest.param(
            "chained",
            {"training_iterations": 3},
            ["resume", "resume", "completed"],
            id="chained-3-iterations",
        ),
    ],
)
def test_lifecycle_through_grid_engine(
    tmp_path: Path, behaviour: str, extra: dict[str, Any], job_states: list[str]
) -> None:
    config = write_config(tmp_path, behaviour, **extra)
    assert main([str(config), "-q", "--launcher", "sge"]) == 0
    results = tmp_path / "results" / "s"
    jobs = pd.read_csv(results / "jobs.csv")
    assert sorted(jobs["status"]) == sorted(job_states)
    assert set(pd.read_csv(results / "settings.csv")["status"]) == {"complete"}
    scripts = list((results / "sge").glob("*.sh"))
    n_batches = len({(e["sid"], e["it"], e["att"]) for e in events(results, "submitted")})
    assert len(scripts) <= n_batches  # jobs started together went out as one array job
    if behaviour == "chained":
        last = jobs.sort_values("job_dir")["job_dir"].iloc[-1]
        assert (Path(last) / "ckpt").read_text() == "3"


def test_time_limit_signal_checkpoints_and_resumes(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "time_limit",
        training_iterations=2,
        max_attempts=1,
        resources={"time_limit_min": 0.1, "signal_lead_s": 3},
    )
    start = time.monotonic()
    assert main([str(config), "-q"]) == 0
    assert time.monotonic() - start < 60
    results = tmp_path / "results" / "s"
    ended = events(results, "ended")
    assert [e["state"] for e in ended] == ["resume", "completed"]
    assert ended[0]["exit_code"] == 3


@pytest.mark.usefixtures("delete_leftovers")
def test_job_deleted_with_qdel_is_seen_as_cancelled(tmp_path: Path) -> None:
    config = write_config(tmp_path, "wait_for_go", max_attempts=1)
    driver = start_driver(config)
    results = tmp_path / "results" / "s"
    try:
        wait_until(lambda: events(results, "native_ids"), 60, "the job's submission")
        native = next(iter(events(results, "native_ids")[0]["ids"].values()))
        wait_until(lambda: list(results.glob("jobs/0/*/started")), 60, "the job to start")
        subprocess.run(["qdel", native], check=True, capture_output=True)
        assert driver.wait(timeout=60) == 1  # its only setting failed: the run failed
    finally:
        if driver.poll() is None:
            driver.kill()
    ended = events(results, "ended")
    assert [(e["state"], e["reason"]) for e in ended] == [("cancelled", "deleted with qdel")]
    assert queued_tasks(results) == []


@pytest.mark.usefixtures("delete_leftovers")
@pytest.mark.parametrize(
    "died_before_journaling_ids",
    [
        pytest.param(False, id="ids-journaled"),
        pytest.param(True, id="died-between-qsub-and-journal"),
    ],
)
def test_killed_driver_resumes_without_submitting_twice(
    tmp_path: Path, died_before_journaling_ids: bool
) -> None:
    config = write_config(tmp_path, "wait_for_go", number_of_samples=3, n_jobs_per_iteration=3)
    results = tmp_path / "results" / "s"
    driver = start_driver(config)
    try:
        wait_until(lambda: events(results, "native_ids"), 60, "the jobs' submission")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    submitted = {e["job"] for e in events(results, "submitted")}
    assert len(submitted) == 3
    assert len(queued_tasks(results)) == 3  # the jobs live on without their driver
    if died_before_journaling_ids:  # as if killed right after qsub: found by job name
        journal = results / "journal.jsonl"
        lines = journal.read_text().splitlines(keepends=True)
        journal.write_text("".join(x for x in lines if json.loads(x)["e"] != "native_ids"))
    (tmp_path / "go").write_text("")
    assert main(["resume", str(results), "-q"]) == 0
    assert {e["job"] for e in events(results, "submitted")} == submitted
    assert events(results, "abandoned") == []
    assert [e["state"] for e in events(results, "ended")] == ["completed"] * 3
    assert len(list((results / "sge").glob("*.sh"))) == 1  # one array job, sent once
    assert sorted(p.read_text() for p in results.glob("jobs/*/*/starts")) == ["x"] * 3


@pytest.mark.usefixtures("delete_leftovers")
def test_ctrl_c_leaves_nothing_in_qstat(tmp_path: Path) -> None:
    config = write_config(tmp_path, "wait_for_go", number_of_samples=2, max_attempts=1)
    results = tmp_path / "results" / "s"
    driver = start_driver(config)
    try:
        wait_until(lambda: len(list(results.glob("jobs/*/*/started"))) == 2, 60, "jobs to start")
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130
    finally:
        if driver.poll() is None:
            driver.kill()
    assert queued_tasks(results) == []


@pytest.mark.integration
def test_rosenbrock_example_runs_on_grid_engine(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpoptim",
            str(REPO / "examples" / "rosenbrock" / "config.yaml"),
            f"results_dir={str(tmp_path)!r}",
            "number_of_samples=4",
            "+sge.poll_interval_s=0.5",
            "--launcher",
            "sge",
            "-q",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    settings = pd.read_csv(tmp_path / "rosenbrock" / "settings.csv")
    assert len(settings) == 4
    assert set(settings["status"]) == {"complete"}
    assert list((tmp_path / "rosenbrock" / "sge").glob("*.sh"))  # it ran on Grid Engine


@pytest.mark.usefixtures("delete_leftovers")
def test_overwrite_deletes_the_previous_runs_jobs(tmp_path: Path) -> None:
    config = write_config(tmp_path, "wait_for_go", number_of_samples=2)
    results = tmp_path / "results" / "s"
    driver = start_driver(config)
    try:
        wait_until(lambda: events(results, "native_ids"), 60, "the jobs' submission")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    old_names = {json.loads(p.read_text())["name"] for p in results.glob("sge/*.json")}
    assert len(queued_tasks(results)) == 2  # they live on without their driver
    new_driver = subprocess.Popen(
        [sys.executable, "-m", "hpoptim", str(config), "-q", "--overwrite"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # the old jobs are deleted before the old run is moved aside
        wait_until(lambda: list(results.parent.glob("s.old-*")), 120, "the old run's move")
        (tmp_path / "go").write_text("")
        _, err = new_driver.communicate(timeout=120)
        assert new_driver.returncode == 0, err
    finally:
        if new_driver.poll() is None:
            new_driver.kill()
    assert "stopped 1 sge job(s) of the previous run" in err
    [backup] = (tmp_path / "results").glob("s.old-*")
    assert queued_tasks(backup) == []
    new_names = {json.loads(p.read_text())["name"] for p in results.glob("sge/*.json")}
    assert old_names.isdisjoint(new_names)
    assert [e["state"] for e in events(results, "ended")] == ["completed"] * 2
