"""Small CLI defects met when switching from cluster_utils, each run through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hpoptim.cli import main
from hpoptim.config.overrides import apply_overrides, parse_overrides
from hpoptim.run.session import open_session

REPO = Path(__file__).resolve().parent.parent
JOB = """\
import json, os, sys, time
p = json.load(open(sys.argv[-1]))
if os.environ.get("HOLD_UNTIL") and not os.path.exists(os.environ["HOLD_UNTIL"]):
    open(os.path.join(os.environ["HPOPTIM_RUN_DIR"], "started"), "w").close()
    time.sleep(600)
if p["params"]["x"] < 0:
    sys.exit("negative x")
out = os.environ["HPOPTIM_METRICS_FILE"]
json.dump({"loss": p["params"]["x"]}, open(out + ".tmp", "w")); os.replace(out + ".tmp", out)
"""


def _config(tmp_path: Path, **extra: Any) -> Path:
    (tmp_path / "job.py").write_text(JOB)
    data: dict[str, Any] = {
        "optimization_procedure_name": "t",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}],
        "optimizer_str": "random",
        "number_of_samples": 4,
        "n_jobs_per_iteration": 2,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 3,
        "local": {"n_parallel_jobs": 2},
        **extra,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_report_of_a_run_stopped_before_its_first_setting(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = open_session(config=_config(in_tmp), overrides=[])
    stop = threading.Event()
    stop.set()  # Ctrl-C before the first setting is asked
    try:
        with pytest.raises(Exception, match="interrupted"):
            session.run(stop)
    finally:
        session.close()
    root = in_tmp / "results" / "t"
    capsys.readouterr()
    assert main(["report", str(root)]) == 0
    assert "finished 0 setting(s)" in capsys.readouterr().out
    assert "No setting has completed yet." in (root / "report.html").read_text()


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["-q", "{config}"], id="quiet-first"),
        pytest.param(["--overwrite", "{config}"], id="overwrite-first"),
        pytest.param(["-q", "--launcher", "local", "{config}", "number_of_samples=2"], id="valued"),
    ],
)
def test_options_before_the_config_are_taken(
    argv: list[str], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(in_tmp))
    assert main([a.format(config=config) for a in argv]) == 0
    assert (in_tmp / "results" / "t" / "settings.csv").exists()


def test_options_before_a_sub_command_are_taken(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "check", str(_config(in_tmp))]) == 0


@pytest.mark.parametrize(
    "fixed",
    [
        pytest.param({"singularity.image": "a.sif", "singularity.script": "s.py"}, id="flat"),
        pytest.param({"singularity": {"image": "a.sif", "script": "s.py"}}, id="nested"),
    ],
)
def test_deleting_a_section_of_fixed_params_written_flat(fixed: dict[str, Any]) -> None:
    data = {"fixed_params": {**fixed, "singularity_x": 1, "lr": 0.1}}
    out = apply_overrides(data, parse_overrides(["~fixed_params.singularity"]), lambda _: False)
    assert out["fixed_params"] == {"singularity_x": 1, "lr": 0.1}


def test_the_stop_reason_is_printed_once(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(
        in_tmp,
        optimized_params=[{"param": "x", "distribution": "Uniform", "bounds": [-2, -1]}],
        number_of_samples=20,
        max_attempts=1,
        n_settings_before_failure_check=2,
    )
    assert main([str(path), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("more than max_failed_fraction=0.5") == 1, err
    assert "continue with: hpoptim resume" in err


def test_resume_says_once_what_becomes_of_a_cancelled_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, number_of_samples=2)
    release = tmp_path / "release"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOLD_UNTIL": str(release)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpoptim", str(path), "-q"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    jobs = tmp_path / "results" / "t" / "jobs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(jobs.glob("**/started"))) < 2:
        time.sleep(0.05)  # the jobs write their marker; nothing to wait on but the file
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    release.touch()
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "results" / "t")]) == 0
    lines = capsys.readouterr().err.splitlines()
    for job in ("0_0.0-0", "1_0.0-0"):
        about = [line for line in lines if f"job {job} " in line]
        restarted = f"[hpoptim] job {job} was cancelled when the driver stopped; restarting it"
        assert about == [restarted]


@pytest.fixture
def repo_without_script(in_tmp: Path) -> Path:
    repo = in_tmp / "repo"
    repo.mkdir()
    (repo / "README").write_text("no job script here\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return repo


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_script_missing_at_the_commit_is_refused_naming_the_config_file(
    command: str, repo_without_script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(repo_without_script.parent, run_in_working_dir=False, git_params={"url": "repo"})
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"hpoptim: error: {path}: script_relative_path: 'job.py' does not exist at the "
        f"default HEAD (commit "
    ), err
    assert not (repo_without_script.parent / "results" / "t").exists()
