"""hpoptim status / ls on a run whose driver is alive, and after it was SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hpoptim.cli import main
from hpoptim.results.status import RunState, _state
from hpoptim.state.storage import LockHolder, read_journal

# x == 0 fails at once; the others wait until the test creates the file "release".
JOB = """\
import os, time
from hpoptim import job
x = job.get_params()["x"]
if x == 0:
    raise ValueError("x=0 is broken")
while not os.path.exists("release"):
    time.sleep(0.02)
job.report({"loss": x})
"""


def _config(tmp_path: Path) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "s",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Discrete", "options": [0, 1, 2]}],
        "optimizer_str": "gridsearch",
        "number_of_samples": 3,
        "n_jobs_per_iteration": 3,
        "metric_to_optimize": "loss",
        "minimize": True,
        "max_attempts": 1,
        "max_failed_fraction": 1.0,
        "local": {"n_parallel_jobs": 2},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _wait_for(
    journal: Path, proc: subprocess.Popen[bytes], done: Callable[[list[dict[str, Any]]], bool]
) -> None:
    """Block until the journal holds the awaited events (or the driver died)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if done(list(read_journal(journal))):
            return
        assert proc.poll() is None, "the driver ended early"
        time.sleep(0.02)
    pytest.fail("the awaited journal events never came")


def _two_started_after_failure(events: list[dict[str, Any]]) -> bool:
    failed = any(e["e"] == "ended" for e in events)
    started = {j for e in events if e["e"] == "native_ids" for j, n in e["ids"].items() if n}
    ended = {e["job"] for e in events if e["e"] == "ended"}
    return failed and len(started - ended) == 2


def test_status_of_a_live_then_killed_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "results" / "s"
    driver = subprocess.Popen(
        [sys.executable, "-m", "hpoptim", str(_config(tmp_path)), "-q"], cwd=tmp_path
    )
    try:
        _wait_for(root / "journal.jsonl", driver, _two_started_after_failure)
        assert main(["status", str(root)]) == 0
        live = capsys.readouterr().out
        assert main(["ls", str(tmp_path / "results")]) == 0
        listed = capsys.readouterr().out
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert main(["status", str(root)]) == 0
    dead = capsys.readouterr().out
    (tmp_path / "release").touch()  # the orphaned jobs finish by themselves

    assert f"{root}: running" in live
    assert f"driver running: pid {driver.pid} on {socket.gethostname()}" in live
    assert "settings: 0 complete, 1 failed, 2 running, 0 queued; 1 of 3 finished" in live
    assert "ValueError: x=0 is broken" in live
    assert '|     raise ValueError("x=0 is broken")' in live  # the last lines of stderr
    pids = [
        j
        for e in read_journal(root / "journal.jsonl")
        if e["e"] == "native_ids"
        for j in e["ids"].values()
        if j
    ]
    for job_id, pid in [("1_0.0-0", pids[1]), ("2_0.0-0", pids[2])]:
        assert f"  {job_id}: setting {job_id[0]}, rerun 0, iteration 0, attempt 0, age " in live
        assert f"id {pid}" in live
    assert "running jobs:" in live
    assert listed.splitlines()[1].split()[:4] == ["s", "running", "1/3", "1"]

    assert f"{root}: stopped (its driver ended without a word" in dead
    assert f"no driver is running (last driver: pid {driver.pid} on " in dead
    assert "jobs in flight when the driver stopped:" in dead
    assert "ValueError: x=0 is broken" in dead

    assert main(["resume", str(root), "-q"]) == 0
    capsys.readouterr()
    assert main(["ls", str(tmp_path / "results")]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:4] == ["s", "complete", "3/3", "1"]
    assert row[4:6] == ["loss", "1"]


@pytest.mark.parametrize(
    ("events", "driver", "state"),
    [
        pytest.param([{"e": "run_started"}], LockHolder(1), RunState.RUNNING, id="held"),
        pytest.param(
            [{"e": "run_started"}, {"e": "finished"}], None, RunState.COMPLETE, id="complete"
        ),
        pytest.param(
            [{"e": "stopped", "reason": "3 of 5 failed", "cause": "failures"}],
            None,
            RunState.FAILED,
            id="failed",
        ),
        pytest.param(  # the cause, not the text, says why
            [{"e": "stopped", "reason": "max_failed_fraction ...", "cause": "setup_error"}],
            None,
            RunState.STOPPED,
            id="setup-error-mentioning-the-fraction",
        ),
        pytest.param(  # a newer version's cause
            [{"e": "stopped", "reason": "out of quota", "cause": "quota"}],
            None,
            RunState.STOPPED,
            id="unknown-cause",
        ),
        pytest.param(  # a journal written before `stopped` had its cause
            [{"e": "stopped", "reason": "3 of 5 ... (more than max_failed_fraction=0.5)"}],
            None,
            RunState.FAILED,
            id="failed-in-an-older-journal",
        ),
        pytest.param(
            [{"e": "stopped", "reason": "interrupted"}], None, RunState.STOPPED, id="interrupted"
        ),
        pytest.param(
            [{"e": "stopped", "reason": "interrupted"}, {"e": "driver_started"}],
            None,
            RunState.STOPPED,
            id="resumed-then-killed",
        ),
    ],
)
def test_run_state(
    events: list[dict[str, Any]], driver: LockHolder | None, state: RunState
) -> None:
    assert _state(events, driver)[0] is state


def test_status_of_no_run_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", str(tmp_path)]) == 2
    assert "holds no hpoptim run" in capsys.readouterr().err
    assert main(["ls", str(tmp_path / "nope")]) == 2
    assert os.fspath(tmp_path / "nope") in capsys.readouterr().err
