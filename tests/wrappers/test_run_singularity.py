"""wrappers/run_singularity.py end to end through the container double."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeContainerRuntime

WRAPPER = Path(__file__).resolve().parents[2] / "wrappers" / "run_singularity.py"

INNER = """#!/usr/bin/env python3
import json, os, signal, sys, time
params = json.load(open(sys.argv[-1]))["params"]
print("inner stdout", json.dumps(sys.argv[1:]))
print("inner stderr", os.environ.get("HPOPTIM_JOB_ID"), file=sys.stderr)
mode = params["mode"]
if mode == "wait":
    def handler(signum, frame):
        open("got_signal", "w").write(str(signum))
        sys.exit(3)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGUSR1, handler)
    open("ready", "w").close()
    time.sleep(60)
sys.exit(int(mode))
"""


def _job(
    tmp_path: Path, image: Path, mode: str = "0", **singularity: Any
) -> tuple[list[str], dict[str, str], Path, Path]:
    work = tmp_path / "checkout dir"
    run_dir = tmp_path / "results" / "jobs" / "0" / "run_0.0-0"
    (work / "scripts").mkdir(parents=True)
    run_dir.mkdir(parents=True)
    script = work / "scripts" / "train.py"
    script.write_text(INNER, encoding="utf-8")
    script.chmod(0o755)
    settings = {"image": str(image), "script": "scripts/train.py", **singularity}
    params = run_dir / "params.json"
    data = {
        "params": {"singularity": settings, "mode": mode},
        "job": {"run_dir": str(run_dir)},
    }
    params.write_text(json.dumps(data), encoding="utf-8")
    env = {
        **os.environ,
        "HPOPTIM_PARAMS_FILE": str(params),
        "HPOPTIM_RUN_DIR": str(run_dir),
        "HPOPTIM_JOB_ID": "0_0.0-0",
    }
    argv = [sys.executable, str(WRAPPER), str(params)]
    return argv, env, work, run_dir


@pytest.mark.parametrize(
    ("mode", "settings", "expected"),
    [
        pytest.param("0", {}, 0, id="ok"),
        pytest.param("3", {}, 3, id="resume"),
        pytest.param("1", {}, 1, id="failure"),
        pytest.param("3", {"use_run": True, "cleanenv": True}, 3, id="run-cleanenv"),
        pytest.param("0", {"executable": "singularity", "containall": True}, 0, id="singularity"),
    ],
)
def test_exit_code_passes_through(
    mode: str,
    settings: dict[str, Any],
    expected: int,
    tmp_path: Path,
    fake_container_runtime: FakeContainerRuntime,
) -> None:
    argv, env, work, run_dir = _job(tmp_path, fake_container_runtime.image, mode, **settings)
    proc = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=60)
    assert proc.returncode == expected, proc.stderr
    call = fake_container_runtime.calls()[-1]["argv"]
    assert call[0] == settings.get("executable", "apptainer")
    assert call[1] == ("run" if settings.get("use_run") else "exec")
    assert call[-3:] == [
        str(fake_container_runtime.image),
        str(work / "scripts" / "train.py"),
        str(run_dir / "params.json"),
    ]
    assert ["--pwd", str(work)] == call[call.index("--pwd") : call.index("--pwd") + 2]
    assert "HPOPTIM_JOB_ID=0_0.0-0" in call


def test_inner_output_is_appended_to_the_job_logs(
    tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    argv, env, work, run_dir = _job(tmp_path, fake_container_runtime.image)
    (run_dir / "stdout.log").write_text("earlier\n", encoding="utf-8")
    for _ in range(2):
        subprocess.run(argv, env=env, cwd=work, check=True, capture_output=True, timeout=60)
    stdout = (run_dir / "stdout.log").read_text(encoding="utf-8").splitlines()
    stderr = (run_dir / "stderr.log").read_text(encoding="utf-8").splitlines()
    params = json.dumps([str(run_dir / "params.json")])
    assert stdout == ["earlier", f"inner stdout {params}", f"inner stdout {params}"]
    assert stderr == ["inner stderr 0_0.0-0"] * 2


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        pytest.param("missing-script", "does not exist", id="missing-script"),
        pytest.param("not-executable", "is not executable", id="not-executable"),
        pytest.param("missing-image", "singularity.image", id="missing-image"),
        pytest.param("no-settings", "no 'singularity' parameters", id="no-settings"),
        pytest.param("unknown-key", "unknown singularity parameter(s) imgae", id="typo"),
        pytest.param("no-runtime", "no container runtime", id="no-runtime"),
        pytest.param("colon-run-dir", "cannot bind", id="colon-in-run-dir"),
    ],
)
def test_setup_problems_fail_clearly(
    breakage: str, message: str, tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    argv, env, work, run_dir = _job(tmp_path, fake_container_runtime.image)
    script = work / "scripts" / "train.py"
    params = run_dir / "params.json"
    data = json.loads(params.read_text(encoding="utf-8"))
    if breakage == "missing-script":
        script.unlink()
    elif breakage == "not-executable":  # a .py file would run with the image's python3
        script.rename(script.with_suffix(".sh"))
        script.with_suffix(".sh").chmod(0o644)
        data["params"]["singularity"]["script"] = "scripts/train.sh"
    elif breakage == "missing-image":
        data["params"]["singularity"]["image"] = str(tmp_path / "gone.sif")
    elif breakage == "no-settings":
        del data["params"]["singularity"]
    elif breakage == "unknown-key":
        data["params"]["singularity"]["imgae"] = "x"
    elif breakage == "colon-run-dir":
        run_dir = run_dir.rename(run_dir.with_name("run:0"))
        params = run_dir / "params.json"
        env["HPOPTIM_PARAMS_FILE"], env["HPOPTIM_RUN_DIR"] = str(params), str(run_dir)
        argv[-1] = str(params)
    else:
        env["PATH"] = str(tmp_path)
    params.write_text(json.dumps(data), encoding="utf-8")
    proc = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78
    assert proc.stderr.startswith("run_singularity: ")
    assert message in proc.stderr
    assert fake_container_runtime.calls() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_time_limit_signals_reach_the_inner_process(
    sig: signal.Signals, tmp_path: Path, fake_container_runtime: FakeContainerRuntime
) -> None:
    argv, env, work, _ = _job(tmp_path, fake_container_runtime.image, "wait")
    proc = subprocess.Popen(argv, env=env, cwd=work)
    try:
        deadline = time.monotonic() + 30
        while not (work / "ready").exists():
            assert time.monotonic() < deadline, "inner process did not start"
            assert proc.poll() is None, "wrapper exited early"
            time.sleep(0.02)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 3
    finally:
        proc.kill()
        proc.wait()
    assert (work / "got_signal").read_text() == str(int(sig))
