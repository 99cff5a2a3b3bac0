"""The loop and its sampler: restore on resume (never a replay) and a seeded order.

An in-process launcher runs each job as a function of its params file and finishes
jobs in an order drawn from its own generator, so completion order is the one thing
that varies between otherwise identical runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpoptim.jobspec import JobSpec, JobState, JobStatus
from hpoptim.launchers.base import BaseLauncher
from hpoptim.run.loop import JobTemplate, LoopSettings, Optimization, RunPlan
from hpoptim.samplers import make_sampler
from hpoptim.samplers.base import BaseSampler, SamplerHistory
from hpoptim.space import SearchSpace
from hpoptim.state.history import Lifecycle
from hpoptim.state.storage import ResultsLayout, read_journal

SPACE = [
    {"param": "x", "distribution": "TruncatedNormal", "bounds": [-3, 3]},
    {"param": "lr", "distribution": "LogUniform", "bounds": [1e-4, 1]},
    {"param": "act", "distribution": "Discrete", "options": ["relu", [1, 2]]},
]


def loss(params: Mapping[str, Any]) -> float:
    return float(
        (params["x"] - 1) ** 2 + (math.log10(params["lr"]) + 2) ** 2 + (params["act"] == "relu")
    )


class ShuffledLauncher(BaseLauncher):
    """Runs jobs in-process; each poll finishes one random job of those running."""

    name = "shuffled"

    def __init__(self, order_seed: int) -> None:
        self._rng = np.random.default_rng(order_seed)
        self._running: list[JobSpec] = []

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, work_dir: Path, name: str
    ) -> ShuffledLauncher:
        return cls(int(settings["order_seed"]))

    def capacity(self) -> int | None:
        return None

    def submit(self, specs: Sequence[JobSpec]) -> dict[str, str]:
        self._running += specs
        return {spec.job_id: spec.job_id for spec in specs}

    def poll(self, timeout_s: float) -> list[JobStatus]:
        if not self._running:
            return []
        spec = self._running.pop(int(self._rng.integers(len(self._running))))
        params = json.loads(spec.paths.params_file.read_text())["flat_params"]
        spec.paths.metrics_file.write_text(json.dumps({"loss": loss(params)}))
        return [JobStatus(spec.job_id, JobState.COMPLETED, exit_code=0)]

    def cancel(self, job_ids: Sequence[str] | None = None) -> None:
        self._running.clear()

    def reattach(self, spec: JobSpec, native_id: str) -> bool:
        return False


def _sampler(name: str, seed: int = 3) -> BaseSampler:
    return make_sampler(name, SearchSpace.from_config(SPACE), minimize=True, seed=seed, settings={})


def _plan(tmp_path: Path, n_samples: int, deterministic: bool) -> RunPlan:
    settings = LoopSettings(
        n_samples=n_samples, n_in_flight=5, seed=3, deterministic_order=deterministic
    )
    return RunPlan(settings, Lifecycle(metric="loss"), JobTemplate(command=("x",), cwd=tmp_path))


def _run(
    root: Path, name: str, order_seed: int, *, deterministic: bool, n_samples: int = 40
) -> list[dict[str, Any]]:
    """Run a whole optimisation; return the settings asked, in ask order."""
    layout = ResultsLayout(root)
    root.mkdir(parents=True)
    loop = Optimization(
        _plan(root, n_samples, deterministic), _sampler(name), ShuffledLauncher(order_seed), layout
    )
    loop.run()
    return [e["params"] for e in read_journal(layout.journal) if e["e"] == "asked"]


@pytest.mark.parametrize("name", ["cem_metaoptimizer", "tpe"])
def test_a_seeded_run_repeats_whatever_order_jobs_finish_in(tmp_path: Path, name: str) -> None:
    runs = [_run(tmp_path / str(order), name, order, deterministic=True) for order in (1, 2, 3)]
    assert runs[0] == runs[1] == runs[2]


def test_without_deterministic_order_completion_order_changes_the_settings(
    tmp_path: Path,
) -> None:
    """The control: the test above would catch a loop that tells in completion order."""
    first = _run(tmp_path / "a", "cem_metaoptimizer", 1, deterministic=False)
    second = _run(tmp_path / "b", "cem_metaoptimizer", 2, deterministic=False)
    assert first[:5] == second[:5]  # the first batch is asked before any result
    assert first != second


class _Spy:
    """Wraps a sampler's ask and restore to count calls."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.asks = 0
        self.restored: list[SamplerHistory] = []
        ask, restore = sampler.ask, sampler.restore

        def counting_ask() -> dict[str, Any] | None:
            self.asks += 1
            return ask()

        def recording_restore(history: SamplerHistory) -> None:
            self.restored.append(history)
            restore(history)

        sampler.ask = counting_ask  # type: ignore[method-assign]
        sampler.restore = recording_restore  # type: ignore[method-assign]


