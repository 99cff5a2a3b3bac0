"""What the console shows during a run: in a (pseudo-)terminal and without one."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

from hpoptim.progress import Progress, ProgressOptions
from hpoptim.state.history import Lifecycle, RunHistory

# x = 0.9 fails with a traceback; the others report (x - 0.3) ** 2.
JOB = """\
import json, os, sys
x = json.load(open(sys.argv[-1]))["params"]["x"]
if x > 0.8:
    import torchh
tmp = os.environ["HPOPTIM_METRICS_FILE"] + ".tmp"
json.dump({"loss": (x - 0.3) ** 2}, open(tmp, "w"))
os.replace(tmp, os.environ["HPOPTIM_METRICS_FILE"])
"""
CAUSE = "ModuleNotFoundError: No module named 'torchh'"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _config(tmp_path: Path) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "p",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [
            {"param": "x", "distribution": "Discrete", "options": [0.9, 0.5, 0.0, 0.35, 0.2]}
        ],
        "optimizer_str": "gridsearch",
        "number_of_samples": 5,
        "n_jobs_per_iteration": 1,
        "metric_to_optimize": "loss",
        "minimize": True,
        "max_attempts": 1,
        "max_failed_fraction": 1.0,
        "local": {"n_parallel_jobs": 1},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _in_pty(argv: list[str], cwd: Path) -> str:
    """Run ``argv`` with stdin/stdout/stderr on a 160-column pseudo-terminal; its output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError as exc:  # EIO: the child side closed
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(60) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def _piped(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_terminal_shows_a_live_area_updated_in_place(tmp_path: Path) -> None:
    raw = _in_pty([sys.executable, "-m", "hpoptim", str(_config(tmp_path))], tmp_path)
    text = ANSI.sub("", raw).replace("\r", "")
    assert "\x1b[2K" in raw  # lines erased and redrawn: an area updated in place
    assert "[hpoptim] 5/5 settings done (1 failed), 0 running, 0 queued;" in text
    assert f"job 0_0.0-0 failed: failed with exit code 1: {CAUSE}" in text
    assert "[hpoptim] new best loss=0.04 at setting 1 (2/5): x=0.5" in text
    assert "[hpoptim] new best loss=0.0025 at setting 3 (4/5): x=0.35" in text
    assert "best loss = 0.0025" in text  # the end summary


def test_without_a_terminal_lines_are_compact_and_few(tmp_path: Path) -> None:
    proc = _piped([sys.executable, "-m", "hpoptim", str(_config(tmp_path))], tmp_path)
    err = proc.stderr.splitlines()
    assert "\x1b[" not in proc.stderr
    assert err == [
        f"[hpoptim] job 0_0.0-0 failed: failed with exit code 1: {CAUSE}",
        "[hpoptim] new best loss=0.04 at setting 1 (2/5): x=0.5",
        "[hpoptim] new best loss=0.0025 at setting 3 (4/5): x=0.35",
        err[-1],
    ]
    assert re.fullmatch(
        r"\[hpoptim\] 5/5 settings done \(1 failed\), 0 running, 0 queued; \d+s, ETA 0s; "
        r"best loss=0.0025 \(setting 3\)",
        err[-1],
    )
    assert "best loss = 0.0025" in proc.stdout


def test_verbose_adds_a_line_per_setting_and_quiet_only_errors(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    verbose = _piped([sys.executable, "-m", "hpoptim", config, "-v"], tmp_path).stderr
    per_setting = [line for line in verbose.splitlines() if re.search(r"\[\d/5\] setting", line)]
    assert len(per_setting) == 5
    assert any(
        f"[1/5] setting 0 failed: 1 attempt(s) failed; last: failed with exit code 1: {CAUSE}"
        in line
        for line in per_setting
    )
    quiet = _piped(
        [sys.executable, "-m", "hpoptim", "resume", str(tmp_path / "results" / "p"), "-q"],
        tmp_path,
    )
    assert quiet.stderr == ""
    assert "this run is already complete" in quiet.stdout
    (tmp_path / "results").rename(tmp_path / "old")
    quiet = _piped([sys.executable, "-m", "hpoptim", config, "-q"], tmp_path)
    assert quiet.stderr.splitlines() == [
        f"[hpoptim] job 0_0.0-0 failed: failed with exit code 1: {CAUSE}"
    ]
    assert "best loss = 0.0025" in quiet.stdout


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_compact_lines_at_most_every_interval(tmp_path: Path) -> None:
    """Events drive the display; a fake clock decides whether an interval has passed."""
    import io

    clock = FakeClock()
    out = io.StringIO()
    options = ProgressOptions(
        n_samples=4, metric="loss", minimize=False, live=False, line_interval_s=30
    )
    progress = Progress(options, out, clock)
    history = RunHistory(Lifecycle("loss"))

    def event(e: str, **fields: Any) -> None:
        record = {"e": e, **fields}
        history.apply(record)
        progress(history, record)

    for sid in range(4):
        event("asked", sid=sid, params={"x": sid})
    event("submitted", job="0_0.0-0", sid=0, rerun=0, it=0, att=0, dir="d0", t=clock.t)
    event("native_ids", ids={"0_0.0-0": "77"})
    clock.t += 10
    event("submitted", job="1_0.0-0", sid=1, rerun=0, it=0, att=0, dir="d1", t=clock.t)
    assert out.getvalue() == ""  # less than one interval: nothing yet
    clock.t += 25
    event("ended", job="0_0.0-0", state="completed", exit_code=0, metrics={"loss": 2.0}, t=clock.t)
    result = {"value": 2.0, "std": 0.0, "n_ok": 1, "n_failed": 0, "metrics": {"loss": 2.0}}
    event("setting_finished", sid=0, result=result)
    assert out.getvalue().splitlines() == [
        "[hpoptim] 0/4 settings done (0 failed), 1 running, 3 queued; 35s; best loss: none yet",
        "[hpoptim] new best loss=2 at setting 0 (1/4): x=0",
    ]
    out.truncate(0)
    out.seek(0)
    clock.t += 5
    event("ended", job="1_0.0-0", state="failed", exit_code=1, metrics={}, t=clock.t)
    event("setting_finished", sid=1, result={**result, "value": None, "n_ok": 0, "n_failed": 1})
    clock.t += 30
    event("submitted", job="2_0.0-0", sid=2, rerun=0, it=0, att=0, dir="d2", t=clock.t)
    assert out.getvalue().splitlines() == [
        "[hpoptim] 2/4 settings done (1 failed), 1 running, 1 queued; 1m10s, ETA 1m10s; "
        "best loss=2 (setting 0)",
    ]


def test_the_live_area_lists_running_jobs_with_their_ages() -> None:
    import io

    from rich.console import Console

    clock = FakeClock()
    options = ProgressOptions(n_samples=10, metric="acc", minimize=False, live=True)
    progress = Progress(options, io.StringIO(), clock)
    history = RunHistory(Lifecycle("acc"))

    def event(e: str, **fields: Any) -> None:
        record = {"e": e, **fields}
        history.apply(record)
        progress(history, record)

    event("asked", sid=0, params={"lr": 0.1})
    event("asked", sid=1, params={"lr": 0.2})
    event("submitted", job="0_0.0-0", sid=0, rerun=0, it=0, att=0, dir="d0", t=clock.t)
    event("native_ids", ids={"0_0.0-0": "4242"})
    clock.t += 65
    event("submitted", job="1_0.0-1", sid=1, rerun=0, it=2, att=1, dir="d1", t=clock.t)
    clock.t += 5
    screen = Console(file=io.StringIO(), width=120, record=True)
    screen.print(progress)
    assert screen.export_text().splitlines() == [
        "0/10 settings done (0 failed), 2 running, 0 queued",
        "1m10s; best acc: none yet",
        "  0_0.0-0: setting 0, iteration 0, attempt 0, 1m10s id 4242",
        "  1_0.0-1: setting 1, iteration 2, attempt 1, 5s waiting for a slot",
    ]
    assert progress.stream.getvalue() == ""  # type: ignore[attr-defined]  # live: no lines


def test_a_stopped_setting_is_counted_apart_and_never_the_best() -> None:
    import io

    clock = FakeClock()
    out = io.StringIO()
    options = ProgressOptions(n_samples=2, metric="loss", minimize=True, live=False)
    progress = Progress(options, out, clock)
    history = RunHistory(Lifecycle("loss", training_iterations=3, judge_iterations=True))

    def event(e: str, **fields: Any) -> None:
        record = {"e": e, **fields}
        history.apply(record)
        progress(history, record)

    result = {"value": 0.5, "std": 0.0, "n_ok": 1, "n_failed": 0, "metrics": {"loss": 0.5}}
    for sid in range(2):
        event("asked", sid=sid, params={"x": sid})
        event("submitted", job=f"{sid}_0.0-0", sid=sid, rerun=0, it=0, att=0, dir="d", t=0.0)
        event("ended", job=f"{sid}_0.0-0", state="resume", metrics={"loss": 0.5}, t=1.0)
    event("judged", sid=0, it=0, value=0.5, stop=True)
    event("setting_finished", sid=0, result={**result, "stopped_at": 0})
    assert progress.summary_line().startswith(
        "1/2 settings done (0 failed, 1 stopped early), 0 running, 1 queued;"
    )
    assert progress.summary_line().endswith("best loss: none yet")  # a partial run's value
    assert "new best" not in out.getvalue()
