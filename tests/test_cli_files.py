"""The results directory under stress: file errors, damaged journals, file modes,
hostile cell values, best_jobs/ links and the reports of a stopped run."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from hpoptim.state.storage import Journal
from tests.test_cli import ZERO_WORK, _config


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("hpoptim: error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- OSError: one line naming the path and what to do ---------------------------------


def test_results_dir_that_is_a_file_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "results").write_text("not a directory")
    assert main([str(_config(in_tmp))]) == 2
    line = _error_line(capsys)
    assert f"cannot use {in_tmp / 'results'}" in line
    assert "choose another results_dir" in line
    assert (in_tmp / "results").read_text() == "not a directory"


def test_a_name_over_255_bytes_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "é" * 128  # 256 bytes in UTF-8
    assert main([str(_config(in_tmp, optimization_procedure_name=name))]) == 2
    line = _error_line(capsys)
    assert "255" in line
    assert not (in_tmp / "results").exists()  # nothing written, not even its parent


@pytest.fixture
def failing_params_write(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The third params file write fails with the errno put in the yielded list."""
    from hpoptim.run import jobs

    original = jobs.write_text_atomic
    calls: list[int] = []
    fault: list[int] = []

    def write(path: Path, text: str, **kw: Any) -> None:
        calls.append(1)
        if fault and len(calls) == 3:
            raise OSError(fault[0], os.strerror(fault[0]), str(path))
        original(path, text, **kw)

    monkeypatch.setattr(jobs, "write_text_atomic", write)
    return fault


