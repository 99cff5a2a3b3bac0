"""Temporaries that writers killed mid-write left behind are removed when a driver
takes the run over; files of the user's and of jobs still in flight are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpoptim.cli import main
from hpoptim.launchers import node
from hpoptim.run.temporaries import remove_stale_temporaries
from hpoptim.state.history import Lifecycle, load_history
from hpoptim.state.storage import ResultsLayout
from tests.test_cli import _config

STALE = (
    ".jobs.csv.0a1b2c3d.tmp",  # write_text_atomic
    ".config.json.deadbeef.tmp",
    "best_jobs/.ranking.json.01234567.tmp",
    "jobs/0/run_0.0-0/slurm_exit_status.tmp",  # the node protocol
    "jobs/0/run_0.0-0/slurm_exit_status.job",
    "jobs/0/run_0.0-0/job_process.tmp",
    "jobs/1/run_0.0-0/.metrics.json.89abcdef.tmp",  # hpoptim.job
    "jobs/1/run_0.0-0/.params.json.fedcba98.tmp",
)
KEPT = (
    "notes.tmp",  # the user's: not hidden
    ".mine.tmp",  # not stamped like hpoptim's
    "jobs/0/run_0.0-0/checkpoint.tmp",
    "jobs/1/run_0.0-0/.cache.tmp",
)


def _plant(root: Path, names: tuple[str, ...]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("0 0\n")


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["report"], id="report"),
        pytest.param(["resume"], id="resume-of-a-complete-run"),
        pytest.param(["resume", "unfinished"], id="resume-that-runs"),
    ],
)
def test_a_driver_removes_stale_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(_config(tmp_path, number_of_samples=2)), "-q"]) == 0
    root = tmp_path / "results" / "t"
    if command[1:] == ["unfinished"]:  # the driver died before journaling its end
        journal = root / "journal.jsonl"
        lines = journal.read_text().splitlines(keepends=True)
        assert json.loads(lines[-1])["e"] == "finished"
        journal.write_text("".join(lines[:-1]))
    (root / "best_jobs" / ".setting_0.tmp").mkdir(parents=True)  # a copy cut short
    _plant(root, STALE + KEPT)
    assert main([command[0], str(root), "-q"]) == 0
    left = [name for name in (*STALE, "best_jobs/.setting_0.tmp") if (root / name).exists()]
    assert left == []
    assert all((root / name).exists() for name in KEPT)


def test_the_run_directory_of_a_job_in_flight_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(_config(tmp_path, number_of_samples=1)), "-q"]) == 0
    layout = ResultsLayout(tmp_path / "results" / "t")
    lines = layout.journal.read_text().splitlines(keepends=True)
    ended = next(i for i, line in enumerate(lines) if json.loads(line)["e"] == "ended")
    layout.journal.write_text("".join(lines[:ended]))  # as if the driver died before it
    history, _ = load_history(layout.journal, Lifecycle("loss", 1, 3, 1))
    (job,) = history.active_jobs()
    temporary = Path(job.run_dir) / node.EXIT_TEMP_NAME  # its supervisor may be writing it
    temporary.write_text("0 0\n")
    assert remove_stale_temporaries(layout, history) == 0
    assert temporary.exists()
