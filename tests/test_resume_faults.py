"""Fault injection: SIGKILL the driver right after chosen journal events, resume, lose nothing.

Each kill point is "the N-th event of kind K has appeared in journal.jsonl", for
every kind the driver journals around a job (asked, submitted, native_ids, ended,
setting_finished), so the kills land between every pair of steps of the loop
without depending on timing. After half of the kills the test waits until every
job that had started has ended, so their results were recorded while no driver
ran; after the other half the driver is resumed at once, while jobs still run.

Every job appends its pid to ``starts`` in its run directory, so a job started
twice, or a result computed again instead of adopted, is seen.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.launchers.node import read_exit_file, read_process_file
from hpoptim.state.storage import read_journal

REPO = Path(__file__).resolve().parent.parent
N_SAMPLES = 16
N_RERUNS = 2
N_ITERATIONS = 2
# Jobs of these settings fail on the first attempt that starts of their first iteration.
FLAKY = {sid for sid in range(N_SAMPLES) if sid % 4 == 1}
JOB = f"""\
import json, os, random, sys, time
p = json.load(open(sys.argv[-1]))
ctx = p["job"]
with open(os.path.join(ctx["run_dir"], "starts"), "a") as fh:
    fh.write(f"{{os.getpid()}}\\n")
time.sleep(random.Random(ctx["seed"] + ctx["iteration"]).uniform(0.05, 0.4))
if ctx["setting_id"] in {sorted(FLAKY)} and ctx["iteration"] == 0:
    marker = os.path.join(ctx["setting_dir"], f"failed_{{ctx['rerun']}}")
    try:  # the first attempt that starts fails
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        sys.exit(1)
    except FileExistsError:
        pass
