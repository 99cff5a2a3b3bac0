"""Nothing lost, nothing run twice: job directories, journal durability, driver stops.

The loop runs here against a scripted in-process launcher (it stands for any launcher:
the jobs' outcomes are chosen by each test, and a "job" writes its metrics file the
way a real one does), so each test can put the driver exactly where a crash or a
stop hits it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpoptim.cli import main
from hpoptim.errors import LaunchError, RunFailedError, RunStoppedError, StorageError
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher
from hpoptim.run.loop import JobTemplate, LoopSettings, Optimization, RunPlan
from hpoptim.samplers import make_sampler
from hpoptim.space import SearchSpace
from hpoptim.state import storage
from hpoptim.state.history import Lifecycle
from hpoptim.state.storage import ResultsLayout, RunLock, read_journal

SPACE = [{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}]

#: What a scripted job does when it runs: returns its final state, may write metrics.
Behaviour = Callable[[JobSpec], "JobState | None"]  # None: the job runs on


def complete(spec: JobSpec) -> JobState:
    spec.paths.metrics_file.write_text(json.dumps({"loss": 0.5}))
    return JobState.COMPLETED


def exit_0_without_metrics(spec: JobSpec) -> JobState:
    return JobState.COMPLETED


class ScriptedLauncher(BaseLauncher):
    """Runs each submitted job at once by calling ``behaviour`` (or holds it, if None)."""

    name = "scripted"

    def __init__(self, behaviour: Behaviour | None, reattach_as: JobState | None = None) -> None:
        self.behaviour = behaviour
        self.reattach_as = reattach_as
        self.submitted: list[JobSpec] = []
        self.cancelled: list[str] = []
        self.on_submit: Callable[[Sequence[JobSpec]], None] | None = None
        self._news: list[JobStatus] = []

    @classmethod
    def from_settings(cls, settings: Any, *, work_dir: Path, name: str) -> ScriptedLauncher:
        raise NotImplementedError

    def capacity(self) -> int | None:
        return None

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        if self.on_submit is not None:
            self.on_submit(specs)
        for spec in specs:
            self.submitted.append(spec)
            state = None if self.behaviour is None else self.behaviour(spec)
            if state is not None:
                self._news.append(JobStatus(spec.job_id, state, "n"))
        return {s.job_id: f"n-{s.job_id}" for s in specs}

    def poll(self, timeout_s: float) -> list[JobStatus]:
        news, self._news = self._news, []
        return news

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        self.cancelled.extend(job_ids or [])

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        if self.reattach_as is None:
            return False
        if self.reattach_as is JobState.CANCELLED:
            reason = "cancelled with scancel"
            self._news.append(JobStatus(spec.job_id, JobState.CANCELLED, native_id, reason=reason))
        else:
            self._news.append(JobStatus(spec.job_id, self.reattach_as, native_id))
        return True


def optimization(
    tmp_path: Path, launcher: BaseLauncher, *, n_samples: int = 1, max_attempts: int = 1
) -> Optimization:
    settings = LoopSettings(
        n_samples=n_samples, n_in_flight=3, max_failed_fraction=1.0, poll_timeout_s=0.0
    )
    plan = RunPlan(
        settings,
        Lifecycle("loss", max_attempts=max_attempts),
        JobTemplate(command=("job",), cwd=tmp_path),
    )
    space = SearchSpace.from_config(SPACE)
    sampler = make_sampler("random", space, minimize=True, seed=1, settings={})
    return Optimization(plan, sampler, launcher, ResultsLayout(tmp_path / "results"))


def journal_events(tmp_path: Path) -> list[dict[str, Any]]:
    return list(read_journal(tmp_path / "results" / "journal.jsonl"))


def cut_journal_after(tmp_path: Path, last_kept: str) -> None:
    """Lose the journal's tail after the first ``last_kept`` event (a crash before fsync)."""
    path = tmp_path / "results" / "journal.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if json.loads(line)["e"] == last_kept)
    path.write_text("".join(lines[: n + 1]))


def test_lost_journal_tail_never_reuses_a_job_directory(tmp_path: Path) -> None:
    optimization(tmp_path, ScriptedLauncher(complete)).run()
    first_dir = next(tmp_path.glob("results/jobs/0/*"))
    assert (first_dir / "metrics.json").exists()
    cut_journal_after(tmp_path, "asked")  # the job ran, but its events are gone

    launcher = ScriptedLauncher(exit_0_without_metrics)
    again = optimization(tmp_path, launcher)
    again.resume_from(journal_events(tmp_path))
    with pytest.raises(RunFailedError):  # its only setting failed: the run failed
        again.run()
    history = again.history

    [spec] = launcher.submitted
    assert spec.paths.run_dir != first_dir
    assert spec.job_id != "0_0.0-0"
    assert not spec.paths.metrics_file.exists()
    # the new job wrote no metrics: it must not be credited with its predecessor's
    assert history.settings[0].result is not None
    assert history.settings[0].result.value is None
    assert json.loads((first_dir / "metrics.json").read_text()) == {"loss": 0.5}


