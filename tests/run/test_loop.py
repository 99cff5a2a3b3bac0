"""The loop's decisions (refill, failure stop, end-of-run outcome, binds), on a
launcher that finishes one job per poll in submission order, so each decision is
taken at a known point."""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import (
    JobSetupError,
    LaunchError,
    RunFailedError,
    RunStoppedError,
    TooManyFailuresError,
)
from hpoptim.job import SETUP_ERROR_EXIT_CODE
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.local import LocalLauncher
from hpoptim.run.loop import JobTemplate, LoopSettings, Optimization, RunPlan, stop_cause_of
from hpoptim.samplers.base import BaseSampler
from hpoptim.space import SearchSpace
from hpoptim.state.events import StopCause
from hpoptim.state.history import Lifecycle
from hpoptim.state.storage import ResultsLayout, read_journal

Outcome = Callable[[JobSpec], JobState]


class OneAtATimeLauncher(BaseLauncher):
    """Runs the job side in-process: each poll ends the oldest job, writing its
    metrics (``loss`` = setting id) when ``outcome`` says it completed."""

    name = "one-at-a-time"

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.batches: list[list[JobSpec]] = []
        self.cancelled: list[Sequence[str] | None] = []
        self.exit_codes: dict[str, int] = {}  # a failed job's exit code if not 1
        self._queue: deque[JobSpec] = deque()

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, work_dir: Path, name: str
    ) -> OneAtATimeLauncher:
        raise NotImplementedError

    def capacity(self) -> int | None:
        return None

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        self.batches.append(list(specs))
        self._queue.extend(specs)
        return {s.job_id: s.job_id for s in specs}

    def poll(self, timeout_s: float) -> list[JobStatus]:
        if not self._queue:
            return []
        spec = self._queue.popleft()
        state = self.outcome(spec)
        if state is JobState.COMPLETED:
            sid = int(spec.env["HPOPTIM_SETTING_ID"])
            spec.paths.metrics_file.write_text(json.dumps({"loss": float(sid)}))
        code = 0 if state is JobState.COMPLETED else self.exit_codes.get(spec.job_id, 1)
        return [JobStatus(spec.job_id, state, spec.job_id, exit_code=code)]

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        self._queue.append(spec)
        return True

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        self.cancelled.append(job_ids)
        self._queue.clear()


class CountingSampler(BaseSampler):
    """Proposes x = 0, 1, 2, ..."""

    def __init__(self) -> None:
        super().__init__(SearchSpace([]), minimize=True)
        self.n = 0

    def ask(self) -> dict[str, Any] | None:
        self.n += 1
        return {"x": self.n - 1}

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        pass


def _sid(spec: JobSpec) -> int:
    return int(spec.env["HPOPTIM_SETTING_ID"])


def _loop(
    tmp_path: Path, outcome: Outcome, **settings: Any
) -> tuple[Optimization, OneAtATimeLauncher]:
    launcher = OneAtATimeLauncher(outcome)
    plan = RunPlan(
        LoopSettings(**{"n_samples": 6, "n_in_flight": 1, "poll_timeout_s": 0, **settings}),
        Lifecycle("loss", max_attempts=1),
        JobTemplate(command=("job",), cwd=tmp_path, binds=(tmp_path / "checkout",)),
    )
    layout = ResultsLayout(tmp_path / "results")
    return Optimization(plan, CountingSampler(), launcher, layout), launcher


def _ok(spec: JobSpec) -> JobState:
    return JobState.COMPLETED


def _odd_fails(spec: JobSpec) -> JobState:
    return JobState.FAILED if _sid(spec) % 2 else JobState.COMPLETED


def test_settings_are_asked_again_only_after_n_completed_before_resubmit(tmp_path: Path) -> None:
    loop, launcher = _loop(tmp_path, _ok, n_samples=8, n_in_flight=4, n_completed_before_resubmit=2)
    loop.run()
    assert [[_sid(s) for s in batch] for batch in launcher.batches] == [
        [0, 1, 2, 3],
        [4, 5],  # asked once two had finished, not after the first
        [6, 7],
    ]


