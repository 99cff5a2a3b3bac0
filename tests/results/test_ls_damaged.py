"""`hpoptim ls` lists the healthy runs beside a damaged one, and neither `ls` nor
`status` waits on a FIFO put in place of a journal, a config or a lock file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpoptim.cli import main
from tests.test_cli import _config


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """results/ with a finished run "a" and copies of it damaged in several ways."""
    monkeypatch.chdir(tmp_path)
    assert main([str(_config(tmp_path, number_of_samples=2)), "-q"]) == 0
    results = tmp_path / "results"
    good = results / "t"
    for name in ("garbled", "no-json", "fifo-journal", "fifo-config", "fifo-lock"):
        (results / name).mkdir()  # not a copy of the whole run: its report is being drawn
        for file in ("config.json", "journal.jsonl"):
            shutil.copy(good / file, results / name / file)
    lines = (results / "garbled" / "journal.jsonl").read_text().splitlines(keepends=True)
    (results / "garbled" / "journal.jsonl").write_text("".join(["garbage\n", *lines]))
    (results / "no-json" / "config.json").write_text("{")
    for name, file in [
        ("fifo-journal", "journal.jsonl"),
        ("fifo-config", "config.json"),
        ("fifo-lock", ".lock"),
    ]:
        (results / name / file).unlink(missing_ok=True)
        os.mkfifo(results / name / file)
    (results / "not-a-run").mkdir()
    return results


def _hpoptim(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own, so that a blocking open fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "hpoptim", *args], capture_output=True, text=True, timeout=60
    )


def test_ls_lists_every_run_and_marks_the_damaged_ones(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _hpoptim("ls", str(results))
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    assert done.returncode == 1, done.stderr
    assert rows["t"][:3] == ["complete", "2/2", "0"]
    for name in ("garbled", "no-json", "fifo-journal", "fifo-config", "fifo-lock"):
        assert rows[name][0] == "damaged", name
        assert f"hpoptim: error: cannot read the run {results / name}: " in done.stderr
    assert "journal.jsonl line 1 is not" in " ".join(rows["garbled"])
    assert "is a FIFO, not a regular file" in " ".join(rows["fifo-journal"])
    assert "is a FIFO, not a regular file" in " ".join(rows["fifo-config"])
    assert "is a FIFO, not a regular file" in " ".join(rows["fifo-lock"])
    assert "not-a-run" not in rows
    assert len(done.stderr.splitlines()) == 5


@pytest.mark.parametrize("name", ["fifo-journal", "fifo-config", "fifo-lock"])
def test_status_of_a_fifo_in_place_of_a_file_is_an_error_not_a_wait(
    results: Path, name: str
) -> None:
    done = _hpoptim("status", str(results / name))
    assert done.returncode == 2
    assert "is a FIFO, not a regular file; remove it" in done.stderr
