"""The job-side API (hpoptim.job), run in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHECKPOINTING_JOB = """\
import sys, time
from hpoptim import job

def save():
    with open("checkpoint.log", "a") as fh:
        fh.write("start\\n")
    time.sleep(0.5)
    with open("checkpoint.log", "a") as fh:
        fh.write("done\\n")

job.install_resume_handler(save)
open("ready", "w").close()
time.sleep(30)
sys.exit(1)
"""


@pytest.mark.parametrize("n_signals", [1, 2, 3], ids=["once", "twice", "three-times"])
def test_resume_handler_checkpoints_once_however_often_the_signal_comes(
    tmp_path: Path, n_signals: int
) -> None:
    (tmp_path / "job.py").write_text(CHECKPOINTING_JOB)
    proc = subprocess.Popen([sys.executable, "job.py"], cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for _ in range(n_signals):
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.1)  # the repeats arrive while the checkpoint is being written
    assert proc.wait(timeout=30) == 3
    assert (tmp_path / "checkpoint.log").read_text() == "start\ndone\n"


REPORTING_JOB = """\
import json, os
from hpoptim import job
os.umask(0o027)
job.report({"loss": 2.0, "acc": 0.5})
job.report({"loss": 1.0, "epoch": 3})
print(json.dumps(json.load(open(os.environ["HPOPTIM_METRICS_FILE"]))))
"""


def test_report_adds_to_what_was_reported_before_and_overwrites_repeated_names(
    tmp_path: Path,
) -> None:
    metrics = tmp_path / "metrics.json"
    env = {**os.environ, "HPOPTIM_METRICS_FILE": str(metrics)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.run(
        [sys.executable, "-c", REPORTING_JOB],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    expected = {"loss": 1.0, "acc": 0.5, "epoch": 3.0}
    assert json.loads(proc.stdout) == expected
    assert json.loads(metrics.read_text()) == expected
    assert metrics.stat().st_mode & 0o777 == 0o640  # as any new file under the job's umask
    recorded = json.loads((tmp_path / "job_env.json").read_text())  # for the provenance
    assert recorded["python"] == sys.version.split()[0]
    assert recorded["executable"] == sys.executable