def test_an_existing_job_directory_is_refused_not_reused(tmp_path: Path) -> None:
    launcher = ScriptedLauncher(complete)
    loop = optimization(tmp_path, launcher)
    # another writer creates the directory between the choice of id and its creation
    real_write = loop.jobs.write_params

    def racing_write(spec: JobSpec, *args: Any) -> None:
        spec.paths.run_dir.mkdir(parents=True)
        real_write(spec, *args)

    loop.jobs.write_params = racing_write  # type: ignore[method-assign]
    with pytest.raises(StorageError, match="never reused"):
        loop.run()
    assert launcher.submitted == []


def test_journal_is_fsynced_before_each_submit_and_cancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "results" / "journal.jsonl"
    durable = {"size": 0}
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if os.path.samestat(os.fstat(fd), os.stat(journal)):
            durable["size"] = os.fstat(fd).st_size

    monkeypatch.setattr(storage.os, "fsync", fsync)

    def survives_power_loss(job_ids: list[str]) -> None:
        kept = journal.read_bytes()[: durable["size"]].decode()
        submitted = {json.loads(x)["job"] for x in kept.splitlines() if '"submitted"' in x}
        assert set(job_ids) <= submitted

    n_submits = []

    def on_submit(specs: Sequence[JobSpec]) -> None:
        n_submits.append(len(specs))
        survives_power_loss([s.job_id for s in specs])
        assert all(s.paths.params_file.exists() for s in specs)

    launcher = ScriptedLauncher(complete)
    launcher.on_submit = on_submit
    loop = optimization(tmp_path, launcher, n_samples=9)
    loop.run()
    assert len(launcher.submitted) == 9
    # events that only record what happened ride along with the next action's fsync
    n_events = len(journal_events(tmp_path))
    assert loop.journal.n_syncs <= len(n_submits) + 1 < n_events


def test_fsync_batches_the_events_of_one_submission(tmp_path: Path) -> None:
    launcher = ScriptedLauncher(None)  # jobs stay in flight
    stop = threading.Event()
    launcher.on_submit = lambda specs: stop.set()
    loop = optimization(tmp_path, launcher, n_samples=3)
    with pytest.raises(RunStoppedError):
        loop.run(stop)
    assert len(launcher.submitted) == 3
    # 3 asked, 3 submitted: one fsync before the submission, one before the cancel,
    # one at close for the "stopped" record
    assert [e["e"] for e in journal_events(tmp_path)].count("submitted") == 3
    assert loop.journal.n_syncs == 3


@pytest.mark.parametrize(
    ("seen_after_resume", "n_submitted_after", "value"),
    [
        pytest.param(JobState.CANCELLED, 1, 0.5, id="cancelled-is-restarted-not-failed"),
        pytest.param(JobState.FAILED, 1, 0.5, id="killed-by-the-cancel-is-restarted"),
        pytest.param(JobState.COMPLETED, 0, 0.5, id="finished-before-the-cancel-is-adopted"),
    ],
)
def test_jobs_cancelled_by_a_stopping_driver_do_not_count_as_attempts(
    tmp_path: Path, seen_after_resume: JobState, n_submitted_after: int, value: float
) -> None:
    launcher = ScriptedLauncher(None)
    stop = threading.Event()
    launcher.on_submit = lambda specs: stop.set()
    with pytest.raises(RunStoppedError):
        optimization(tmp_path, launcher, max_attempts=1).run(stop)
    [held] = launcher.submitted
    assert launcher.cancelled == [held.job_id]
    if seen_after_resume is JobState.COMPLETED:
        complete(held)

    resumed = ScriptedLauncher(complete, reattach_as=seen_after_resume)
    loop = optimization(tmp_path, resumed, max_attempts=1)
    loop.resume_from(journal_events(tmp_path))
    history = loop.run()

    assert len(resumed.submitted) == n_submitted_after
    result = history.settings[0].result
    assert result is not None
    assert result.value == value
    rerun = history.settings[0].reruns[0]
    assert rerun.failures == 0
    assert rerun.n_attempts == 1  # the cancelled job is not counted in settings.csv either