def test_with_one_completion_each_finished_setting_is_replaced_at_once(tmp_path: Path) -> None:
    loop, launcher = _loop(tmp_path, _ok, n_samples=6, n_in_flight=3)
    loop.run()
    assert [[_sid(s) for s in batch] for batch in launcher.batches] == [[0, 1, 2], [3], [4], [5]]


@pytest.mark.parametrize(
    ("max_failed_fraction", "n_finished"),
    [
        pytest.param(0.5, 6, id="a-fraction-equal-to-the-limit-goes-on"),
        pytest.param(0.49, 2, id="a-fraction-above-the-limit-stops"),
    ],
)
def test_the_run_stops_only_when_more_than_max_failed_fraction_failed(
    tmp_path: Path, max_failed_fraction: float, n_finished: int
) -> None:
    loop, _ = _loop(
        tmp_path,
        _odd_fails,
        max_failed_fraction=max_failed_fraction,
        n_settings_before_failure_check=2,
    )
    if n_finished == 6:
        loop.run()
    else:
        with pytest.raises(RunStoppedError, match="1 of 2 finished settings failed"):
            loop.run()
        stopped = list(read_journal(tmp_path / "results" / "journal.jsonl"))[-1]
        assert (stopped["e"], stopped["cause"]) == ("stopped", "failures")
    assert loop.history.n_finished == n_finished
    assert loop.history.n_failed_settings == n_finished // 2


def test_a_run_in_which_every_setting_failed_fails_before_the_failure_check(
    tmp_path: Path,
) -> None:
    loop, _ = _loop(
        tmp_path,
        lambda spec: JobState.FAILED,
        n_samples=2,
        n_settings_before_failure_check=5,
        max_failed_fraction=0.0,
    )
    with pytest.raises(RunFailedError, match=r"all 2 setting\(s\) failed \(last: "):
        loop.run()
    events = [e["e"] for e in read_journal(tmp_path / "results" / "journal.jsonl")]
    assert events[-1] == "finished"  # the budget was spent: nothing left to resume
    assert "stopped" not in events


def test_one_successful_setting_makes_the_run_succeed(tmp_path: Path) -> None:
    loop, _ = _loop(
        tmp_path,
        lambda spec: JobState.COMPLETED if _sid(spec) == 3 else JobState.FAILED,
        max_failed_fraction=1.0,
    )
    history = loop.run()
    assert (history.n_finished, history.n_failed_settings) == (6, 5)


@pytest.mark.parametrize(
    ("error", "cancelled"),
    [
        pytest.param(KeyboardInterrupt(), [], id="second-ctrl-c-aborts-at-once"),
        pytest.param(RunStoppedError("interrupted"), [["0_0.0-0", "1_0.0-0"]], id="stop"),
    ],
)
def test_a_second_ctrl_c_aborts_without_cancelling_where_a_stop_cancels(
    tmp_path: Path, error: BaseException, cancelled: list[list[str]]
) -> None:
    def interrupted(spec: JobSpec) -> JobState:
        raise error

    loop, launcher = _loop(tmp_path, interrupted, n_in_flight=2)
    with pytest.raises(type(error)):
        loop.run()
    assert launcher.cancelled == cancelled
    events = list(read_journal(tmp_path / "results" / "journal.jsonl"))
    assert ("cancelling" in [e["e"] for e in events]) == bool(cancelled)
    reason, cause = (
        ("aborted (second Ctrl-C)", "aborted") if not cancelled else ("interrupted",) * 2
    )
    assert events[-1] == {"e": "stopped", "reason": reason, "cause": cause}


