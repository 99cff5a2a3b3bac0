"""The launcher's ``sacct`` path against the real cluster's accounting (slurmdbd + MariaDB).

One set of real jobs ends in every way a job can end: completed, failed, killed by a
signal, cancelled while running, cancelled before it started, and killed at its time
limit. The jobs' exit status files are then removed (the time-limit and the never-started
jobs left none), so only Slurm can tell how they ended: first what ``sacct`` prints for
them is parsed, then, once slurmctld has forgotten them (``MinJobAge``), the launcher that
submitted them and a later one that re-attaches to them must learn their ends from
``sacct`` alone.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import ANY

import pytest

from hpoptim.jobspec import JobPaths, JobResources, JobSpec, JobState, JobStatus
from hpoptim.launchers.node import EXIT_FILE_NAME
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions, run_command
from hpoptim.launchers.slurm_states import (
    ACTIVE_STATES,
    parse_sacct,
    sacct_argv,
    terminal_status,
)

pytestmark = pytest.mark.slurm

PRELUDE = "import os, signal, sys, time\nfrom pathlib import Path\n"
STARTED = "Path(os.environ['RUN_DIR'], 'started').write_text('')\n"
#: Slurm's time limits come in whole minutes; its timer kills the job 60-90 s in.
TIME_LIMIT_MIN = 1.0
#: slurmctld forgets a job MinJobAge (60 s) after its end, on a timer that runs every 60 s.
FORGET_S = 180.0

#: job -> (body, sacct's state, sacct's wait status, hpoptim's (state, exit code, signal)).
#: ANY is a value the job's end does not decide (Slurm's status of a job it cancelled), or
#: that sacct loses: the batch script turns a job's death by signal N into its exit status
#: 128 + N, which sacct prints as N (see parse_sacct).
JOBS: dict[str, tuple[str, str, object, tuple[JobState, object, object]]] = {
    "completed": ("pass", "COMPLETED", 0, (JobState.COMPLETED, 0, None)),
    "failed": ("sys.exit(5)", "FAILED", 5 << 8, (JobState.FAILED, 5, None)),
    "killed": (
        "os.kill(os.getpid(), signal.SIGKILL)",
        "FAILED",
        signal.SIGKILL << 8,
        (JobState.FAILED, ANY, ANY),
    ),
    "cancelled": (STARTED + "time.sleep(600)", "CANCELLED", ANY, (JobState.CANCELLED, ANY, ANY)),
    "held": ("pass", "CANCELLED", ANY, (JobState.CANCELLED, ANY, ANY)),
    # ignores SIGTERM: the time limit's SIGKILL ends it and its batch shell alike
    "timeout": (
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + STARTED + "time.sleep(600)",
        "TIMEOUT",
        0,  # not the job's status: Slurm killed it
        (JobState.TIMEOUT, ANY, ANY),
    ),
}
IN_ARRAY = {"completed", "failed", "killed", "cancelled"}


@dataclass
class Ended:
    """The jobs of :data:`JOBS`, ended, with the launchers that submitted them."""

    specs: dict[str, JobSpec]
    natives: dict[str, str]
    names: dict[str, str]  # the Slurm job name of each
    launchers: list[SlurmLauncher]
    root: Path


def options(root: Path, **extra: object) -> SlurmOptions:
    return SlurmOptions(
        poll_interval_s=0.5,
        max_poll_interval_s=2.0,
        script_dir=root,
        job_name_prefix="sacct",
        **extra,  # type: ignore[arg-type]
    )


def make_spec(root: Path, job: str) -> JobSpec:
    run_dir = root / "jobs" / job
    run_dir.mkdir(parents=True)
    limit = TIME_LIMIT_MIN if job == "timeout" else None
    return JobSpec(
        job_id=job,
        argv=(sys.executable, "-c", PRELUDE + JOBS[job][0]),
        cwd=root,  # one for all: jobs alike go out as one job array
        paths=JobPaths(run_dir),
        env={"RUN_DIR": str(run_dir)},
        resources=JobResources(time_limit_min=limit, signal_lead_s=5.0),
    )


def squeue_states(natives: list[str]) -> dict[str, str]:
    """The Slurm state of each of ``natives`` that slurmctld still knows."""
    arrays = sorted({n.split("_")[0] for n in natives}, key=int)
    argv = ["squeue", "--noheader", "--array", "--states=all", "--Format=JobArrayID:|,State:"]
    out = run_command([*argv, f"--jobs={','.join(arrays)}"]).stdout
    rows = dict(line.replace(" ", "").split("|")[:2] for line in out.splitlines() if "|" in line)
    return {n: rows[n] for n in natives if n in rows}


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(0.5)


def job_names(script_dirs: list[Path]) -> dict[str, str]:
    """Each job's Slurm job name, from the launchers' manifests."""
    names = {}
    for path in (p for d in script_dirs for p in d.glob("*.json")):
        manifest = json.loads(path.read_text())
        names.update(dict.fromkeys(manifest["jobs"], manifest["name"]))
    return names


@pytest.fixture(scope="module")
def ended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ended]:
    root = tmp_path_factory.mktemp("sacct")
    specs = {job: make_spec(root, job) for job in JOBS}
    launcher = SlurmLauncher(options(root / "slurm"))
    held = SlurmLauncher(options(root / "slurm-held", extra_sbatch_options=("--hold",)))
    natives = launcher.submit([s for job, s in specs.items() if job != "held"])
    natives.update(held.submit([specs["held"]]))
    all_natives = list(natives.values())
    try:
        assert all("_" in natives[job] for job in IN_ARRAY), "jobs alike: one job array"
        wait_until(lambda: (specs["cancelled"].paths.run_dir / "started").exists(), 60, "start")
        held_pending = {natives["held"]: "PENDING"}
        wait_until(lambda: squeue_states([natives["held"]]) == held_pending, 30, "held job")
        # from outside, as a user would: the launchers did not cancel them
        run_command(["scancel", natives["cancelled"], natives["held"]])

        def all_ended() -> bool:  # those slurmctld already forgot ended long ago
            return not set(squeue_states(all_natives).values()) & ACTIVE_STATES

        wait_until(all_ended, 150, "the jobs' ends")
        assert not (specs["timeout"].paths.run_dir / EXIT_FILE_NAME).exists()
        assert not (specs["held"].paths.run_dir / EXIT_FILE_NAME).exists()
        for spec in specs.values():  # only Slurm knows how they ended from here on
            (spec.paths.run_dir / EXIT_FILE_NAME).unlink(missing_ok=True)
        names = job_names([root / "slurm", root / "slurm-held"])
        yield Ended(specs, natives, names, [launcher, held], root)
    finally:
        run_command(["scancel", *all_natives])


def accounted(natives: list[str]) -> dict[str, tuple[str, int | None, str]]:
    """sacct's rows of ``natives`` once it has every one's end (slurmdbd lags a little)."""
    rows: dict[str, tuple[str, int | None, str]] = {}

    def complete() -> bool:
        result = run_command(sacct_argv(natives))
        assert result.returncode == 0, result.stderr
        rows.update(parse_sacct(result.stdout))
        return all(n in rows and rows[n][0] not in ACTIVE_STATES for n in natives)

    wait_until(complete, 30, "sacct to know the jobs' ends")
    return rows


def test_sacct_output_of_real_jobs_is_parsed(ended: Ended) -> None:
    rows = accounted(list(ended.natives.values()))
    got = {job: rows[n] for job, n in ended.natives.items()}
    assert got == {job: (want[1], want[2], ended.names[job]) for job, want in JOBS.items()}


def test_sacct_rows_decide_how_jobs_without_an_exit_status_ended(ended: Ended) -> None:
    rows = accounted(list(ended.natives.values()))
    for job, (*_, want) in JOBS.items():
        native = ended.natives[job]
        status = terminal_status(ended.specs[job], native, rows[native][0], rows[native][1])
        assert (status.state, status.exit_code, status.signal) == want, job


@pytest.fixture(scope="module")
def forgotten(ended: Ended) -> Ended:
    """The jobs, once slurmctld has forgotten them (squeue no longer lists them)."""
    natives = list(ended.natives.values())
    wait_until(lambda: not squeue_states(natives), FORGET_S, "slurmctld to forget the jobs")
    return ended


def statuses_of(launcher: SlurmLauncher, jobs: set[str]) -> dict[str, JobStatus]:
    """Poll ``launcher`` until each of ``jobs`` ended; fail on a job reported twice."""
    got: dict[str, JobStatus] = {}
    deadline = time.monotonic() + 30.0
    while set(got) != jobs:
        assert time.monotonic() < deadline, f"no end reported for {jobs - set(got)}"
        for status in launcher.poll(0.5):
            assert status.state.is_terminal, status  # they ended long ago
            assert status.job_id not in got, f"reported twice: {status}"
            got[status.job_id] = status
    return got


def outcomes(statuses: dict[str, JobStatus]) -> dict[str, tuple[JobState, object, object]]:
    return {j: (s.state, s.exit_code, s.signal) for j, s in statuses.items()}


def test_the_submitting_launcher_learns_forgotten_jobs_ends_from_sacct(forgotten: Ended) -> None:
    launcher, held = forgotten.launchers
    reported = statuses_of(launcher, set(JOBS) - {"held"}) | statuses_of(held, {"held"})
    assert outcomes(reported) == {job: want[3] for job, want in JOBS.items()}
    assert launcher.n_calls["sacct"] >= 1
    assert held.n_calls["sacct"] >= 1
    assert reported["cancelled"].reason == "cancelled with scancel"
    assert reported["timeout"].reason.startswith("timeout")


def test_a_later_driver_reattaches_to_forgotten_jobs_through_sacct(forgotten: Ended) -> None:
    later = SlurmLauncher(options(forgotten.root / "slurm"))
    later_held = SlurmLauncher(options(forgotten.root / "slurm-held"))
    for job, spec in forgotten.specs.items():
        chosen = later_held if job == "held" else later
        assert chosen.reattach(spec, forgotten.natives[job]) is True, job
    reported = statuses_of(later, set(JOBS) - {"held"}) | statuses_of(later_held, {"held"})
    assert outcomes(reported) == {job: want[3] for job, want in JOBS.items()}


def test_a_job_id_sacct_knows_under_another_name_is_not_reattached(
    forgotten: Ended, tmp_path: Path
) -> None:
    """Slurm gave the id out again (its controller lost its state): not this run's job."""
    script_dir = tmp_path / "slurm"
    script_dir.mkdir()
    manifest = {"name": "sacct-other-run", "array": False, "jobs": ["held"]}
    (script_dir / "held.json").write_text(json.dumps(manifest))
    later = SlurmLauncher(options(script_dir))
    assert later.reattach(make_spec(tmp_path, "held"), forgotten.natives["held"]) is False
    assert later.n_calls["sacct"] == 1
