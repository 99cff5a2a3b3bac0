"""report.html: self-contained, every plot, opened in a real headless browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from hpoptim.cli import main
from hpoptim.results.drawing import HtmlReporter
from hpoptim.results.plots import PLOTS
from tests.conftest import require_tool

# Two reruns, two chained iterations; lr is log-scaled; width == 3 fails.
JOB = """\
from hpoptim import job
p, ctx = job.get_params(), job.get_context()
if p["width"] == 3:
    raise MemoryError("width 3 does not fit")
loss = (p["lr"] - 0.01) ** 2 * 1e4 + p["width"] + 0.1 * ctx["rerun"] - 0.5 * ctx["iteration"]
job.report({"loss": loss})
if ctx["iteration"] + 1 < ctx["n_iterations"]:
    job.exit_for_resume()
"""
WINDOW = (1000, 2400)


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    (tmp / "job.py").write_text(JOB)
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "h",
        "results_dir": str(tmp / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [
            {"param": "lr", "distribution": "LogUniform", "bounds": [1e-4, 1e-1]},
            {"param": "width", "distribution": "IntUniform", "bounds": [1, 4]},
        ],
        "optimizer_str": "random",
        "number_of_samples": 12,
        "n_jobs_per_iteration": 4,
        "metric_to_optimize": "loss",
        "minimize": True,
        "n_reruns": 2,
        "training_iterations": 2,
        "max_attempts": 1,
        "max_failed_fraction": 1.0,
        "seed": 4,
        "local": {"n_parallel_jobs": 2},
    }
    (tmp / "c.json").write_text(json.dumps(cfg))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        assert main([str(tmp / "c.json"), "-q"]) == 0
    root = tmp / "results" / "h"
    copy = tmp / "drawn"  # a copy drawn at once, while the run's own drawing may go on
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("report.html", "plots"))
    assert main(["report", str(copy), "--html-only"]) == 0
    return copy


def _n_width_3(root: Path) -> int:
    """The settings the job refuses (width 3): the run's failures, at least one."""
    settings = pd.read_csv(root / "settings.csv")
    n = int((settings["width"] == 3).sum())
    assert n >= 1, "the seed must draw width 3 at least once for the failures table"
    return n


def test_every_plot_is_embedded_and_saved(run_root: Path) -> None:
    page = (run_root / "report.html").read_text()
    for stem, (title, _) in PLOTS.items():
        png = run_root / "plots" / f"{stem}.png"
        assert png.read_bytes().startswith(b"\x89PNG"), stem
        assert f'<img alt="{title}" src="data:image/png;base64,' in page
    assert page.count("data:image/png;base64,") == len(PLOTS)
    assert "MemoryError: width 3 does not fit" in page  # the failures table
    assert "[report.html](report.html)" in (run_root / "report.md").read_text()
    assert f"12 of 12 settings finished ({_n_width_3(run_root)} failed)" in page
    assert "outside any git repository (no commit recorded)</li>" in page  # the provenance
    assert f", job Python {sys.version.split()[0]}</li>" in page


def test_self_contained(run_root: Path) -> None:
    page = (run_root / "report.html").read_text()
    assert not re.search(r"https?://", page)
    assert "<script" not in page
    assert "<link" not in page
    assert re.findall(r"src=\"([^\",]*)", page) == ["data:image/png;base64"] * len(PLOTS)


@pytest.fixture
def chromium() -> str:
    return require_tool(
        "chromium", "chromium-browser", package="chromium", purpose="report.html is opened in it"
    )


def _open_in_browser(
    chromium: str, page: Path, tmp_path: Path
) -> tuple[list[str], list[str], Path]:
    """Render ``page`` headless; its console messages, the URLs it requested, a screenshot."""
    shot, netlog = tmp_path / "shot.png", tmp_path / "net.json"
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    events = json.loads(netlog.read_text())["events"]
    # Requests made by the page carry the file:// page as their isolation key; the
    # browser's own background requests (update checks) do not.
    requested = [
        e["params"]["url"]
        for e in events
        if "file://" in str(e.get("params", {}).get("network_isolation_key", ""))
        and not str(e["params"].get("url", "")).startswith(("file:", "data:"))
    ]
    return console, requested, shot