@pytest.mark.parametrize("deterministic", [True, False], ids=["ask-order", "finish-order"])
@pytest.mark.parametrize("name", ["cem_metaoptimizer", "tpe"])
def test_resume_restores_the_sampler_and_proposes_as_an_uninterrupted_run(
    tmp_path: Path, name: str, deterministic: bool
) -> None:
    whole = _run(tmp_path / "whole", name, 4, deterministic=deterministic, n_samples=30)
    # the same run cut after its first 20 settings finished, then resumed
    cut = tmp_path / "cut"
    _run(cut, name, 4, deterministic=deterministic, n_samples=20)
    events = list(read_journal(ResultsLayout(cut).journal))
    sampler = _sampler(name)
    spy = _Spy(sampler)
    loop = Optimization(
        _plan(cut, 30, deterministic), sampler, ShuffledLauncher(99), ResultsLayout(cut)
    )
    loop.resume_from(events)
    assert spy.asks == 0
    [history] = spy.restored
    assert [dict(p) for p in history.asked] == whole[:20]
    assert len(history.told) == (15 if deterministic else 20)  # ask order: 0..14 were due
    if not deterministic:  # as a sampler asked and told along the journal proposes
        along = _sampler(name)
        for event in events:
            if event["e"] == "asked":
                along.ask()
            elif event["e"] == "setting_finished":
                sid = int(event["sid"])
                along.tell(events_params(events, sid), event["result"]["value"])
        assert sampler.ask() == along.ask()
        return
    loop.run()
    resumed = [e["params"] for e in read_journal(ResultsLayout(cut).journal) if e["e"] == "asked"]
    assert spy.asks == 10
    assert resumed == whole


def events_params(events: Sequence[Mapping[str, Any]], sid: int) -> Any:
    return next(e["params"] for e in events if e["e"] == "asked" and e["sid"] == sid)


JOB = """\
import json, os, random, sys, time
p = json.load(open(sys.argv[-1]))
x = p["params"]["x"]
time.sleep(random.Random(os.environ["ORDER"] + str(x)).uniform(0, 0.15))
path = os.environ["HPOPTIM_METRICS_FILE"]
with open(path + ".tmp", "w") as fh:
    json.dump({"loss": (x - 0.3) ** 2 + p["params"]["lr"]}, fh)
os.replace(path + ".tmp", path)
"""


def test_a_seeded_cli_run_on_the_local_launcher_repeats_under_other_job_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real subprocesses whose run times differ between the runs, so they finish in other orders."""
    from hpoptim.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.py").write_text(JOB)
    orders = []
    for order in ("a", "b"):
        cfg = {
            "optimization_procedure_name": order,
            "results_dir": str(tmp_path / "results"),
            "run_in_working_dir": True,
            "script_relative_path": "job.py",
            "optimized_params": [
                {"param": "x", "distribution": "TruncatedNormal", "bounds": [-1, 1]},
                {"param": "lr", "distribution": "LogUniform", "bounds": [1e-4, 1]},
            ],
            "optimizer_str": "cem_metaoptimizer",
            "optimizer_settings": {"num_jobs_in_elite": 5},
            "number_of_samples": 24,
            "n_jobs_per_iteration": 4,
            "metric_to_optimize": "loss",
            "minimize": True,
            "seed": 9,
            "environment": {"ORDER": order},
            "local": {"n_parallel_jobs": 4},
        }
        (tmp_path / f"{order}.json").write_text(json.dumps(cfg))
        assert main([str(tmp_path / f"{order}.json"), "-q"]) == 0
        events = list(read_journal(tmp_path / "results" / order / "journal.jsonl"))
        asked = [e["params"] for e in events if e["e"] == "asked"]
        finished = [e["sid"] for e in events if e["e"] == "setting_finished"]
        orders.append((asked, finished))
    (asked_a, finished_a), (asked_b, finished_b) = orders
    assert finished_a != finished_b  # the jobs did finish in other orders
    assert asked_a == asked_b
