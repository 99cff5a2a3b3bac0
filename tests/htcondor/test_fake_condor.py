"""The stand-in HTCondor refuses what ``condor_submit`` refuses and isolates what the pool
isolates, so the launcher's tests against it can fail where a real pool would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.htcondor.conftest import FakeCondor

GOOD = {
    "universe": "vanilla",
    "executable": sys.executable,
    "arguments": "\"'-c' 'import os, sys; print(sys.argv)'\"",
    "output": "OUT/$(Process).out",
    "error": "OUT/$(Process).err",
    "log": "OUT/events.log",
    "+HpoptimRun": '"k"',
    "request_cpus": "1",
}


def arguments(*args: str) -> str:
    """HTCondor's new ``arguments`` syntax: each argument single-quoted, ' doubled."""
    return '"' + " ".join("'" + a.replace("'", "''") + "'" for a in args) + '"'


def submit(
    tmp_path: Path, commands: dict[str, str], queue: str = "queue 1"
) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    text = "".join(f"{k} = {v.replace('OUT', str(out))}\n" for k, v in commands.items())
    (tmp_path / "job.sub").write_text(text + queue + "\n")
    return subprocess.run(
        ["condor_submit", str(tmp_path / "job.sub")], capture_output=True, text=True, check=False
    )


@pytest.mark.usefixtures("condor")
@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(
            {"executable": "/no/such/program"},
            "Executable file /no/such/program does not exist",
            id="no-executable",
        ),
        pytest.param(
            {"universe": "vanila"}, "don't know about the 'vanila' universe", id="universe"
        ),
        pytest.param(
            {"requirements": 'Machine == "a" &&'}, "Parse error in expression", id="requirements"
        ),
        pytest.param({"+HpoptimRun": "k k"}, "Parse error in expression", id="custom-attribute"),
        pytest.param({"request_cpus": "two"}, "request_cpus = two is not an integer", id="request"),
        pytest.param(
            {"concurrency_limits": "user.a:b:c"}, "Invalid concurrency limit", id="limits"
        ),
        pytest.param({"arguments": '"\'unbalanced"'}, "mismatched single quote", id="arguments"),
        pytest.param({"log": "/no/such/dir/events.log"}, "Invalid log file", id="log-dir"),
        pytest.param({"output": "OUT/$(Node).out"}, "undefined macro $(Node)", id="macro"),
    ],
)
def test_condor_submit_refuses_what_htcondor_refuses(
    tmp_path: Path, change: dict[str, str], error: str
) -> None:
    proc = submit(tmp_path, {**GOOD, **change})
    assert proc.returncode == 1
    assert error in proc.stderr


def test_an_unused_line_draws_condor_submits_warning(tmp_path: Path, condor: FakeCondor) -> None:
    proc = submit(tmp_path, {**GOOD, "request_cpu": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: the line 'request_cpu = 2' was unused by condor_submit" in proc.stderr


def test_jobs_share_the_slots_by_request_cpus(tmp_path: Path, condor: FakeCondor) -> None:
    go = tmp_path / "go"
    body = (
        "import os, pathlib, sys, time; d = pathlib.Path(sys.argv[1]); "
        "d.joinpath(os.environ.get('N', 'x') + str(os.getpid())).touch(); "
        f"[time.sleep(0.02) for _ in iter(lambda: pathlib.Path({str(go)!r}).exists(), True)]"
    )
    started = tmp_path / "started"
    started.mkdir()
    job = {**GOOD, "request_cpus": "4", "arguments": arguments("-c", body, str(started))}
    assert submit(tmp_path, job, "queue 3").returncode == 0  # 3 x 4 CPUs on 8 slots
    deadline = time.monotonic() + 20
    while len(list(started.iterdir())) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    states = sorted(ad["JobStatus"] for ad in condor.queue().values())
    assert states == [1, 2, 2]  # one waits idle for a slot
    go.touch()
    while condor.queue():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert len(list(started.iterdir())) == 3


@pytest.mark.parametrize("getenv", [True, False])
def test_jobs_get_the_submitters_environment_only_with_getenv(
    tmp_path: Path, condor: FakeCondor, monkeypatch: pytest.MonkeyPatch, getenv: bool
) -> None:
    monkeypatch.setenv("FROM_SUBMITTER", "yes")
    body = "import json, os, sys; open(sys.argv[1], 'w').write(json.dumps(dict(os.environ)))"
    seen = tmp_path / "env.json"
    job = {**GOOD, "getenv": str(getenv), "arguments": arguments("-c", body, str(seen))}
    assert submit(tmp_path, job).returncode == 0
    deadline = time.monotonic() + 20
    while condor.queue() or not seen.exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert ("FROM_SUBMITTER" in json.loads(seen.read_text())) is getenv


def test_condor_q_answers_in_htcondor_attribute_names(tmp_path: Path, condor: FakeCondor) -> None:
    job = {
        **GOOD,
        "arguments": arguments("-c", "import time; time.sleep(30)"),
        "batch_name": '"b-1"',
    }
    assert submit(tmp_path, job, "queue 2").returncode == 0
    query = ["condor_q", "-json", "-constraint", 'HpoptimRun == "k" && ProcId == 1']
    ads = json.loads(subprocess.run(query, capture_output=True, text=True, check=True).stdout)
    assert [(a["ClusterId"], a["ProcId"], a["JobBatchName"], a["HpoptimRun"]) for a in ads] == [
        (1, 1, "b-1", "k")
    ]
    none = subprocess.run(
        ["condor_q", "-json", "-constraint", 'HpoptimRun == "other"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert none.stdout == ""  # no match: no output at all, as HTCondor prints
    subprocess.run(["condor_rm", "1"], check=True, capture_output=True)