def test_a_setup_error_of_a_job_an_earlier_driver_started_does_not_stop_the_run(
    tmp_path: Path,
) -> None:
    """It may have failed before the user's fix: it is started again, as after a setup
    error, and the run goes on (a job this driver started would stop it)."""
    old = "0_0.0-0"
    loop, launcher = _loop(
        tmp_path, lambda spec: JobState.FAILED if spec.job_id == old else JobState.COMPLETED
    )
    launcher.exit_codes[old] = SETUP_ERROR_EXIT_CODE
    loop.resume_from(
        [
            {"e": "run_started", "seed": 0},
            {"e": "asked", "sid": 0, "params": {"x": 0}},
            {
                **{"e": "submitted", "job": old, "sid": 0, "rerun": 0, "it": 0, "att": 0},
                **{"dir": str(tmp_path / "results" / "jobs" / "0" / "run_0.0-0"), "t": 0.0},
            },
        ]
    )
    history = loop.run()
    assert (history.n_finished, history.n_failed_settings) == (6, 0)
    assert history.jobs[old].exit_code == SETUP_ERROR_EXIT_CODE
    assert history.settings[0].reruns[0].failures == 0


def test_every_job_sees_the_results_root_and_the_template_binds(tmp_path: Path) -> None:
    loop, launcher = _loop(tmp_path, _ok, n_samples=2)
    loop.run()
    specs = [s for batch in launcher.batches for s in batch]
    assert len(specs) == 2
    for spec in specs:
        assert spec.binds == (tmp_path / "checkout", tmp_path / "results")


PID_JOB = """\
import json, os, sys, time
ctx = json.load(open(sys.argv[-1]))["job"]
with open(os.path.join(ctx["run_dir"], "pid"), "w") as fh:
    fh.write(str(os.getpid()))
if ctx["setting_id"] == 0:  # ends only after the driver journaled the other job's end
    journal = os.path.join(os.path.dirname(os.path.dirname(ctx["setting_dir"])), "journal.jsonl")
    deadline = time.monotonic() + 60
    while '"e":"ended"' not in open(journal).read():
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.01)
with open(ctx["metrics_file"], "w") as fh:
    json.dump({"loss": 1.0}, fh)
"""


def test_pids_learned_after_submission_are_journaled_once_each(tmp_path: Path) -> None:
    """The local launcher's submit returns before the jobs' processes exist; the loop
    journals each pid once, when poll first reports it: while the job runs (job 0
    runs past the other's end), or at its end."""
    (tmp_path / "job.py").write_text(PID_JOB)
    plan = RunPlan(
        LoopSettings(n_samples=2, n_in_flight=2, poll_timeout_s=0.05),
        Lifecycle("loss", max_attempts=1),
        JobTemplate(command=(sys.executable, str(tmp_path / "job.py")), cwd=tmp_path),
    )
    layout = ResultsLayout(tmp_path / "results")
    with LocalLauncher(n_parallel_jobs=2) as launcher:
        history = Optimization(plan, CountingSampler(), launcher, layout).run()
    assert history.n_failed_settings == 0
    events = list(read_journal(layout.journal))
    journaled = [
        (i, job, n)
        for i, e in enumerate(events)
        if e["e"] == "native_ids"
        for job, n in e["ids"].items()
    ]
    pids = {rec.job_id: (Path(rec.run_dir) / "pid").read_text() for rec in history.jobs.values()}
    assert sorted((job, n) for _, job, n in journaled) == sorted(pids.items())
    assert {job: rec.native_id for job, rec in history.jobs.items()} == pids
    first_end = next(i for i, e in enumerate(events) if e["e"] == "ended")
    assert next(i for i, job, _ in journaled if job == "0_0.0-0") < first_end


