"""Whole runs through the CLI with ``--launcher htcondor`` on the stand-in pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from hpoptim.state.storage import read_journal
from tests.conftest import FakeContainerRuntime
from tests.htcondor.conftest import FakeCondor
from tests.test_container_run import _config as container_config

pytestmark = pytest.mark.usefixtures("condor")

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
    "wait_for_go": (
        "Path(ctx['run_dir'], 'started').write_text(str(os.getpid()))\n"
        "go = Path(os.environ['TEST_GO_FILE'])\n"
        "while not go.exists(): time.sleep(0.05)\n"
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
        "launcher": "htcondor",
        "htcondor": {"bid": 10},
    }
    cfg.update(extra)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def events(results: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_journal(results / "journal.jsonl") if e["e"] == kind]


def wait_until(predicate: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def start_driver(config: Path, *args: str) -> subprocess.Popen[bytes]:
    with open(config.parent / "driver.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hpoptim", str(config), "-q", *args],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
        )


@pytest.mark.parametrize(
    ("behaviour", "extra", "job_states"),
    [
        pytest.param("ok", {"number_of_samples": 3, "n_reruns": 2}, ["completed"] * 6, id="reruns"),
        pytest.param("fail_first_attempt", {}, ["failed", "completed"], id="failed-then-retried"),
        pytest.param(
            "chained", {"training_iterations": 3}, ["resume", "resume", "completed"], id="chained"
        ),
    ],
)
def test_lifecycle_through_htcondor(
    tmp_path: Path, condor: FakeCondor, behaviour: str, extra: dict[str, Any], job_states: list[str]
) -> None:
    config = write_config(tmp_path, behaviour, **extra)
    assert main([str(config), "-q", "--launcher", "htcondor"]) == 0
    results = tmp_path / "results" / "s"
    jobs = pd.read_csv(results / "jobs.csv")
    assert sorted(jobs["status"]) == sorted(job_states)
    assert set(pd.read_csv(results / "settings.csv")["status"]) == {"complete"}
    n_batches = len(events(results, "native_ids"))  # one per submit() of the loop
    calls = condor.submit_calls()
    assert len(calls) <= n_batches  # jobs submitted together went out in one call
    assert {c["bid"] for c in calls} == {10}


@pytest.mark.parametrize(
    "died_before_journaling_ids",
    [pytest.param(False, id="ids-journaled"), pytest.param(True, id="died-before-journaling-ids")],
)
def test_killed_driver_resumes_without_submitting_twice(
    tmp_path: Path, condor: FakeCondor, died_before_journaling_ids: bool
) -> None:
    config = write_config(tmp_path, "wait_for_go", number_of_samples=3, n_jobs_per_iteration=3)
    results = tmp_path / "results" / "s"
    driver = start_driver(config)
    try:
        wait_until(lambda: events(results, "native_ids"), "the jobs' submission")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert len(condor.queue()) == 3  # the jobs live on without their driver
    if died_before_journaling_ids:
        journal = results / "journal.jsonl"
        lines = journal.read_text().splitlines(keepends=True)
        journal.write_text("".join(x for x in lines if json.loads(x)["e"] != "native_ids"))
    (tmp_path / "go").write_text("")
    assert main(["resume", str(results), "-q"]) == 0
    assert events(results, "abandoned") == []
    assert [e["state"] for e in events(results, "ended")] == ["completed"] * 3
    assert len(condor.submit_calls()) == 1  # one submission, sent once
    for started in results.glob("jobs/*/*/started"):
        assert len(started.read_text().split()) == 1


@pytest.mark.parametrize(
    ("signum", "code"),
    [
        pytest.param(signal.SIGINT, 130, id="ctrl-c"),
        pytest.param(signal.SIGTERM, 143, id="sigterm"),
    ],
)
def test_a_stopped_driver_leaves_nothing_queued(
    tmp_path: Path, condor: FakeCondor, signum: int, code: int
) -> None:
    config = write_config(tmp_path, "wait_for_go", number_of_samples=2, max_attempts=1)
    results = tmp_path / "results" / "s"
    driver = start_driver(config)
    try:
        wait_until(lambda: len(list(results.glob("jobs/*/*/started"))) == 2, "jobs to start")
        driver.send_signal(signum)
        assert driver.wait(timeout=60) == code
    finally:
        if driver.poll() is None:
            driver.kill()
    wait_until(lambda: condor.queue() == {}, "the queue to empty", 10)
    assert {a["JobStatus"] for a in condor.state()["history"]} == {3}  # removed


def test_overwrite_removes_the_previous_runs_jobs(tmp_path: Path, condor: FakeCondor) -> None:
    config = write_config(tmp_path, "wait_for_go", number_of_samples=2)
    results = tmp_path / "results" / "s"
    driver = start_driver(config)
    try:
        wait_until(lambda: events(results, "native_ids"), "the jobs' submission")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    old = set(condor.queue())
    assert len(old) == 2
    new_driver = start_driver(config, "--overwrite")
    try:
        wait_until(lambda: list(results.parent.glob("s.old-*")), "the old run's move")
        history = {f"{a['ClusterId']}.{a['ProcId']}": a for a in condor.state()["history"]}
        assert {history[n]["JobStatus"] for n in old} == {3}  # removed before the move
        (tmp_path / "go").write_text("")
        assert new_driver.wait(timeout=60) == 0
    finally:
        if new_driver.poll() is None:
            new_driver.kill()
    assert "stopped 2 htcondor job(s) of the previous run" in (tmp_path / "driver.log").read_text()
    assert [e["state"] for e in events(results, "ended")] == ["completed"] * 2


@pytest.mark.integration
def test_rosenbrock_example_runs_on_htcondor(tmp_path: Path, condor: FakeCondor) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hpoptim",
            str(REPO / "examples/rosenbrock/config.yaml"),
            f"results_dir={str(tmp_path)!r}",
            "number_of_samples=16",
            "--launcher",
            "htcondor",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = pd.read_csv(tmp_path / "rosenbrock" / "jobs.csv")
    assert len(jobs) == 16
    assert set(jobs["status"]) == {"completed"}
    assert len(condor.submit_calls()) < 16  # batches, not one call per job


def test_a_cluster_utils_htcondor_config_runs_without_ignored_warnings(
    tmp_path: Path, condor: FakeCondor, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "main.py").write_text(
        "import json, os\njson.dump({'loss': 1.0}, open(os.environ['HPOPTIM_METRICS_FILE'], 'w'))\n"
    )
    old = {
        "optimization_procedure_name": "cu",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "main.py",
        "cluster_requirements": {
            "request_cpus": 2,
            "request_gpus": 1,
            "memory_in_mb": 4096,
            "bid": 800,
            "cuda_requirement": 7.0,
            "gpu_memory_mb": 10000,
            "hostname_list": ["g1", "g2"],
            "concurrency_limit": 4,
            "extra_submission_options": {"+MaxRunningPrice": 100},
        },
        "optimization_setting": {
            "run_local": False,
            "metric_to_optimize": "loss",
            "minimize": True,
            "number_of_samples": 2,
            "n_jobs_per_iteration": 2,
        },
        "optimized_params": [{"param": "x", "distribution": "TruncatedNormal", "bounds": [0, 1]}],
        "optimizer_str": "cem_metaoptimizer",
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main([str(tmp_path / "old.json"), "-q"]) == 0  # condor_submit on PATH: htcondor
    assert "ignored" not in capfd.readouterr().err
    (description,) = (tmp_path / "results" / "cu" / "htcondor").glob("*.sub")
    text = description.read_text()
    assert (
        "requirements = CUDACapability >= 7.0 && GPUs_GlobalMemoryMb >= 10000 && "
        '(Machine == "g1" || Machine == "g2")'
    ) in text
    for line in (
        "request_gpus = 1",
        "request_memory = 4096",
        "concurrency_limits = user.hpoptim:2500",
    ):
        assert line in text
    assert "+MaxRunningPrice = 100" in text
    assert [c["bid"] for c in condor.submit_calls()] == [800]


@pytest.mark.integration
def test_chained_jobs_run_in_the_container_on_htcondor(
    tmp_path: Path, condor: FakeCondor, fake_container_runtime: FakeContainerRuntime
) -> None:
    config = container_config(tmp_path, fake_container_runtime.image)
    assert main([str(config), "-q", "--launcher", "htcondor"]) == 0
    jobs = pd.read_csv(tmp_path / "results" / "c" / "jobs.csv")
    assert sorted(jobs["exit_code"].tolist()) == [0, 0, 0, 3, 3, 3]
    calls = fake_container_runtime.calls()
    assert len(calls) == 6
    assert all(call["argv"][:2] == ["apptainer", "exec"] for call in calls)
    for run_dir in jobs["job_dir"]:
        assert (Path(run_dir) / "container.txt").read_text() == str(fake_container_runtime.image)
    assert len(condor.submit_calls()) <= 4  # the 3 first iterations went out together


def test_a_schedd_outage_beyond_the_tolerance_stops_the_run_resumably(
    tmp_path: Path, condor: FakeCondor
) -> None:
    config = write_config(
        tmp_path,
        "wait_for_go",
        number_of_samples=3,
        n_jobs_per_iteration=2,
        max_attempts=1,
        htcondor={"outage_tolerance_s": 1.0},
    )
    results = tmp_path / "results" / "s"
    driver = start_driver(config)
    try:
        wait_until(lambda: len(list(results.glob("jobs/*/*/started"))) == 2, "jobs to start")
        condor.inject("outage", value=300.0)  # ended below, once the driver gave up
        (tmp_path / "go").write_text("")  # the two end; the third cannot be submitted
        assert driver.wait(timeout=60) == 1
    finally:
        if driver.poll() is None:
            driver.kill()
    log = (tmp_path / "driver.log").read_text()
    assert "Failed to connect" in log
    settings = pd.read_csv(results / "settings.csv")
    assert (settings["status"] == "complete").sum() >= 1  # written before the driver stopped

    condor.inject("outage", value=0.0)  # the schedd answers again
    assert main(["resume", str(results), "-q"]) == 0
    assert [e["state"] for e in events(results, "ended")] == ["completed"] * 3
    assert sum(c["count"] for c in condor.submit_calls()) == 3  # nothing ran twice
