"""What HTCondor does to jobs that the other launchers never see: evictions, holds,
an unreachable schedd, jobs that vanish; each injected into the stand-in pool."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import LaunchError
from hpoptim.jobspec import JobPaths, JobResources, JobSpec, JobState, JobStatus
from hpoptim.launchers.htcondor import HTCondorLauncher, HTCondorSettings
from hpoptim.launchers.htcondor.schedd import CommandResult, run_command
from tests.htcondor.conftest import FakeCondor

WAIT_S = 30.0
# appends its pid to 'starts', then waits for the file 'go' next to its run dir
WAIT_FOR_GO = (
    "import os, pathlib, sys, time\n"
    "d = pathlib.Path(os.environ['RUN_DIR'])\n"
    "d.joinpath('starts').open('a').write(f'{os.getpid()}\\n')\n"
    "while not d.parent.joinpath('go').exists(): time.sleep(0.02)\n"
)


def job(tmp_path: Path, job_id: str, body: str = WAIT_FOR_GO) -> JobSpec:
    run_dir = tmp_path / "jobs" / job_id
    run_dir.mkdir(parents=True)
    return JobSpec(
        job_id=job_id,
        argv=(sys.executable, "-c", body),
        cwd=run_dir,
        paths=JobPaths(run_dir),
        env={"RUN_DIR": str(run_dir)},
    )


def launcher(tmp_path: Path, **settings: Any) -> HTCondorLauncher:
    options = {"queue_check_interval_s": 0.5, "outage_tolerance_s": 10.0, **settings}
    return HTCondorLauncher(
        HTCondorSettings(**options), work_dir=tmp_path / "htcondor", cancel_on_close=True
    )


def starts(spec: JobSpec) -> int:
    path = spec.paths.run_dir / "starts"
    return len(path.read_text().split()) if path.exists() else 0


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def poll_until(condor_launcher: HTCondorLauncher, done: Any, what: str) -> list[JobStatus]:
    """Poll, collecting every status, until ``done(statuses)``."""
    seen: list[JobStatus] = []
    deadline = time.monotonic() + WAIT_S
    while not done(seen):
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {seen}"
        seen += condor_launcher.poll(0.1)
    return seen


def terminal(seen: list[JobStatus]) -> list[JobStatus]:
    return [s for s in seen if s.state.is_terminal]


def test_an_evicted_job_restarts_as_the_same_attempt(tmp_path: Path, condor: FakeCondor) -> None:
    spec = job(tmp_path, "j")
    with launcher(tmp_path) as hc:
        native = hc.submit([spec])["j"]
        wait_for(lambda: starts(spec) == 1, "the job to start")
        condor.inject("evict", native)
        seen = poll_until(hc, lambda s: any(x.state is JobState.PENDING for x in s), "eviction")
        pending = [x for x in seen if x.state is JobState.PENDING]
        assert "evicted" in pending[0].reason
        assert "(1/3)" in pending[0].reason
        wait_for(lambda: starts(spec) == 2, "HTCondor to start it again")
        (tmp_path / "jobs" / "go").touch()
        seen = poll_until(hc, terminal, "the job's end")
    assert [(s.state, s.native_id) for s in terminal(seen)] == [(JobState.COMPLETED, native)]
    assert len(condor.submit_calls()) == 1


def test_a_job_evicted_more_than_max_restarts_fails_and_leaves_the_queue(
    tmp_path: Path, condor: FakeCondor
) -> None:
    spec = job(tmp_path, "j")
    with launcher(tmp_path, max_restarts=0) as hc:
        native = hc.submit([spec])["j"]
        wait_for(lambda: starts(spec) == 1, "the job to start")
        condor.inject("evict", native)
        seen = poll_until(hc, terminal, "the job's end")
        assert terminal(seen)[0].state is JobState.FAILED
        assert "max_restarts" in terminal(seen)[0].reason
        wait_for(lambda: native not in condor.queue(), "the job to leave the queue")
    assert condor.state()["history"][-1]["JobStatus"] == 3  # removed, not completed


def test_a_held_job_fails_with_the_hold_reason_and_is_removed(
    tmp_path: Path, condor: FakeCondor
) -> None:
    spec = job(tmp_path, "j")
    with launcher(tmp_path) as hc:
        native = hc.submit([spec])["j"]
        wait_for(lambda: starts(spec) == 1, "the job to start")
        condor.inject("hold", native, "Disk quota exceeded on the execute node")
        seen = poll_until(hc, terminal, "the job's end")
        (status,) = terminal(seen)
        assert status.state is JobState.FAILED
        assert "held by HTCondor: Disk quota exceeded on the execute node" in status.reason
        wait_for(lambda: native not in condor.queue(), "the held job to be removed")
        hc.poll(0.3)  # the removal's aborted event is not reported again


def test_a_vanished_job_is_lost(tmp_path: Path, condor: FakeCondor) -> None:
    spec = job(tmp_path, "j")
    with launcher(tmp_path) as hc:
        native = hc.submit([spec])["j"]
        wait_for(lambda: starts(spec) == 1, "the job to start")
        condor.inject("vanish", native)
        seen = poll_until(hc, terminal, "the job's end")
    assert [s.state for s in terminal(seen)] == [JobState.LOST]
    assert "vanished" in terminal(seen)[0].reason


def test_a_schedd_outage_is_waited_out_while_the_log_is_read(
    tmp_path: Path, condor: FakeCondor
) -> None:
    first, second = job(tmp_path, "a", "pass"), job(tmp_path, "b", "pass")
    with launcher(tmp_path) as hc:
        hc.submit([first])
        wait_for(lambda: (first.paths.run_dir / "slurm_exit_status").exists(), "a to end")
        condor.inject("outage", value=3.0)
        hc.submit([second])  # retried until the schedd answers again
        assert hc.n_calls["condor_submit"] >= 2
        seen = poll_until(hc, lambda s: len(terminal(s)) == 2, "both ends")
    assert {s.job_id: s.state for s in seen} == {
        "a": JobState.COMPLETED,
        "b": JobState.COMPLETED,
    }


def test_an_outage_longer_than_the_tolerance_fails_the_submission(
    tmp_path: Path, condor: FakeCondor
) -> None:
    condor.inject("outage", value=30)
    with launcher(tmp_path, outage_tolerance_s=1.0) as hc:
        start = time.monotonic()
        with pytest.raises(LaunchError, match="Failed to connect"):
            hc.submit([job(tmp_path, "j", "pass")])
        assert time.monotonic() - start >= 1.0  # retried for the whole tolerance
    assert condor.queue() == {}


def test_a_submission_whose_answer_was_lost_is_not_sent_again(
    tmp_path: Path, condor: FakeCondor
) -> None:
    specs = [job(tmp_path, f"j{i}", "pass") for i in range(2)]
    condor.inject("lose_reply")
    with launcher(tmp_path) as hc:
        native = hc.submit(specs)
        seen = poll_until(hc, lambda s: len(terminal(s)) == 2, "the jobs' ends")
        assert hc.n_calls["condor_submit"] == 1  # condor_q found the jobs queued
        assert hc.n_calls["condor_q"] >= 1
    assert native == {"j0": "1.0", "j1": "1.1"}
    assert [c["count"] for c in condor.submit_calls()] == [2]
    assert {s.state for s in terminal(seen)} == {JobState.COMPLETED}


def test_one_submit_call_per_batch_with_jobs_cluster_dot_proc(
    tmp_path: Path, condor: FakeCondor
) -> None:
    specs = [job(tmp_path, f"j{i}", "import sys; sys.exit(int(sys.argv[1]))") for i in range(5)]
    specs = [
        JobSpec(s.job_id, (*s.argv, str(i % 2 * 3)), s.cwd, s.paths, s.env)
        for i, s in enumerate(specs)
    ]
    with launcher(tmp_path, queue_check_interval_s=300.0) as hc:
        native = hc.submit(specs)
        seen = poll_until(hc, lambda s: len(terminal(s)) == 5, "the jobs' ends")
    assert hc.n_calls == {"condor_submit": 1}  # and no condor_q: the log told everything
    assert native == {f"j{i}": f"1.{i}" for i in range(5)}
    assert {s.job_id: s.state for s in terminal(seen)} == {
        f"j{i}": JobState.RESUME if i % 2 else JobState.COMPLETED for i in range(5)
    }
    (call,) = condor.submit_calls()
    assert call["count"] == 5
    assert call["bid"] is None


def test_cancel_removes_whole_clusters_in_one_call(tmp_path: Path, condor: FakeCondor) -> None:
    calls: list[list[str]] = []

    def recording(argv: Sequence[str]) -> CommandResult:
        calls.append(list(argv))
        return run_command(argv)

    specs = [job(tmp_path, f"j{i}") for i in range(4)]
    settings = HTCondorSettings(queue_check_interval_s=300.0)
    with HTCondorLauncher(settings, work_dir=tmp_path / "htcondor", runner=recording) as hc:
        hc.submit(specs[:3])
        hc.submit(specs[3:])
        wait_for(lambda: all(starts(s) == 1 for s in specs), "the jobs to start")
        hc.cancel(["j0", "j1", "j2", "j3"])
        seen = poll_until(hc, lambda s: len(terminal(s)) == 4, "the jobs' ends")
        hc.submit([job(tmp_path, "k0"), job(tmp_path, "k1")])
        hc.cancel(["k1"])
        seen += poll_until(hc, lambda s: any(x.job_id == "k1" for x in terminal(s)), "k1's end")
        hc.cancel()
        poll_until(hc, terminal, "k0's end")
    removals = [c[1:] for c in calls if c[0] == "condor_rm"]
    assert removals == [["1", "2"], ["3.1"], ["3.0"]]
    assert {s.state for s in terminal(seen)} == {JobState.CANCELLED}
    assert condor.queue() == {}


def test_a_refused_submission_fails_its_jobs_and_keeps_the_others(
    tmp_path: Path, condor: FakeCondor
) -> None:
    def second_refused(argv: Sequence[str]) -> CommandResult:
        if argv[0] == "condor_submit" and condor.submit_calls():
            return CommandResult(1, "", "ERROR: the schedd refused the submission")
        return run_command(argv)

    small = job(tmp_path, "small", "pass")
    big = dataclasses.replace(
        job(tmp_path, "big", "pass"), resources=JobResources(n_cpus_per_job=2)
    )
    with HTCondorLauncher(work_dir=tmp_path / "htcondor", runner=second_refused) as hc:
        native = hc.submit([small, big])
        seen = poll_until(hc, lambda s: len(terminal(s)) == 2, "both ends")
        with pytest.raises(LaunchError, match="refused"):  # nothing went through: raised
            hc.submit([job(tmp_path, "later", "pass")])
    assert native == {"small": "1.0", "big": ""}
    states = {s.job_id: (s.state, s.reason) for s in terminal(seen)}
    assert states["small"] == (JobState.COMPLETED, "")
    assert states["big"][0] is JobState.FAILED
    assert "the schedd refused the submission" in states["big"][1]


def test_a_bid_submits_through_condor_submit_bid(tmp_path: Path, condor: FakeCondor) -> None:
    with launcher(tmp_path, bid=25) as hc:
        hc.submit([job(tmp_path, "j", "pass")])
        poll_until(hc, terminal, "the job's end")
    assert hc.n_calls["condor_submit_bid"] == 1
    assert [c["bid"] for c in condor.submit_calls()] == [25]


def test_a_driver_that_died_before_noting_the_cluster_finds_its_jobs_by_tag(
    tmp_path: Path, condor: FakeCondor
) -> None:
    spec = job(tmp_path, "j")
    first = launcher(tmp_path)
    native = first.submit([spec])["j"]
    wait_for(lambda: starts(spec) == 1, "the job to start")
    first.detach()
    manifest = tmp_path / "htcondor" / "j.json"  # as if killed right after condor_submit
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "cluster": None}))
    with launcher(tmp_path) as later:
        assert later.reattach(spec, "") is True
        (tmp_path / "jobs" / "go").touch()
        seen = poll_until(later, terminal, "the job's end")
    assert [(s.state, s.native_id) for s in terminal(seen)] == [(JobState.COMPLETED, native)]
    assert starts(spec) == 1
    assert len(condor.submit_calls()) == 1


def test_stop_leftovers_removes_the_runs_queued_jobs(tmp_path: Path, condor: FakeCondor) -> None:
    specs = [job(tmp_path, f"j{i}") for i in range(3)]
    hc = launcher(tmp_path)
    hc.submit(specs)
    hc.detach()
    assert HTCondorLauncher.stop_leftovers(tmp_path / "htcondor") == 3
    assert condor.queue() == {}
    assert HTCondorLauncher.stop_leftovers(tmp_path / "htcondor") == 0