class TwoSlotLauncher(BaseLauncher):
    """Two slots; each poll ends the oldest running job. At each submit it notes how
    many journal syncs the loop had made since the last job ended."""

    name = "two-slots"

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.loop: Optimization | None = None
        self.running: deque[JobSpec] = deque()
        self.syncs_at_end = -1  # no job ended yet
        self.syncs_between: list[int] = []  # per submit after a job ended
        self.max_ahead = 0

    @classmethod
    def from_settings(cls, settings: Any, *, work_dir: Path, name: str) -> TwoSlotLauncher:
        raise NotImplementedError

    def _syncs(self) -> int:
        assert self.loop is not None
        return self.loop.journal.n_syncs

    def capacity(self) -> int | None:
        return 2 - len(self.running)

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        assert 0 < len(specs) <= 2 - len(self.running)
        on_disk = {e["job"] for e in read_journal(self.journal) if e["e"] == "submitted"}
        for spec in specs:  # acted on only once journaled, directory and params written
            assert spec.job_id in on_disk
            assert spec.paths.params_file.exists()
        if self.syncs_at_end >= 0:
            self.syncs_between.append(self._syncs() - self.syncs_at_end)
            self.syncs_at_end = -1
        self.running.extend(specs)
        return dict.fromkeys((s.job_id for s in specs), "")

    def poll(self, timeout_s: float) -> list[JobStatus]:
        assert self.loop is not None
        active = sum(1 for j in self.loop.history.jobs.values() if j.active)
        self.max_ahead = max(self.max_ahead, active - len(self.running))
        if not self.running:
            return []
        spec = self.running.popleft()
        spec.paths.metrics_file.write_text(json.dumps({"loss": float(_sid(spec))}))
        self.syncs_at_end = self._syncs()
        return [JobStatus(spec.job_id, JobState.COMPLETED, "", exit_code=0)]

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        self.running.clear()


def test_a_freed_slot_gets_a_job_prepared_ahead_without_a_journal_sync(tmp_path: Path) -> None:
    """With more settings in flight than slots, the loop journals, syncs and writes one
    job ahead per running job; when a job ends, the next is submitted before anything
    is synced, so neither a sync nor a new directory delays a start."""
    plan = RunPlan(
        LoopSettings(n_samples=12, n_in_flight=5, poll_timeout_s=0),
        Lifecycle("loss", max_attempts=1),
        JobTemplate(command=("job",), cwd=tmp_path),
    )
    layout = ResultsLayout(tmp_path / "results")
    launcher = TwoSlotLauncher(layout.journal)
    loop = Optimization(plan, CountingSampler(), launcher, layout)
    launcher.loop = loop
    history = loop.run()
    assert history.n_finished == 12
    assert launcher.syncs_between == [0] * 10  # every submit after the first batch
    assert launcher.max_ahead == 2  # one prepared per running job, no more
    # a job that waited for a slot counts from its launch, after the end of the one
    # it replaced (FIFO over two slots: job k replaced job k - 2)
    events = list(read_journal(layout.journal))
    order = [e["job"] for e in events if e["e"] == "submitted"]
    ended = {e["job"]: i for i, e in enumerate(events) if e["e"] == "ended"}
    launched = {
        j: (i, e["t"]) for i, e in enumerate(events) if e["e"] == "launched" for j in e["jobs"]
    }
    assert sorted(launched) == sorted(order[2:])
    for k, job in enumerate(order[2:]):
        assert launched[job][0] > ended[order[k]]
        assert history.jobs[job].submitted_at == launched[job][1]


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (KeyboardInterrupt(), StopCause.ABORTED),
        (TooManyFailuresError("3 of 5 finished settings failed"), StopCause.FAILURES),
        (JobSetupError("job 0_0.0-0 could not set itself up"), StopCause.SETUP_ERROR),
        (RunStoppedError("interrupted"), StopCause.INTERRUPTED),
        (LaunchError("sbatch: cannot reach the controller"), StopCause.LAUNCHER),
        (RuntimeError("a bug"), StopCause.ERROR),
    ],
)
def test_the_stop_cause_is_told_by_the_type_of_the_error(
    error: BaseException, cause: StopCause
) -> None:
    assert stop_cause_of(error) is cause