@pytest.mark.parametrize(
    ("code", "exit_code", "fix"),
    [
        pytest.param(errno.ENOSPC, 1, "free some space", id="disk-full"),
        pytest.param(errno.EDQUOT, 1, "raise the quota", id="quota"),
        pytest.param(errno.EACCES, 2, "fix the permissions", id="permission"),
        pytest.param(errno.EROFS, 2, "on a writable file system", id="read-only"),
    ],
)
def test_a_file_error_mid_run_is_one_line_and_the_run_resumes(
    in_tmp: Path,
    failing_params_write: list[int],
    code: int,
    exit_code: int,
    fix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    failing_params_write.append(code)
    path = _config(in_tmp, n_jobs_per_iteration=2)
    root = in_tmp / "results" / "t"
    assert main([str(path), "-q"]) == exit_code
    line = _error_line(capsys)
    assert f"cannot use {root / 'jobs'}" in line
    assert os.strerror(code) in line
    assert fix in line
    assert line.endswith(f"then continue with: hpoptim resume {root}")
    failing_params_write.clear()
    assert main(["resume", str(root), "-q"]) == 0
    settings = pd.read_csv(root / "settings.csv")
    assert sorted(settings["setting_id"]) == list(range(6))
    assert set(settings["status"]) == {"complete"}


def test_a_full_disk_under_the_journal_stops_the_run_resumably(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The write of the third ``setting_finished`` event fails as on a full disk (the
    error names no file); the line still names the journal."""
    original = Journal.append
    seen: list[str] = []

    class FullDisk:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    def append(self: Journal, event: str, **fields: Any) -> dict[str, Any]:
        seen.append(event)
        if seen.count("setting_finished") == 3 and event == "setting_finished":
            assert self._fh is not None
            self._fh.close()
            self._fh = FullDisk()  # type: ignore[assignment]
        return original(self, event, **fields)

    monkeypatch.setattr(Journal, "append", append)
    path = _config(in_tmp, n_jobs_per_iteration=1)
    root = in_tmp / "results" / "t"
    assert main([str(path), "-q"]) == 1
    line = _error_line(capsys)
    assert line == (
        f"hpoptim: error: cannot use {root / 'journal.jsonl'}: No space left on device; "
        f"free some space, then continue with: hpoptim resume {root}"
    )
    monkeypatch.setattr(Journal, "append", original)
    assert main(["resume", str(root), "-q"]) == 0
    settings = pd.read_csv(root / "settings.csv")
    assert sorted(settings["setting_id"]) == list(range(6))


# -- a damaged journal: named by line, repaired by keeping the intact prefix ----------


def _finished_run(in_tmp: Path) -> Path:
    assert main([str(_config(in_tmp, number_of_samples=3)), "-q"]) == 0
    return in_tmp / "results" / "t"


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        pytest.param("garbage", "is not a JSON object", id="not-json"),
        pytest.param('{"e": "asked", "params": {}}', "lacks field 'sid'", id="missing-field"),
        pytest.param(
            '{"e": "asked", "sid": "9", "params": {}}',
            "field 'sid' must be int, got \"9\"",
            id="wrong-type",
        ),
        pytest.param(
            '{"e": "ended", "job": "77_0.0-0", "state": "completed", "t": 1}',
            "job '77_0.0-0' was never submitted",
            id="unknown-job",
        ),
        pytest.param('{"sid": 1}', "no event kind", id="no-kind"),
    ],
)
def test_a_damaged_journal_line_is_named_and_report_repair_keeps_the_good_prefix(
    in_tmp: Path, bad_line: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _finished_run(in_tmp)
    journal = root / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    damaged = [*lines[:4], bad_line + "\n", *lines[4:]]
    journal.write_text("".join(damaged))
    capsys.readouterr()
    for command in ("resume", "report", "status"):
        assert main([command, str(root)]) == 2
        line = _error_line(capsys)
        assert f"{journal} line 5 " in line
        assert problem in line
        assert f"'hpoptim report --repair {root}' keeps the 4 event(s) before it" in line

    assert main(["report", "--repair", str(root)]) == 0
    out = capsys.readouterr().out
    backup = root / "journal.jsonl.damaged-1"
    assert f"kept its first 4 event(s) and dropped {len(damaged) - 4} line(s) from line 5 " in out
    assert problem in out
    assert f"the damaged journal is kept as {backup}" in out
    assert backup.read_text() == "".join(damaged)
    assert journal.read_text() == "".join(lines[:4])
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600

    assert main(["resume", str(root), "-q"]) == 0  # what was dropped runs again
    settings = pd.read_csv(root / "settings.csv")
    assert sorted(settings["setting_id"]) == [0, 1, 2]
    assert set(settings["status"]) == {"complete"}


def test_repair_of_an_intact_journal_changes_nothing(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _finished_run(in_tmp)
    before = (root / "journal.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["report", "--repair", str(root)]) == 0
    assert "the journal is intact" in capsys.readouterr().out
    assert (root / "journal.jsonl").read_bytes() == before
    assert not list(root.glob("journal.jsonl.damaged-*"))


# -- file modes ------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_results_honour_the_umask_and_files_with_secrets_are_owner_only(
    in_tmp: Path, umask: int
) -> None:
    old = os.umask(umask)
    try:
        assert main([str(_config(in_tmp, environment={"TOKEN": "s3cret"})), "-q"]) == 0
    finally:
        os.umask(old)
    root = in_tmp / "results" / "t"
    shared = 0o666 & ~umask
    for name in ("jobs.csv", "settings.csv", "report.md", "best_params.json"):
        assert stat.S_IMODE((root / name).stat().st_mode) == shared, name
    params = next(root.glob("jobs/*/*/params.json"))
    assert stat.S_IMODE(params.stat().st_mode) == shared
    for name in ("journal.jsonl", "hpoptim.log", "config.json"):
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o600, name
    assert "s3cret" in (root / "config.json").read_text()


# -- hostile cell values, best_jobs/ links, the report of a stopped run ---------------

TAGGED = """\
import json, os, sys
tag = json.load(open(sys.argv[-1]))["params"]["tag"]
json.dump({"loss": len(tag)}, open(os.environ["HPOPTIM_METRICS_FILE"], "w"))
"""


def test_strings_with_line_breaks_stay_in_one_csv_row(in_tmp: Path) -> None:
    tags = ["a\rb", "c\nd", "e\r\nf", 'g,"h"', "p|q"]
    path = _config(
        in_tmp,
        TAGGED,
        number_of_samples=15,
        optimized_params=[{"param": "tag", "distribution": "Discrete", "options": tags}],
    )
    assert main([str(path), "-q"]) == 0
    root = in_tmp / "results" / "t"
    for table, n in (("settings", 15), ("jobs", 15)):
        frame = pd.read_csv(root / f"{table}.csv", keep_default_na=False)
        assert len(frame) == n
        assert set(frame["tag"]) <= set(tags)
        assert frame["loss"].tolist() == [len(t) for t in frame["tag"]]
    table = [ln for ln in (root / "report.md").read_text().splitlines() if ln.startswith("| ")]
    assert len(table) == 2 + 10  # header, rule and the ten best, one line each
    assert all(ln.replace("\\|", "").count("|") == 7 for ln in table)  # 6 cells each


def test_best_jobs_are_hard_links_or_copies_where_links_fail(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _finished_run(in_tmp)
    best = root / "best_jobs"
    linked = sorted(best.glob("setting_*/*/params.json"))
    assert len(linked) == 3
    for path in linked:
        original = root / "jobs" / path.parent.parent.name.removeprefix("setting_")
        assert path.stat().st_ino == (original / path.parent.name / path.name).stat().st_ino

    def no_link(*args: object, **kw: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    from hpoptim.results import report

    monkeypatch.setattr(report.os, "link", no_link)
    shutil.rmtree(best)
    assert main(["report", str(root), "-q"]) == 0
    copied = sorted(best.glob("setting_*/*/params.json"))
    assert len(copied) == 3
    for path in copied:
        original = root / "jobs" / path.parent.parent.name.removeprefix("setting_")
        source = original / path.parent.name / path.name
        assert path.stat().st_ino != source.stat().st_ino
        assert path.read_bytes() == source.read_bytes()


def test_a_run_stopped_by_failures_reports_every_finished_setting(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = "import os, sys\nif int(os.environ['HPOPTIM_SETTING_ID']) >= 2: sys.exit(1)\n"
    path = _config(
        in_tmp,
        failing + ZERO_WORK,
        number_of_samples=20,
        max_attempts=1,
        n_jobs_per_iteration=1,
        n_settings_before_failure_check=6,
        max_failed_fraction=0.5,
    )
    assert main([str(path), "-q"]) == 1
    root = in_tmp / "results" / "t"
    settings = pd.read_csv(root / "settings.csv")
    assert len(settings) == 6  # stopped at the check: 4 of 6 failed
    assert (settings["status"] == "complete").sum() == 2
    assert len(pd.read_csv(root / "jobs.csv")) == 6
    assert "- settings finished: 6 of 6 asked (4 failed)" in (root / "report.md").read_text()
    best = json.loads((root / "best_params.json").read_text())
    assert best["setting_id"] in (0, 1)


def test_a_log_file_that_cannot_be_written_goes_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from hpoptim import log

    log.configure(0, tmp_path / "hpoptim.log")
    handler = next(
        h for h in logging.getLogger("hpoptim").handlers if isinstance(h, logging.FileHandler)
    )

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    handler.stream.close()
    handler.stream = FullDisk()
    try:
        for i in range(3):
            logging.getLogger("hpoptim.test").warning("message %d", i)
        err = capsys.readouterr().err
        assert err == "".join(f"[hpoptim] message {i}\n" for i in range(3))
    finally:
        log.remove_log_file(tmp_path / "hpoptim.log")
