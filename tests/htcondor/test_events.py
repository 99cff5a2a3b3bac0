"""Events no stand-in fault produces (shadow exceptions, lost connections), written in
HTCondor's event log format and read back by ``htcondor2.JobEventLog`` as the launcher
reads them: each is one restart of the same attempt, up to ``max_restarts``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hpoptim.jobspec import JobPaths, JobSpec, JobState, JobStatus
from hpoptim.launchers.htcondor import HTCondorLauncher, HTCondorSettings
from hpoptim.launchers.htcondor.description import EVENT_LOG_NAME
from hpoptim.launchers.node import EXIT_FILE_NAME, exit_record
from hpoptim.launchers.slurm_commands import CommandResult

HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618>"
EVENTS = {
    "submitted": f"000 (007.000.000) 2026-12-05 01:00:00 Job submitted from host: {HOST}\n...\n",
    "executing": f"001 (007.000.000) 2026-12-05 01:00:01 Job executing on host: {HOST}\n...\n",
    "shadow": (
        "007 (007.000.000) 2026-12-05 01:00:02 Shadow exception!\n"
        "\tError from slot1@host: Failed to open output file\n"
        "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n...\n"
    ),
    "disconnected": (
        "022 (007.000.000) 2026-12-05 01:00:04 Job disconnected, attempting to reconnect\n"
        "    Socket between submit and execute hosts closed unexpectedly\n"
        "    Trying to reconnect to slot1@host <127.0.0.1:9618>\n...\n"
    ),
    "reconnect_failed": (
        "024 (007.000.000) 2026-12-05 01:00:05 Job reconnection failed\n"
        "    Job disconnected too long: JobLeaseDuration (2400 seconds) expired\n"
        "    Can not reconnect to slot1@host, rescheduling job\n...\n"
    ),
    "terminated": (
        "005 (007.000.000) 2026-12-05 01:00:09 Job terminated.\n"
        "\t(1) Normal termination (return value 3)\n"
        + "".join(
            f"\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  {k} Usage\n"
            for k in ("Run Remote", "Run Local", "Total Remote", "Total Local")
        )
        + "".join(
            f"\t0  -  {k} Bytes {d} By Job\n"
            for k in ("Run", "Total")
            for d in ("Sent", "Received")
        )
        + "...\n"
    ),
}


def no_commands(argv: object) -> CommandResult:
    raise AssertionError(f"no HTCondor command is needed here, ran {argv}")


def followed(tmp_path: Path, kinds: list[str], max_restarts: int) -> list[JobStatus]:
    """What a launcher re-attaching to job 7.0 reports after the log holds ``kinds``."""
    run_dir = tmp_path / "jobs" / "j"
    run_dir.mkdir(parents=True)
    (run_dir / EXIT_FILE_NAME).write_text(exit_record(3, False))
    work = tmp_path / "htcondor"
    work.mkdir()
    (work / EVENT_LOG_NAME).write_text("".join(EVENTS[k] for k in kinds))
    spec = JobSpec("j", (sys.executable, "-c", "pass"), run_dir, JobPaths(run_dir))
    settings = HTCondorSettings(max_restarts=max_restarts)
    with HTCondorLauncher(settings, work_dir=work, runner=no_commands) as launcher:
        assert launcher.reattach(spec, "7.0") is True
        return launcher.poll(0.0)


def test_shadow_exceptions_and_failed_reconnects_are_restarts(tmp_path: Path) -> None:
    kinds = ["submitted", "executing", "shadow", "executing", "disconnected", "reconnect_failed"]
    seen = followed(tmp_path, [*kinds, "executing", "terminated"], max_restarts=2)
    assert [s.state for s in seen] == [
        JobState.RUNNING,
        JobState.PENDING,
        JobState.RUNNING,
        JobState.PENDING,
        JobState.RUNNING,
        JobState.RESUME,  # the job side's record: exit 3
    ]
    assert "shadow exception: Error from slot1@host: Failed to open output file" in seen[1].reason
    assert "(1/2)" in seen[1].reason
    assert "reconnect failed" in seen[3].reason
    assert "(2/2)" in seen[3].reason
    assert (seen[-1].native_id, seen[-1].exit_code) == ("7.0", 3)


@pytest.mark.parametrize("last", ["shadow", "reconnect_failed"])
def test_one_restart_too_many_fails_the_attempt(tmp_path: Path, last: str) -> None:
    # the job would be removed: a command runner that removes nothing answers condor_rm
    kinds = ["submitted", "executing", last]
    removed: list[list[str]] = []

    def condor_rm(argv: list[str]) -> CommandResult:
        removed.append(list(argv))
        return CommandResult(0, "", "")

    run_dir = tmp_path / "jobs" / "j"
    run_dir.mkdir(parents=True)
    work = tmp_path / "htcondor"
    work.mkdir()
    (work / EVENT_LOG_NAME).write_text("".join(EVENTS[k] for k in [*kinds, "terminated"]))
    spec = JobSpec("j", (sys.executable, "-c", "pass"), run_dir, JobPaths(run_dir))
    launcher = HTCondorLauncher(HTCondorSettings(max_restarts=0), work_dir=work, runner=condor_rm)
    assert launcher.reattach(spec, "7.0") is True
    seen = launcher.poll(0.0)
    assert [s.state for s in seen] == [JobState.RUNNING, JobState.FAILED]
    assert "max_restarts" in seen[-1].reason
    assert removed == [["condor_rm", "7.0"]]
