"""Faults on the real Grid Engine: jobs in an error state, killed at h_rt, and daemons
(execd, qmaster) that die under running jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpoptim.jobspec import JobPaths, JobResources, JobSpec, JobState, JobStatus
from hpoptim.launchers.node import EXIT_FILE_NAME
from hpoptim.launchers.sge import SgeLauncher, SgeOptions
from hpoptim.launchers.sge.states import parse_qstat

pytestmark = pytest.mark.sge

INFRA = Path(__file__).resolve().parents[1] / "infra"
SPOOL = Path("/var/spool/gridengine")


def make_launcher(tmp_path: Path, **options: object) -> SgeLauncher:
    settings = SgeOptions(
        poll_interval_s=0.5,
        max_poll_interval_s=1.0,
        script_dir=tmp_path / "sge",
        job_name_prefix="faults",
        **options,  # type: ignore[arg-type]
    )
    return SgeLauncher(settings, cancel_on_close=True)


def spec(tmp_path: Path, body: str, *, timeout_min: float | None = None) -> JobSpec:
    run_dir = tmp_path / "jobs" / "j"
    run_dir.mkdir(parents=True)
    code = (
        "import os, signal, sys, time\nfrom pathlib import Path\n"
        "run = Path(os.environ['RUN_DIR'])\n"
        "run.joinpath('started').write_text(str(os.getpid()))\n" + body
    )
    return JobSpec(
        job_id="j",
        argv=(sys.executable, "-c", code),
        cwd=run_dir,
        paths=JobPaths(run_dir),
        env={"RUN_DIR": str(run_dir)},
        resources=JobResources(time_limit_min=timeout_min, signal_lead_s=2.0),
    )


WAIT_FOR_GO = "while not run.joinpath('go').exists(): time.sleep(0.1)\n"


def wait_for(path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def until_ended(launcher: SgeLauncher, timeout_s: float = 90.0) -> list[JobStatus]:
    """Every status until job ``j`` ended, then a quiet poll (nothing may follow)."""
    seen: list[JobStatus] = []
    deadline = time.monotonic() + timeout_s
    while not any(s.state.is_terminal for s in seen):
        assert time.monotonic() < deadline, f"job still running: {seen}"
        seen += launcher.poll(0.5)
    assert launcher.poll(1.0) == []
    return seen


def in_qstat(native: str) -> bool:
    out = subprocess.run(["qstat", "-xml", "-g", "d"], capture_output=True, text=True).stdout
    return native in parse_qstat(out)


def daemon_pid(pattern: str) -> int:
    [pidfile] = SPOOL.glob(pattern)
    return int(pidfile.read_text())


def kill_and_wait(pid: int, signum: int) -> None:
    os.kill(pid, signum)
    deadline = time.monotonic() + 60
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"process {pid} survived signal {signum}"
        time.sleep(0.1)


@pytest.fixture
def restart_daemons() -> Iterator[None]:
    """Whatever a test killed is started again (sge_up.sh is idempotent)."""
    yield
    subprocess.run(["bash", str(INFRA / "sge_up.sh")], check=True, capture_output=True)


def test_job_in_error_state_fails_with_the_reason_and_is_deleted(tmp_path: Path) -> None:
    job = spec(tmp_path, "pass")
    job = JobSpec(**{**job.__dict__, "cwd": tmp_path / "no such dir"})
    with make_launcher(tmp_path) as launcher:
        native = launcher.submit([job])["j"]
        statuses = until_ended(launcher)
    final = statuses[-1]
    assert final.state is JobState.FAILED
    assert "Eqw" in final.reason
    assert "no such dir" in final.reason  # Grid Engine's own words: can't chdir to ...
    assert not in_qstat(native)


def test_job_that_ignores_the_signal_is_killed_at_h_rt(tmp_path: Path) -> None:
    body = "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"
    job = spec(tmp_path, body, timeout_min=0.1)
    start = time.monotonic()
    with make_launcher(tmp_path) as launcher:
        launcher.submit([job])
        statuses = until_ended(launcher)
    final = statuses[-1]
    assert final.state is JobState.TIMEOUT, final
    assert "h_rt" in final.reason  # qacct: failed 37, qmaster enforced h_rt
    assert not (job.paths.run_dir / EXIT_FILE_NAME).exists()  # killed with its script
    assert time.monotonic() - start < 40


def wait_until_gone(native: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while in_qstat(native):
        assert time.monotonic() < deadline, f"task {native} is still in qstat"
        time.sleep(0.2)


def restart_execd() -> None:
    """Kill the execd and start the daemons again: a new execd registers at once (one
    that outlived a qmaster restart takes about 30 s to find it again)."""
    kill_and_wait(daemon_pid("execd/*/execd.pid"), signal.SIGKILL)
    subprocess.run(["bash", str(INFRA / "sge_up.sh")], check=True, capture_output=True)


@pytest.mark.usefixtures("restart_daemons")
def test_job_ends_while_its_execd_is_dead(tmp_path: Path) -> None:
    job = spec(tmp_path, WAIT_FOR_GO)
    with make_launcher(tmp_path) as launcher:
        native = launcher.submit([job])["j"]
        wait_for(job.paths.run_dir / "started")
        kill_and_wait(daemon_pid("execd/*/execd.pid"), signal.SIGKILL)
        assert not any(s.state.is_terminal for s in launcher.poll(1.5))  # it runs on
        (job.paths.run_dir / "go").touch()
        # its end is known from its exit status file, without the execd
        statuses = until_ended(launcher)
        assert in_qstat(native)  # Grid Engine does not know yet
        subprocess.run(["bash", str(INFRA / "sge_up.sh")], check=True, capture_output=True)
        wait_until_gone(native)  # the new execd reports the end it missed
        assert launcher.poll(0.5) == []
    assert [s.state for s in statuses if s.state.is_terminal] == [JobState.COMPLETED]


@pytest.mark.usefixtures("restart_daemons")
def test_qmaster_restart_does_not_end_the_run(tmp_path: Path) -> None:
    job = spec(tmp_path, WAIT_FOR_GO)
    with make_launcher(tmp_path) as launcher:
        native = launcher.submit([job])["j"]
        wait_for(job.paths.run_dir / "started")
        kill_and_wait(daemon_pid("qmaster/qmaster.pid"), signal.SIGKILL)
        calls = launcher.n_calls["qstat"]
        for _ in range(3):  # polls while the qmaster is down: warnings, no news
            assert launcher.poll(0.6) == []
        assert launcher.n_calls["qstat"] >= calls + 2
        (job.paths.run_dir / "go").touch()
        statuses = until_ended(launcher)  # from its exit status file, qmaster or not
        restart_execd()  # starts the qmaster again too
        wait_until_gone(native)
        assert launcher.poll(0.5) == []
    assert [s.state for s in statuses if s.state.is_terminal] == [JobState.COMPLETED]


def test_array_limit_is_read_from_the_cluster() -> None:
    shown = subprocess.run(["qconf", "-sconf"], capture_output=True, text=True, check=True).stdout
    values = dict(line.split(None, 1) for line in shown.splitlines() if line.startswith("max_aj"))
    want = min(int(v) for v in values.values() if int(v) > 0)
    assert SgeLauncher().array_limit() == want