path = ctx["metrics_file"]
json.dump({{"loss": p["params"]["x"] ** 2 + ctx["rerun"]}}, open(path + ".tmp", "w"))
os.replace(path + ".tmp", path)
sys.exit(3 if ctx["iteration"] + 1 < ctx["n_iterations"] else 0)
"""
KILL_AFTER = ("asked", "submitted", "native_ids", "ended", "setting_finished")


def events(journal: Path) -> list[dict[str, Any]]:
    return list(read_journal(journal))


def kill_after(proc: subprocess.Popen[bytes], journal: Path, kind: str, nth: int) -> bool:
    """SIGKILL ``proc`` once the ``nth`` event of ``kind`` is in the journal.

    Returns False if the driver ended first.
    """
    while proc.poll() is None:
        if sum(1 for e in events(journal) if e["e"] == kind) >= nth:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    return False


def run_dirs(results: Path) -> Iterator[Path]:
    return (p.parent for p in (results / "jobs").rglob("params.json"))


def wait_until_started_jobs_ended(results: Path) -> list[Path]:
    """Wait until every job that started has its exit status recorded; return those dirs."""
    deadline = time.monotonic() + 60.0
    while True:
        started = [d for d in run_dirs(results) if (d / "starts").exists()]
        running = [d for d in started if read_exit_file(d) is None]
        if not running:
            return started
        assert time.monotonic() < deadline, f"jobs in {running} never ended"
        time.sleep(0.02)


@pytest.mark.integration
def test_sigkill_after_journal_events_then_resume_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB)
    config = {
        "optimization_procedure_name": "f",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "TruncatedNormal", "bounds": [-1, 1]}],
        "optimizer_str": "cem_metaoptimizer",
        "optimizer_settings": {"num_jobs_in_elite": 3},
        "number_of_samples": N_SAMPLES,
        "n_jobs_per_iteration": 3,
        "n_reruns": N_RERUNS,
        "training_iterations": N_ITERATIONS,
        "max_attempts": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 3,
        "local": {"n_parallel_jobs": 3},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    results = tmp_path / "results" / "f"
    journal = results / "journal.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "hpoptim", "config.json"]
    rng = random.Random(20261130)
    kills = 0
    adopted: set[str] = set()  # run dirs whose job ended while no driver ran
    seen: dict[int, object] = {}
    for round_ in range(3 * len(KILL_AFTER)):
        kind = KILL_AFTER[round_ % len(KILL_AFTER)]
        nth = sum(1 for e in events(journal) if e["e"] == kind) + rng.randint(1, 3)
        if kind in ("asked", "setting_finished") and nth >= N_SAMPLES:
            kind, nth = "ended", sum(1 for e in events(journal) if e["e"] == "ended") + 1
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not kill_after(proc, journal, kind, nth):
            break
        kills += 1
        if round_ % 2:
            log = events(journal)
            dirs = {e["job"]: e["dir"] for e in log if e["e"] == "submitted"}
            seen_ending = {dirs[e["job"]] for e in log if e["e"] == "ended"}
            ended_meanwhile = {str(d) for d in wait_until_started_jobs_ended(results)}
            adopted |= ended_meanwhile - seen_ending
        now = {e["sid"]: e["result"] for e in events(journal) if e["e"] == "setting_finished"}
        assert all(now[sid] == result for sid, result in seen.items()), "a result changed"
        seen = now
    assert kills >= 10, f"only {kills} kills happened; the run finished too early"
    final = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert final.returncode == 0, final.stderr

    log = events(journal)
    asked = [e for e in log if e["e"] == "asked"]
    assert sorted(e["sid"] for e in asked) == list(range(N_SAMPLES))  # each asked once
    proposals = [json.dumps(e["params"], sort_keys=True) for e in asked]
    assert len(set(proposals)) == N_SAMPLES  # a resumed sampler does not propose again
    finished = [e["sid"] for e in log if e["e"] == "setting_finished"]
    assert sorted(finished) == list(range(N_SAMPLES))  # ... and finished once

    submitted = {e["job"]: e for e in log if e["e"] == "submitted"}
    assert len(submitted) == sum(1 for e in log if e["e"] == "submitted")  # ids never reused
    dirs = [e["dir"] for e in submitted.values()]
    assert len(dirs) == len(set(dirs))  # ... nor their directories
    ended = Counter(e["job"] for e in log if e["e"] == "ended")
    abandoned = {e["job"] for e in log if e["e"] == "abandoned"}
    starts = {
        job: len(Path(e["dir"], "starts").read_text().split())
        if Path(e["dir"], "starts").exists()
        else 0
        for job, e in submitted.items()
    }
    assert max(starts.values()) == 1  # no job dir ran twice
    for job, n in starts.items():
        if n:  # a started job is followed or adopted, never abandoned and run again
            assert job not in abandoned, job
            assert ended[job] == 1, job
        else:  # a job never started was given up and started afresh elsewhere
            assert job in abandoned, job
    assert adopted, "no job ended while the driver was dead"
    assert {submitted[j]["dir"] for j in ended} >= adopted  # their ends were adopted

    # every (setting, rerun, iteration) computed exactly once, plus the planned failures
    runs: Counter[tuple[int, int, int]] = Counter()
    failures: Counter[tuple[int, int, int]] = Counter()
    states = {e["job"]: e for e in log if e["e"] == "ended"}
    for job, e in states.items():
        key = (submitted[job]["sid"], submitted[job]["rerun"], submitted[job]["it"])
        if e["state"] in ("completed", "resume"):
            runs[key] += 1
        else:
            assert (e["state"], e["exit_code"]) == ("failed", 1), e
            failures[key] += 1
    everything = {(s, r, i) for s in range(N_SAMPLES) for r in range(N_RERUNS) for i in (0, 1)}
    assert runs == dict.fromkeys(everything, 1)
    assert failures == {(s, r, 0): 1 for s in FLAKY for r in range(N_RERUNS)}

    settings = pd.read_csv(results / "settings.csv")
    assert sorted(settings["setting_id"]) == list(range(N_SAMPLES))
    assert set(settings["status"]) == {"complete"}
    assert (settings["n_ok"] == N_RERUNS).all()
    for run_dir in run_dirs(results):  # nothing is left running
        who = read_process_file(run_dir)
        assert who is None or not (who.job.is_alive() or who.supervisor.is_alive()), run_dir


HANGS = """\
import json, os, sys, time
ctx = json.load(open(sys.argv[-1]))["job"]
open(os.path.join(ctx["run_dir"], "started"), "w").close()
time.sleep(600)
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("signum", "code"),
    [pytest.param(signal.SIGINT, 130, id="ctrl-c"), pytest.param(signal.SIGTERM, 143, id="term")],
)
def test_stopping_the_driver_stops_its_local_jobs(
    tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    (tmp_path / "job.py").write_text(HANGS)
    config = {
        "optimization_procedure_name": "f",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [-1, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 4,
        "n_jobs_per_iteration": 3,
        "metric_to_optimize": "loss",
        "minimize": True,
        "local": {"n_parallel_jobs": 3},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    results = tmp_path / "results" / "f"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpoptim", "config.json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60.0
        while len([d for d in run_dirs(results) if (d / "started").exists()]) < 3:
            assert time.monotonic() < deadline, "the jobs never started"
            time.sleep(0.02)
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
    finally:
        proc.kill()
        proc.wait()
    supervised = [read_process_file(d) for d in run_dirs(results)]
    assert len(supervised) == 3
    for who in supervised:
        assert who is not None
        assert not who.job.is_alive()
    # ended by the cancel's SIGTERM, and recorded so
    assert [read_exit_file(d) for d in run_dirs(results)] == [(128 + signal.SIGTERM, False)] * 3
