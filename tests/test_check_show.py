"""hpoptim check CONFIG --show N: what a run would do, shown before anything is spent."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from hpoptim.cli import main
from hpoptim.state.storage import read_journal
from tests.conftest import FakeContainerRuntime

JOB = """\
import json, os, sys
x = json.load(open(sys.argv[-1]))["params"]["x"]
tmp = os.environ["HPOPTIM_METRICS_FILE"] + ".tmp"
json.dump({"loss": (x - 0.3) ** 2}, open(tmp, "w"))
os.replace(tmp, os.environ["HPOPTIM_METRICS_FILE"])
"""


def _config(tmp_path: Path, **extra: Any) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    cfg: dict[str, Any] = {
        "optimization_procedure_name": "c",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 5,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 11,
        "local": {"n_parallel_jobs": 2},
    }
    cfg.update(extra)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _show(config: Path, n: int, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["check", str(config), "--show", str(n)]) == 0
    return capsys.readouterr().out.splitlines()


def _value(lines: list[str], label: str) -> str:
    return next(line.split(f"{label}: ", 1)[1] for line in lines if line.startswith(f"  {label}: "))


def test_shows_what_the_run_then_does_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path)
    lines = _show(config, 3, capsys)
    assert not (tmp_path / "results").exists()
    assert "first 3 setting(s) from random with seed 11:" in lines
    shown = [line for line in lines if line.startswith(("  0: ", "  1: ", "  2: "))]
    assert len(shown) == 3
    assert _value(lines, "working directory") == str(tmp_path)
    command = shlex.split(_value(lines, "command"))

    assert main([str(config), "-q"]) == 0
    capsys.readouterr()
    root = tmp_path / "results" / "c"
    asked = [e["params"] for e in read_journal(root / "journal.jsonl") if e["e"] == "asked"]
    assert [f"  {i}: x={p['x']:.4g}" for i, p in enumerate(asked[:3])] == shown
    first = root / "jobs" / "0" / "run_0.0-0"
    assert command[-1] == str(first / "params.json")
    assert command[-2] == str(tmp_path / "job.py")
    assert json.loads((first / "params.json").read_text())["params"] == asked[0]


@pytest.mark.parametrize(
    ("n_samples", "note"),
    [
        pytest.param(
            4,
            "grid: 6 setting(s); number_of_samples=4 CUTS it: only the first 4 are run, 2 never",
            id="cut",
        ),
        pytest.param(6, "grid: 6 setting(s); number_of_samples=6 runs all of them", id="whole"),
        pytest.param(9, "grid: 6 setting(s); number_of_samples=9 runs all of them", id="more"),
    ],
)
def test_grid_size_and_whether_number_of_samples_cuts_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    n_samples: int,
    note: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config(
        tmp_path,
        optimizer_str="gridsearch",
        number_of_samples=n_samples,
        optimized_params=[
            {"param": "x", "distribution": "Discrete", "options": [0.1, 0.2, 0.3]},
            {"param": "n", "distribution": "Discrete", "options": [1, 2]},
        ],
    )
    lines = _show(config, 2, capsys)
    assert note in lines
    assert lines[lines.index(note) - 2 : lines.index(note)] == [
        "  0: x=0.1, n=1",
        "  1: x=0.1, n=2",
    ]


def test_shows_the_container_argv_the_job_is_started_with(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake_container_runtime: FakeContainerRuntime,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config(
        tmp_path,
        number_of_samples=1,
        singularity={"image": str(fake_container_runtime.image)},
    )
    lines = _show(config, 1, capsys)
    shown = shlex.split(_value(lines, "container argv"))
    assert str(fake_container_runtime.image) in shown
    assert main([str(config), "-q"]) == 0
    started = [c["argv"] for c in fake_container_runtime.calls() if c["argv"][-1] == shown[-1]]
    assert len(started) == 1
    assert started[0][1:] == shown[1:]  # [0] is the double's path on PATH
    assert Path(started[0][0]).name == shown[0]