def test_a_job_cancelled_by_someone_else_still_counts(tmp_path: Path) -> None:
    launcher = ScriptedLauncher(None)
    stop = threading.Event()
    launcher.on_submit = lambda specs: stop.set()
    with pytest.raises(RunStoppedError):
        optimization(tmp_path, launcher, max_attempts=1).run(stop)
    # as if the driver had died before journaling its intent to cancel
    events = [e for e in journal_events(tmp_path) if e["e"] != "cancelling"]
    resumed = ScriptedLauncher(complete, reattach_as=JobState.CANCELLED)
    loop = optimization(tmp_path, resumed, max_attempts=1)
    loop.resume_from(events)
    with pytest.raises(RunFailedError):  # its only setting failed: the run failed
        loop.run()
    history = loop.history
    assert resumed.submitted == []
    result = history.settings[0].result
    assert result is not None
    assert result.value is None


# -- run --overwrite ---------------------------------------------------------------------------
def local_run_config(tmp_path: Path) -> Path:
    (tmp_path / "job.py").write_text(
        "from hpoptim import job\njob.report({'loss': job.load()['params']['x']})\n"
    )
    cfg = {
        "optimization_procedure_name": "o",
        "results_dir": str(tmp_path / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": SPACE,
        "optimizer_str": "random",
        "number_of_samples": 1,
        "n_jobs_per_iteration": 1,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 1,
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    return path


def test_overwrite_keeps_the_run_locked_while_moving_it_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = local_run_config(tmp_path)
    assert main([str(config), "-q"]) == 0
    root = tmp_path / "results" / "o"
    seen: list[str] = []
    intruders: list[RunLock] = []
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if Path(src) == root:  # a `resume` starting while the run is moved aside
            intruder = RunLock(root / ".lock")
            try:
                intruder.acquire()
                intruders.append(intruder)
                seen.append("resume got the lock")
            except StorageError:
                seen.append("resume refused")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    try:
        assert main([str(config), "-q", "--overwrite"]) == 0
    finally:
        for intruder in intruders:
            intruder.release()
    assert seen == ["resume refused"]


def test_overwrites_within_one_second_keep_every_backup_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    real_strftime = time.strftime

    def same_second(fmt: str, *args: Any) -> str:
        return "20260101-000000" if fmt == "%Y%m%d-%H%M%S" else real_strftime(fmt, *args)

    monkeypatch.setattr(time, "strftime", same_second)
    config = local_run_config(tmp_path)
    for extra in ([], ["--overwrite"], ["--overwrite"]):
        assert main([str(config), *extra]) == 0
    results = tmp_path / "results"
    backups = sorted(p.name for p in results.iterdir() if p.name != "o")
    assert backups == ["o.old-20260101-000000", "o.old-20260101-000000-1"]
    for name in backups:
        assert (results / name / "journal.jsonl").exists()
        assert not (results / name / "o").exists()  # not nested in each other
    err = capsys.readouterr().err
    assert f"moved the previous run to {results / backups[1]}" in err
    assert (results / "o" / "journal.jsonl").exists()


# -- signals -----------------------------------------------------------------------------------
STUBBORN_JOB = """\
import os, signal, time
from pathlib import Path
from hpoptim import job
p = job.load()
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends it
Path(p["job"]["run_dir"], "started").write_text(str(os.getpid()))
time.sleep(120)
"""


def start_driver(tmp_path: Path, job: str) -> tuple[subprocess.Popen[str], Path]:
    config = local_run_config(tmp_path)
    (tmp_path / "job.py").write_text(job)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpoptim", str(config)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, tmp_path / "results" / "o"


def wait_for(predicate: Callable[[], object], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def has_event(root: Path, kind: str) -> bool:
    return any(e["e"] == kind for e in read_journal(root / "journal.jsonl"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_sigterm_stops_the_run_with_exit_code_143(tmp_path: Path) -> None:
    job = STUBBORN_JOB.replace("signal.SIG_IGN", "signal.SIG_DFL")
    driver, root = start_driver(tmp_path, job)
    wait_for(lambda: list(root.glob("jobs/0/*/started")), "the job to start")
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 143, err
    assert "interrupted by SIGTERM" in err
    assert f"hpoptim resume {root}" in err


def test_second_ctrl_c_aborts_without_waiting_for_the_cancel_grace(tmp_path: Path) -> None:
    driver, root = start_driver(tmp_path, STUBBORN_JOB)
    wait_for(lambda: list(root.glob("jobs/0/*/started")), "the job to start")
    job_pid = int(next(root.glob("jobs/0/*/started")).read_text())
    driver.send_signal(signal.SIGINT)
    wait_for(lambda: has_event(root, "cancelling"), "the driver to cancel the job")
    start = time.monotonic()
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=60)
    took = time.monotonic() - start
    assert driver.returncode == 130, err
    assert took < 4.0  # the local launcher's grace is 5 s, and close() would wait it again
    wait_for(lambda: not pid_alive(job_pid), "the job to be killed", timeout_s=5)
    assert "Traceback" not in err


# -- secrets -----------------------------------------------------------------------------------
def test_stderr_tails_of_failed_jobs_stay_out_of_world_readable_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = local_run_config(tmp_path)
    (tmp_path / "job.py").write_text("import sys\nsys.exit('token=s3cret-value')\n")
    old = os.umask(0o022)
    try:
        assert main([str(config), "max_attempts=1", "-q"]) == 1  # every setting failed
    finally:
        os.umask(old)
    root = tmp_path / "results" / "o"
    holding = [p for p in root.rglob("*") if p.is_file() and b"s3cret-value" in p.read_bytes()]
    names = {p.name for p in holding}
    assert {"journal.jsonl", "hpoptim.log"} <= names
    for path in holding:  # the job's own stderr file is the job's, as on Slurm
        assert path.name == "stderr.log" or path.stat().st_mode & 0o077 == 0, path
    for name in ("jobs.csv", "settings.csv", "report.md"):  # they follow the umask
        assert "failed with exit code 1: token=***" in (root / name).read_text(), name


def test_a_launcher_failure_leaves_the_jobs_in_flight_for_resume(tmp_path: Path) -> None:
    def first_completes(spec: JobSpec) -> JobState | None:
        return complete(spec) if spec.job_id.startswith("0_") else None  # the others run on

    launcher = ScriptedLauncher(first_completes)
    calls: list[int] = []

    def second_submit_fails(specs: Sequence[JobSpec]) -> None:
        calls.append(len(specs))
        if len(calls) == 2:
            raise LaunchError("sbatch refused x: Unable to contact slurm controller")

    launcher.on_submit = second_submit_fails
    with pytest.raises(LaunchError):
        optimization(tmp_path, launcher, n_samples=4).run()
    assert calls == [3, 1]  # job 1_ and 2_ were in flight when the second submit failed
    assert launcher.cancelled == []
    kinds = [e["e"] for e in journal_events(tmp_path)]
    assert "cancelling" not in kinds
    assert kinds[-1] == "stopped"


def test_jobs_that_never_reached_the_launcher_are_not_said_to_be_in_flight(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Unqueued(ScriptedLauncher):
        """Queues the first job; the next two wait for a controller that never answers."""

        def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
            native = super().submit(specs)
            return {k: v if k.startswith("0_") else "" for k, v in native.items()}

        def poll(self, timeout_s: float) -> list[JobStatus]:
            raise LaunchError("Slurm's controller has been out of reach for 15.0 min")

    with pytest.raises(LaunchError):
        optimization(tmp_path, Unqueued(None), n_samples=3).run()
    assert "leaving 1 job(s) in flight for 'hpoptim resume'; 2 never reached it" in caplog.text


def test_the_csvs_are_current_when_a_launcher_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that ends in a launcher's error (Slurm out of reach too long) leaves
    settings.csv and jobs.csv showing what finished, not what was running."""
    from hpoptim.launchers.local import LocalLauncher
    from tests.test_cli import _config

    monkeypatch.chdir(tmp_path)
    poll = LocalLauncher.poll
    ended: list[str] = []

    def gives_up_after_two(self: LocalLauncher, timeout_s: float) -> list[JobStatus]:
        if len(ended) >= 2:
            raise LaunchError("the cluster has been out of reach for too long")
        news = poll(self, timeout_s)
        ended.extend(s.job_id for s in news if s.state.is_terminal)
        return news

    monkeypatch.setattr(LocalLauncher, "poll", gives_up_after_two)
    config = _config(tmp_path, number_of_samples=6, n_jobs_per_iteration=1)
    assert main([str(config), "local.n_parallel_jobs=1", "-q"]) == 1
    root = tmp_path / "results" / "t"
    finished = {int(j.split("_")[0]) for j in ended}
    settings = pd.read_csv(root / "settings.csv")
    assert set(settings.loc[settings["status"] == "complete", "setting_id"]) == finished
    jobs = pd.read_csv(root / "jobs.csv")
    assert set(jobs.loc[jobs["status"] == "completed", "job_id"]) == set(ended)
