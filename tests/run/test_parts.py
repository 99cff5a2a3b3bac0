"""The loop's parts on their own, without processes or a launcher that runs anything:
the sampler feed, the dispatcher, the result intake and the outcomes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from hpoptim.errors import RunStoppedError
from hpoptim.job import SETUP_ERROR_EXIT_CODE
from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher
from hpoptim.run.dispatch import Dispatcher
from hpoptim.run.feed import SamplerFeed
from hpoptim.run.intake import Intake, describe
from hpoptim.run.jobs import JobFactory
from hpoptim.run.outcomes import Outcomes
from hpoptim.run.plan import JobTemplate, LoopSettings
from hpoptim.run.recorder import Recorder
from hpoptim.samplers.base import BaseSampler
from hpoptim.space import SearchSpace
from hpoptim.state.events import EventKind
from hpoptim.state.history import Lifecycle, RunHistory
from hpoptim.state.setting import SettingResult
from hpoptim.state.storage import Journal, ResultsLayout, read_journal


class ListSampler(BaseSampler):
    """Proposes x = 0, 1, ... up to ``n`` settings; remembers what it was told."""

    def __init__(self, n: int = 100) -> None:
        super().__init__(SearchSpace([]), minimize=True)
        self.n = n
        self.asked = 0
        self.told: list[tuple[int, float | None]] = []

    def ask(self) -> dict[str, Any] | None:
        if self.asked >= self.n:
            return None
        self.asked += 1
        return {"x": self.asked - 1}

    def tell(self, params: Mapping[str, Any], value: float | None) -> None:
        self.told.append((params["x"], value))


class HoldingLauncher(BaseLauncher):
    """Takes jobs up to ``slots`` at once and runs none of them."""

    name = "holding"

    def __init__(self, slots: int | None) -> None:
        self.slots = slots
        self.batches: list[list[str]] = []

    @classmethod
    def from_settings(cls, settings: Any, *, work_dir: Path, name: str) -> HoldingLauncher:
        raise NotImplementedError

    def capacity(self) -> int | None:
        if self.slots is None:
            return None
        return self.slots - sum(len(b) for b in self.batches)

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        self.batches.append([s.job_id for s in specs])
        return {s.job_id: f"n{s.job_id}" for s in specs}

    def poll(self, timeout_s: float) -> list[JobStatus]:
        return []

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        pass


class Parts:
    """A recorder over a real journal, and the parts built on it."""

    def __init__(self, tmp_path: Path, settings: LoopSettings, lifecycle: Lifecycle) -> None:
        self.layout = ResultsLayout(tmp_path / "results")
        self.layout.root.mkdir(parents=True)
        self.history = RunHistory(lifecycle)
        self.journal = Journal(self.layout.journal)
        self.journal.open()
        self.events: list[str] = []
        self.record = Recorder(
            self.journal, self.history, lambda _h, ev: self.events.append(ev["e"])
        )
        self.sampler = ListSampler()
        self.feed = SamplerFeed(self.sampler, settings, self.history)
        self.jobs = JobFactory(
            JobTemplate(command=("job",), cwd=tmp_path), self.layout, lifecycle, settings.seed
        )

    def ask(self, n: int) -> None:
        for _ in range(n):
            params = self.feed.ask()
            assert params is not None
            self.record(EventKind.ASKED, sid=self.history.n_asked, params=params)

    def dispatcher(self, settings: LoopSettings, launcher: BaseLauncher) -> Dispatcher:
        return Dispatcher(settings, self.record, self.feed, launcher, self.jobs)

    def finish(self, sid: int, value: float | None) -> None:
        ok = value is not None
        result = SettingResult(value, 0.0 if ok else None, int(ok), int(not ok), {})
        self.record(EventKind.SETTING_FINISHED, sid=sid, result=result.to_dict())


@pytest.fixture
def make_parts(tmp_path: Path) -> Iterator[Callable[..., Parts]]:
    """Builds :class:`Parts` under ``tmp_path``; their journals are closed afterwards."""
    made: list[Parts] = []

    def make(settings: LoopSettings, lifecycle: Lifecycle | None = None, sub: str = "") -> Parts:
        made.append(Parts(tmp_path / sub, settings, lifecycle or Lifecycle("loss")))
        return made[-1]

    yield make
    for parts in made:
        parts.journal.close()


def _settings(**kw: Any) -> LoopSettings:
    return LoopSettings(**{"n_samples": 10, "n_in_flight": 2, **kw})


# -- the sampler feed ------------------------------------------------------------------
def test_in_ask_order_a_setting_is_asked_only_once_the_results_due_before_it_are_told(
    make_parts: Callable[..., Parts],
) -> None:
    settings = _settings(deterministic_order=True)
    parts = make_parts(settings)
    parts.ask(2)
    assert parts.feed.may_ask() is False  # setting 0 is due before setting 2 is asked
    parts.finish(1, 1.0)
    parts.feed.finished(parts.history.settings[1])
    assert parts.feed.may_ask() is False
    assert parts.sampler.told == []
    parts.finish(0, 0.5)
    assert parts.feed.may_ask() is True
    assert parts.sampler.told == [(0, 0.5)]  # setting 1 waits until it is due


def test_finishing_order_tells_at_once(make_parts: Callable[..., Parts]) -> None:
    parts = make_parts(_settings())
    parts.ask(2)
    parts.finish(1, 1.0)
    parts.feed.finished(parts.history.settings[1])
    assert parts.sampler.told == [(1, 1.0)]
    assert parts.feed.may_ask() is True


# -- the dispatcher --------------------------------------------------------------------
def test_refill_asks_up_to_n_in_flight_and_then_waits_for_finished_settings(
    make_parts: Callable[..., Parts],
) -> None:
    settings = _settings(n_in_flight=3, n_completed_before_resubmit=2)
    parts = make_parts(settings)
    dispatch = parts.dispatcher(settings, HoldingLauncher(None))
    dispatch.refill()
    assert parts.history.n_asked == 3
    parts.finish(0, 1.0)  # one slot free, but two settings must finish first
    dispatch.note_finished()
    dispatch.refill()
    assert parts.history.n_asked == 3
    parts.finish(1, 1.0)
    dispatch.note_finished()
    dispatch.refill()
    assert parts.history.n_asked == 5


def test_refill_stops_at_the_budget_and_when_the_sampler_is_exhausted(
    make_parts: Callable[..., Parts],
) -> None:
    settings = _settings(n_samples=2, n_in_flight=5)
    parts = make_parts(settings)
    dispatch = parts.dispatcher(settings, HoldingLauncher(None))
    dispatch.refill()
    assert parts.history.n_asked == 2
    assert dispatch.budget_spent()
    assert not dispatch.exhausted
    small = _settings(n_samples=10, n_in_flight=5)
    parts2 = make_parts(small, sub="b")
    parts2.sampler.n = 3
    dispatch2 = parts2.dispatcher(small, HoldingLauncher(None))
    dispatch2.refill()
    assert parts2.history.n_asked == 3
    assert dispatch2.exhausted
    assert dispatch2.budget_spent()


def test_jobs_are_prepared_ahead_and_each_is_journaled_and_synced_before_its_directory(
    make_parts: Callable[..., Parts], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(n_in_flight=4)
    parts = make_parts(settings)
    launcher = HoldingLauncher(1)
    dispatch = parts.dispatcher(settings, launcher)
    written: list[tuple[str, list[str]]] = []
    real_write = parts.jobs.write_params

    def write(spec: JobSpec, *args: Any) -> None:
        durable = [e.get("job") for e in read_journal(parts.layout.journal)]
        written.append((spec.job_id, [j for j in durable if j]))
        real_write(spec, *args)

    monkeypatch.setattr(parts.jobs, "write_params", write)
    dispatch.refill()
    dispatch.submit_ready()
    # one slot: one job submitted, and one more prepared ahead for the job it runs
    assert launcher.batches == [["0_0.0-0"]]
    assert [job for job, _ in written] == ["0_0.0-0", "1_0.0-0"]
    for job, durable in written:
        assert job in durable  # its `submitted` event was on disk before its directory
    assert set(dispatch.specs) == {"0_0.0-0", "1_0.0-0"}
    dispatch.submit_prepared()  # no slot free: it stays prepared
    assert len(launcher.batches) == 1
    launcher.slots = 3
    dispatch.submit_prepared()
    assert launcher.batches[1] == ["1_0.0-0"]
    assert parts.events.count("launched") == 1  # the job prepared ahead starts now
    assert parts.history.jobs["1_0.0-0"].native_id == "n1_0.0-0"


# -- the intake --------------------------------------------------------------------------
def _submitted(parts: Parts, sid: int) -> JobSpec:
    setting = parts.history.settings[sid]
    spec = parts.jobs.spec(setting, 0, 0)
    parts.record(
        EventKind.SUBMITTED,
        job=spec.job_id,
        sid=sid,
        rerun=0,
        it=0,
        att=0,
        dir=str(spec.paths.run_dir),
        t=0.0,
    )
    spec.paths.run_dir.mkdir(parents=True)
    return spec


def test_intake_journals_an_end_with_its_metrics_and_ignores_news_that_is_not_an_end(
    make_parts: Callable[..., Parts],
) -> None:
    parts = make_parts(_settings())
    parts.ask(1)
    spec = _submitted(parts, 0)
    intake = Intake(parts.record, {spec.job_id: spec})
    assert intake.take(JobStatus(spec.job_id, JobState.RUNNING, "n")) is None
    spec.paths.metrics_file.write_text(json.dumps({"loss": 0.25}))
    assert intake.take(JobStatus(spec.job_id, JobState.COMPLETED, "n", exit_code=0)) == 0
    assert parts.history.jobs[spec.job_id].metrics == {"loss": 0.25}
    assert intake.specs == {}
    assert intake.take(JobStatus(spec.job_id, JobState.COMPLETED, "n", exit_code=0)) is None


def test_a_job_cancelled_by_a_stopping_driver_is_abandoned_not_counted(
    make_parts: Callable[..., Parts],
) -> None:
    parts = make_parts(_settings())
    parts.ask(1)
    spec = _submitted(parts, 0)
    parts.record(EventKind.CANCELLING, jobs=[spec.job_id])
    intake = Intake(parts.record, {spec.job_id: spec})
    assert intake.take(JobStatus(spec.job_id, JobState.CANCELLED, "n")) is None
    assert parts.events[-1] == "abandoned"
    assert parts.history.settings[0].reruns[0].failures == 0


@pytest.mark.parametrize("reattached", [False, True], ids=["own-job", "earlier-driver"])
def test_a_setup_error_stops_the_run_unless_an_earlier_driver_started_the_job(
    make_parts: Callable[..., Parts], reattached: bool
) -> None:
    parts = make_parts(_settings())
    parts.ask(1)
    spec = _submitted(parts, 0)
    spec.paths.stderr.write_text("Traceback\nImportError: no module named x\n")
    intake = Intake(parts.record, {spec.job_id: spec})
    if reattached:
        intake.reattached.add(spec.job_id)
    status = JobStatus(spec.job_id, JobState.FAILED, "n", exit_code=SETUP_ERROR_EXIT_CODE)
    assert intake.take(status) == 0
    if reattached:
        assert intake.setup_error is None
    else:
        assert intake.setup_error is not None
        assert "ImportError: no module named x" in intake.setup_error


@pytest.mark.parametrize(
    ("status", "words"),
    [
        pytest.param(JobStatus("j", JobState.COMPLETED, "n"), "exit code 0", id="completed"),
        pytest.param(JobStatus("j", JobState.RESUME, "n"), "exit code 3", id="resume"),
        pytest.param(JobStatus("j", JobState.FAILED, "n", signal=9), "signal 9", id="signal"),
        pytest.param(
            JobStatus("j", JobState.FAILED, "n", exit_code=2), "failed with exit code 2", id="code"
        ),
        pytest.param(JobStatus("j", JobState.LOST, "n"), "lost", id="lost"),
    ],
)
def test_describe_says_how_a_job_ended(status: JobStatus, words: str) -> None:
    assert words in describe(status)


# -- the outcomes -------------------------------------------------------------------------
def _outcomes(parts: Parts, settings: LoopSettings) -> Outcomes:
    return Outcomes(settings, parts.record, None, parts.feed, parts.layout.jobs_dir)


def test_failures_are_counted_from_where_this_driver_started(
    make_parts: Callable[..., Parts],
) -> None:
    settings = _settings(n_settings_before_failure_check=2, max_failed_fraction=0.5)
    parts = make_parts(settings)
    parts.ask(6)
    for sid in range(3):
        parts.finish(sid, None)  # an earlier driver's failures
    outcomes = _outcomes(parts, settings)
    outcomes.start_failure_count()
    outcomes.check_failures(None)
    parts.finish(3, 1.0)
    parts.finish(4, None)
    outcomes.check_failures(None)  # 1 of 2 since the start: not more than half
    parts.finish(5, None)
    with pytest.raises(RunStoppedError, match="2 of 3 finished settings failed since"):
        outcomes.check_failures(None)


def test_a_setup_error_stops_the_run_at_once(make_parts: Callable[..., Parts]) -> None:
    parts = make_parts(_settings())
    with pytest.raises(RunStoppedError, match="could not"):
        _outcomes(parts, _settings()).check_failures("job 0 could not set itself up")


def test_the_best_is_a_completed_setting_never_a_stopped_or_failed_one(
    make_parts: Callable[..., Parts],
) -> None:
    settings = _settings()
    parts = make_parts(settings)
    parts.ask(3)
    outcomes = _outcomes(parts, settings)
    stopped = SettingResult(0.1, 0.0, 1, 0, {}, stopped_at=1)
    parts.record(EventKind.SETTING_FINISHED, sid=0, result=stopped.to_dict())
    parts.finish(1, None)
    parts.finish(2, 0.7)
    for sid in range(3):
        outcomes.note_best(parts.history.settings[sid])
    assert outcomes.best == (0.7, 2)


def test_loop_settings_follow_the_config(tmp_path: Path) -> None:
    from hpoptim.config import RunConfig
    from hpoptim.config.schema import build

    base = {
        "optimization_procedure_name": "t",
        "results_dir": str(tmp_path),
        "script_relative_path": "job.py",
        "run_in_working_dir": True,
        "metric_to_optimize": "loss",
        "minimize": False,
        "number_of_samples": 7,
        "n_jobs_per_iteration": 3,
        "optimized_params": [{"param": "x", "distribution": "TruncatedNormal", "bounds": [0, 1]}],
    }
    for extra, deterministic in (
        ({}, False),
        ({"seed": 4}, True),
        ({"seed": 4, "deterministic_order": False}, False),
    ):
        cfg, problems = build({**base, **extra})
        assert problems == []
        assert isinstance(cfg, RunConfig)
        settings = LoopSettings.from_config(cfg, 11)
        assert (settings.n_samples, settings.n_in_flight, settings.minimize) == (7, 3, False)
        assert settings.seed == 11
        assert settings.deterministic_order is deterministic


def test_a_jobs_environment_says_what_its_params_file_says(
    make_parts: Callable[..., Parts],
) -> None:
    from hpoptim import contract

    parts = make_parts(_settings(seed=5), Lifecycle("loss", n_reruns=2, training_iterations=4))
    parts.ask(4)
    setting = parts.history.settings[3]
    spec = parts.jobs.spec(setting, 1, 2)
    parts.jobs.write_params(spec, setting, 1, 2)
    context = json.loads(spec.paths.params_file.read_text())["job"]
    expected = {
        contract.ENV_PARAMS_FILE: str(spec.paths.params_file),
        contract.ENV_RUN_DIR: str(spec.paths.run_dir),
        contract.ENV_JOB_ID: "3_1.0-2",
        contract.ENV_SETTING_ID: "3",
        contract.ENV_RERUN: "1",
        contract.ENV_ITERATION: "0",
        contract.ENV_ATTEMPT: "2",
        contract.ENV_N_ITERATIONS: "4",
        contract.ENV_SEED: str(parts.jobs.seed(3, 1)),
        contract.ENV_PREVIOUS_RUN_DIR: "",
        contract.ENV_METRICS_FILE: str(spec.paths.metrics_file),
    }
    assert {k: v for k, v in spec.env.items() if k.startswith(contract.ENV_PREFIX)} == expected
    assert contract.job_env(context, str(spec.paths.params_file)) == expected
    assert context["seed"] == parts.jobs.seed(3, 1) != parts.jobs.seed(3, 0)
