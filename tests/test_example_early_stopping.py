"""examples/early_stopping: settings stopped between chained iterations, end to end.

Real driver processes on the local launcher: the example's run against the same run
without early stopping, and a driver killed right after its first stop decision.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim import load_run
from hpoptim.cli import main
from hpoptim.state.storage import read_journal

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "examples" / "early_stopping" / "config.yaml"
N_SAMPLES = 8
N_RERUNS = 2
N_ITERATIONS = 9


def _hpoptim(results: Path, *overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpoptim",
            str(CONFIG),
            f"results_dir={str(results)!r}",
            f"number_of_samples={N_SAMPLES}",
            *overrides,
            "-q",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _run(results: Path, *overrides: str) -> Path:
    proc = _hpoptim(results, *overrides)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return results / "early_stopping"


def _events(root: Path) -> list[dict[str, Any]]:
    return list(read_journal(root / "journal.jsonl"))


def _check_stopped_settings_went_no_further(root: Path) -> pd.DataFrame:
    settings = pd.read_csv(root / "settings.csv")
    jobs = pd.read_csv(root / "jobs.csv")
    events = _events(root)
    stopped = settings[settings["status"] == "stopped"]
    for _, row in stopped.iterrows():
        sid, at = int(row["setting_id"]), int(row["stopped_at_iteration"])
        assert row["n_iterations"] == at + 1
        mine = jobs[jobs["setting_id"] == sid]
        assert mine["iteration"].max() == at
        # every one asked to go on, none did (a job a killed driver left is started again)
        assert set(mine["status"]) <= {"resume", "abandoned"}
        submitted = [e["it"] for e in events if e["e"] == "submitted" and e["sid"] == sid]
        assert max(submitted) == at
        dirs = {p.name.split("-")[0] for p in (root / "jobs" / str(sid)).glob("run_*")}
        assert dirs == {f"run_{r}.{i}" for r in range(N_RERUNS) for i in range(at + 1)}
        # its value is the mean over its reruns at the iteration it reached
        last = mine[(mine["iteration"] == at) & (mine["status"] == "resume")]
        assert row["loss"] == pytest.approx(last["loss"].mean(), rel=1e-12)
        (judged,) = [e for e in events if e["e"] == "judged" and e["sid"] == sid and e["stop"]]
        assert judged["it"] == at
        assert judged["value"] == pytest.approx(row["loss"], rel=1e-12)
    return settings


def _check_iterations_wait_for_every_rerun(root: Path) -> None:
    """Iteration i + 1 of a setting starts only after all its reruns ended iteration i."""
    ended_at: dict[tuple[int, int], list[int]] = {}
    jobs: dict[str, tuple[int, int]] = {}
    for n, e in enumerate(_events(root)):
        if e["e"] == "submitted":
            jobs[e["job"]] = (e["sid"], e["it"])
            if e["it"] > 0:
                ends = ended_at.get((e["sid"], e["it"] - 1), [])
                assert len(ends) == N_RERUNS, (e, ends)
        elif e["e"] == "ended":
            ended_at.setdefault(jobs[e["job"]], []).append(n)


@pytest.mark.integration
def test_early_stopping_stops_settings_and_spends_fewer_iterations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_stopping = _run(tmp_path / "with")
    without = _run(tmp_path / "without", "~early_stopping")

    settings = _check_stopped_settings_went_no_further(with_stopping)
    _check_iterations_wait_for_every_rerun(with_stopping)
    assert set(settings["status"]) == {"complete", "stopped"}
    n_stopped = int((settings["status"] == "stopped").sum())
    # most settings were stopped, none counted as failed (max_failed_fraction is 0.5)
    assert n_stopped > N_SAMPLES / 2
    assert (settings["n_failed"] == 0).all()

    plain = pd.read_csv(without / "settings.csv")
    assert set(plain["status"]) == {"complete"}
    assert plain["stopped_at_iteration"].isna().all()
    n_jobs = len(pd.read_csv(with_stopping / "jobs.csv"))
    n_plain = len(pd.read_csv(without / "jobs.csv"))
    assert n_plain == N_SAMPLES * N_RERUNS * N_ITERATIONS
    assert n_jobs <= n_plain - n_stopped * N_RERUNS  # each stopped one skipped an iteration

    report = (with_stopping / "report.md").read_text()
    assert f"({0} failed, {n_stopped} stopped early)" in report
    section = report.split("## Stopped early", 1)[1]
    for _, row in settings[settings["status"] == "stopped"].iterrows():
        line = f"| {row['setting_id']} | {int(row['stopped_at_iteration']) + 1} | "
        assert line + f"{row['loss']:.6g} |" in section

    run = load_run(with_stopping)
    assert str(run.settings["stopped_at_iteration"].dtype) == "Int64"
    assert main(["status", str(with_stopping)]) == 0
    counts = (
        f"settings: {N_SAMPLES - n_stopped} complete, 0 failed, {n_stopped} stopped early, "
        f"0 running, 0 queued; {N_SAMPLES} of {N_SAMPLES} finished"
    )
    assert counts in capsys.readouterr().out
    assert main(["report", str(with_stopping)]) == 0
    page = (with_stopping / "report.html").read_text()
    assert f"{n_stopped} stopped early" in page
    table = page.split("<h2>Stopped early</h2>", 1)[1].split("</table>", 1)[0]
    for _, row in settings[settings["status"] == "stopped"].iterrows():
        iterations = int(row["stopped_at_iteration"]) + 1
        assert f"<tr><td>{row['setting_id']}</td><td>{iterations}</td>" in table


def _kill_after_first_stop(proc: subprocess.Popen[str], journal: Path) -> dict[str, Any]:
    """SIGKILL the driver as soon as its first stop decision is in the journal."""
    while proc.poll() is None:
        if journal.exists():
            stops = [e for e in read_journal(journal) if e["e"] == "judged" and e["stop"]]
            if stops:
                os.kill(proc.pid, signal.SIGKILL)
                proc.communicate()
                return stops[0]
        time.sleep(0.005)
    raise AssertionError(f"the driver ended before stopping a setting: {proc.stderr}")


@pytest.mark.integration
def test_a_resumed_run_keeps_a_stopped_setting_stopped(tmp_path: Path) -> None:
    proc = _hpoptim(tmp_path)
    root = tmp_path / "early_stopping"
    first = _kill_after_first_stop(proc, root / "journal.jsonl")
    resumed = subprocess.run(
        [sys.executable, "-m", "hpoptim", "resume", str(root), "-q"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    settings = _check_stopped_settings_went_no_further(root)
    row = settings[settings["setting_id"] == first["sid"]].iloc[0]
    assert (row["status"], row["stopped_at_iteration"]) == ("stopped", first["it"])
    events = _events(root)
    judged = [(e["sid"], e["it"]) for e in events if e["e"] == "judged"]
    assert len(judged) == len(set(judged))  # nothing decided twice
    finished = [e["sid"] for e in events if e["e"] == "setting_finished"]
    assert sorted(finished) == list(range(N_SAMPLES))
    jobs = pd.read_csv(root / "jobs.csv")
    done = jobs[jobs["status"].isin(["resume", "completed"])]
    assert not done.duplicated(["setting_id", "rerun", "iteration"]).any()  # none ran twice