def test_renders_in_a_headless_browser_without_errors_or_network(
    chromium: str, run_root: Path, tmp_path: Path
) -> None:
    console, requested, shot = _open_in_browser(chromium, run_root / "report.html", tmp_path)
    assert console == []
    assert requested == []
    pixels = imread(shot)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    rgb = pixels[..., :3]
    non_white = (rgb < 0.9).any(axis=-1).mean()
    assert non_white > 0.02  # text, tables and plots, not an empty page
    assert np.unique(rgb.reshape(-1, 3), axis=0).shape[0] > 50  # plots' colours


def test_the_browser_check_sees_errors_and_requests(chromium: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="http://203.0.113.9/x.png">'
        '<script>console.error("broken")</script></body></html>'
    )
    console, requested, _ = _open_in_browser(chromium, bad, tmp_path)
    assert any('"broken"' in line for line in console)
    assert "http://203.0.113.9/x.png" in requested


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class TimedDrawing:
    """A drawing that runs for ``duration_s`` of the fake clock."""

    def __init__(self, clock: Clock, duration_s: float) -> None:
        self.clock, self.end = clock, clock.t + duration_s

    def poll(self) -> int | None:
        return 0 if self.clock.t >= self.end else None

    def wait(self) -> int:
        self.clock.t = max(self.clock.t, self.end)
        return 0


def test_drawings_are_throttled_by_time_and_by_their_own_cost(tmp_path: Path) -> None:
    clock = Clock()
    started: list[float] = []

    def spawn(root: Path) -> TimedDrawing:
        started.append(clock.t)
        return TimedDrawing(clock, 4.0 + len(started))  # each drawing takes longer

    reporter = HtmlReporter(tmp_path, min_interval_s=60, cost_factor=20, clock=clock, spawn=spawn)
    for _ in range(400):  # a setting finishes every second
        clock.t += 1.0
        reporter.on_setting_finished(None, None)  # type: ignore[arg-type]
    # The first after 60 s; each next one 60 s after the previous started and
    # 20 x its duration after it was seen to end (5 s -> 100 s, 6 s -> 120 s).
    assert started == [60.0, 165.0, 291.0]
    clock.t += 0.5
    reporter.finish()
    assert started[-1] == 400.5
    busy_s = sum(4.0 + i for i in range(1, len(started)))
    assert busy_s / clock.t < 1 / 20 + 0.02


def test_finish_waits_for_a_drawing_under_way(tmp_path: Path) -> None:
    clock = Clock()
    started: list[float] = []

    def spawn(root: Path) -> TimedDrawing:
        started.append(clock.t)
        return TimedDrawing(clock, 10.0)

    reporter = HtmlReporter(tmp_path, min_interval_s=60, clock=clock, spawn=spawn)
    clock.t = 61.0
    reporter.on_setting_finished(None, None)  # type: ignore[arg-type]
    clock.t = 63.0
    reporter.finish()
    assert started == [61.0, 71.0]  # not two drawings at once


def test_the_run_draws_it_at_the_end_in_the_background(run_root: Path) -> None:
    """The module's run ended without waiting; the drawing it started finishes."""
    page = run_root.parent / "results" / "h" / "report.html"
    deadline = time.monotonic() + 60
    while not page.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"12 of 12 settings finished ({_n_width_3(run_root)} failed)" in page.read_text()


def test_report_command_writes_it(run_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "h"
    shutil.copytree(run_root, copy)
    (copy / "report.html").unlink()
    shutil.rmtree(copy / "plots")
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").stat().st_size > 10_000
    assert sorted(p.stem for p in (copy / "plots").iterdir()) == sorted(PLOTS)
    assert os.access(copy / "report.html", os.R_OK)
