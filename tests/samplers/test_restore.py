"""Samplers rebuilt from the journal continue the run they were part of.

A run is simulated with settings in flight: the sampler is asked a batch ahead and
told results in completion order (shuffled, failures included). The journal of
that run restores a new sampler, asking it nothing; then the uninterrupted and the
restored sampler are driven on by the same asks and tells and must propose the same.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hpoptim.samplers import BaseSampler, make_sampler
from hpoptim.samplers.base import SamplerHistory
from hpoptim.space import SearchSpace
from tests.contracts.sampler import MIXED_SPACE, SamplerContract, _round_trip, objective

Journal = list[tuple[str, Any, Any]]

CASES = [
    pytest.param("cmaes", {"popsize": 5}, id="cmaes"),
    pytest.param("cmaes", {"popsize": 4, "with_margin": True}, id="cmaes-margin"),
    pytest.param("cmaes", {"use_separable_cma": True}, id="cmaes-separable"),
    pytest.param("cmaes", {"lr_adapt": True, "n_startup_trials": 7}, id="cmaes-lr-adapt"),
    pytest.param("tpe_cmaes", {"n_startup_trials": 5, "switch_after": 15}, id="tpe_cmaes"),
]


def _make(name: str, settings: dict[str, Any], seed: int = 5) -> BaseSampler:
    space = SearchSpace.from_config(MIXED_SPACE)
    return make_sampler(name, space, minimize=True, seed=seed, settings=settings)


def _drive(sampler: BaseSampler, n_asks: int, order: random.Random, in_flight: int = 6) -> Journal:
    """Keep ``in_flight`` settings running; each ask first finishes a random one of them."""
    journal: Journal = []
    running: list[dict[str, Any]] = []
    for _ in range(n_asks):
        if len(running) == in_flight:
            done = running.pop(order.randrange(len(running)))
            sampler.tell(done, objective(done))
            journal.append(("finished", done, objective(done)))
        params = _round_trip(sampler.ask())
        journal.append(("asked", params, None))
        running.append(params)
    return journal


def _drive_stopping(
    sampler: BaseSampler, n_asks: int
) -> tuple[list[dict[str, Any]], list[tuple[int, float | None, int]]]:
    """Finish settings in ask order, 4 in flight; every third success is stopped early
    (after iteration 1, with a worse value). Returns the settings asked and, in the
    order told, (setting id, value, iteration it was stopped after; -1: not stopped)."""
    asked: list[dict[str, Any]] = []
    told: list[tuple[int, float | None, int]] = []
    for sid in range(n_asks):
        if sid >= 4:
            params, value = asked[sid - 4], objective(asked[sid - 4])
            if value is not None and sid % 3 == 0:
                sampler.tell_stopped(params, value + 1.0, 1)
                told.append((sid - 4, value + 1.0, 1))
            else:
                sampler.tell(params, value)
                told.append((sid - 4, value, -1))
        asked.append(_round_trip(sampler.ask()))
    return asked, told


@pytest.mark.parametrize(("name", "settings"), CASES)
def test_settings_stopped_early_are_restored_as_told(name: str, settings: dict[str, Any]) -> None:
    original = _make(name, settings)
    asked, told = _drive_stopping(original, 100)
    history = SamplerHistory(
        asked=tuple(asked),
        told=tuple((sid, value) for sid, value, _ in told),
        stopped={sid: it for sid, _, it in told if it >= 0},
    )
    restored = _make(name, settings)
    restored.restore(history)
    assert [restored.ask() for _ in range(10)] == [original.ask() for _ in range(10)]


def _n_succeeded(journal: Journal) -> int:
    return sum(1 for event, _, value in journal if event == "finished" and value is not None)


@pytest.mark.parametrize(("name", "settings"), CASES)
def test_a_restored_sampler_goes_on_as_the_uninterrupted_one(
    name: str, settings: dict[str, Any]
) -> None:
    original = _make(name, settings)
    journal = _drive(original, 120, random.Random(1))
    assert _n_succeeded(journal) > 15  # tpe_cmaes is past its switch to CMA-ES
    restored = _make(name, settings)
    SamplerContract._restore(restored, journal)
    # settings still in flight finish later; both samplers go on identically
    assert _drive(restored, 40, random.Random(2)) == _drive(original, 40, random.Random(2))


@pytest.mark.parametrize(("name", "settings"), CASES)
def test_a_restore_carries_what_was_learnt(name: str, settings: dict[str, Any]) -> None:
    """Without the results (a sampler that knows only how many were asked), other proposals."""
    original = _make(name, settings)
    journal = _drive(original, 120, random.Random(3))
    restored, forgetful = _make(name, settings), _make(name, settings)
    SamplerContract._restore(restored, journal)
    forgetful.n_asked = original.n_asked
    after = [restored.ask() for _ in range(10)]
    assert after == [original.ask() for _ in range(10)]
    assert after != [forgetful.ask() for _ in range(10)]


def _distance_to_optimum(params: dict[str, Any]) -> float:
    """How far the continuous parameters of ``objective`` are from its optimum."""
    return float(abs(params["x"] - 0.3) + params["model.dropout"])


def test_cmaes_after_a_resume_searches_where_it_had_got_to() -> None:
    """CMA-ES does not restart from the middle of the space: its step size stays small."""
    original = _make("cmaes", {})
    journal = _drive(original, 300, random.Random(4))
    restored, fresh = _make("cmaes", {}), _make("cmaes", {})
    SamplerContract._restore(restored, journal)
    fresh.tell(journal[0][1], objective(journal[0][1]))  # past the startup draw
    near = sorted(_distance_to_optimum(restored.ask()) for _ in range(20))
    far = sorted(_distance_to_optimum(fresh.ask()) for _ in range(20))
    assert near[10] < far[10] / 3


RESTORE_IN_A_NEW_PROCESS = """
import json, sys
from hpoptim.samplers import make_sampler
from hpoptim.samplers.base import SamplerHistory
from hpoptim.space import SearchSpace
from tests.contracts.sampler import MIXED_SPACE
name, settings, history = json.loads(sys.stdin.read())
space = SearchSpace.from_config(MIXED_SPACE)
sampler = make_sampler(name, space, minimize=True, seed=5, settings=settings)
sampler.restore(SamplerHistory(tuple(history["asked"]), tuple(map(tuple, history["told"]))))
loaded = {"optuna": "optuna" in sys.modules, "scipy.stats": "scipy.stats" in sys.modules}
proposals = [sampler.ask() for _ in range(5)]
import scipy.stats  # still importable
print(json.dumps({"next": proposals, "loaded": loaded}))
"""


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        pytest.param("cmaes", {"popsize": 5}, id="cmaes"),
        pytest.param("tpe_cmaes", {"n_startup_trials": 5, "switch_after": 15}, id="tpe_cmaes"),
    ],
)
def test_a_resume_past_the_switch_to_cmaes_needs_neither_optuna_nor_scipy_stats(
    name: str, settings: dict[str, Any]
) -> None:
    """A driver resuming a long run neither imports Optuna nor rebuilds its study, and
    CMA-ES comes without scipy.stats (60 MB)."""
    original = _make(name, settings)
    journal = _drive(original, 60, random.Random(6))
    asked = [params for event, params, _ in journal if event == "asked"]
    sid = {json.dumps(params, sort_keys=True): i for i, params in enumerate(asked)}
    told = [(sid[json.dumps(p, sort_keys=True)], v) for e, p, v in journal if e == "finished"]
    proc = subprocess.run(
        [sys.executable, "-c", RESTORE_IN_A_NEW_PROCESS],
        input=json.dumps([name, settings, {"asked": asked, "told": told}]),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    restored = json.loads(proc.stdout)
    assert restored["next"] == [_round_trip(original.ask()) for _ in range(5)]
    assert restored["loaded"] == {"optuna": False, "scipy.stats": False}


def test_tpe_cmaes_imports_cmaes_when_built_not_at_its_switch() -> None:
    """The switch to CMA-ES happens mid-run, with the launcher's threads running; the
    import that hides scipy.stats for a moment happens when the sampler is built."""
    code = (
        "import sys\n"
        "from hpoptim.samplers import make_sampler\n"
        "from hpoptim.space import SearchSpace\n"
        "from tests.contracts.sampler import MIXED_SPACE\n"
        "make_sampler('tpe_cmaes', SearchSpace.from_config(MIXED_SPACE), minimize=True,"
        " seed=1, settings={})\n"
        "print('cmaes' in sys.modules, 'scipy.stats' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert proc.stdout.split() == ["True", "False"]
