"""CEM: the contract, convergence on simple problems, the elite and restarts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from hpoptim.errors import ConfigError
from hpoptim.samplers import make_sampler, validate_optimizer
from hpoptim.samplers.cem import CEMSampler
from hpoptim.samplers.models import CategoricalModel, prior
from hpoptim.space import SearchSpace
from tests.contracts.sampler import SamplerContract


class TestCEMContract(SamplerContract):
    name = "cem_metaoptimizer"


class TestCEMWithRestartsContract(SamplerContract):
    name = "cem_metaoptimizer"
    settings = {
        "num_jobs_in_elite": 6,
        "with_restarts": True,
        "restart_probability": 0.5,
        "momentum": 0.0,
        "min_spread": 0.1,
    }


QUADRATIC: list[dict[str, Any]] = [
    {"param": "a.x", "distribution": "TruncatedNormal", "bounds": [-5, 5]},
    {"param": "a.y", "distribution": "Uniform", "bounds": [-5, 5]},
    {"param": "lr", "distribution": "TruncatedLogNormal", "bounds": [1e-6, 1]},
    {"param": "act", "distribution": "Discrete", "options": ["relu", "tanh", "elu"]},
]
OPTIMUM: dict[str, Any] = {"a.x": 1.5, "a.y": -2.0, "log10_lr": -3.0, "act": "tanh"}


def _loss(params: dict[str, Any]) -> float:
    return float(
        (params["a.x"] - OPTIMUM["a.x"]) ** 2
        + (params["a.y"] - OPTIMUM["a.y"]) ** 2
        + (math.log10(params["lr"]) - OPTIMUM["log10_lr"]) ** 2
        + (0.0 if params["act"] == OPTIMUM["act"] else 2.0)
    )


def _optimise(name: str, seed: int, minimize: bool, settings: dict[str, Any]) -> list[Any]:
    sampler = make_sampler(
        name, SearchSpace.from_config(QUADRATIC), minimize=minimize, seed=seed, settings=settings
    )
    sign = 1.0 if minimize else -1.0
    for _ in range(150):
        params = sampler.ask()
        assert params is not None
        sampler.tell(params, sign * _loss(params))
    return [sampler.ask() for _ in range(100)]


@pytest.mark.parametrize("minimize", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.75])
@pytest.mark.parametrize("seed", [0, 1])
def test_concentrates_near_the_optimum_of_a_quadratic(
    minimize: bool, momentum: float, seed: int
) -> None:
    settings = {"num_jobs_in_elite": 10, "momentum": momentum}
    late = _optimise("cem_metaoptimizer", seed, minimize, settings)
    baseline = _optimise("random", seed, minimize, {})
    assert np.median([_loss(p) for p in late]) < 0.25 * np.median([_loss(p) for p in baseline])
    assert abs(np.median([p["a.x"] for p in late]) - OPTIMUM["a.x"]) < 0.5
    assert abs(np.median([p["a.y"] for p in late]) - OPTIMUM["a.y"]) < 0.5
    assert abs(np.median([math.log10(p["lr"]) for p in late]) - OPTIMUM["log10_lr"]) < 0.5
    assert sum(p["act"] == OPTIMUM["act"] for p in late) > 60


def test_the_elite_is_the_best_n_told_and_excludes_failures() -> None:
    space = SearchSpace.from_config([{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}])
    sampler = CEMSampler(space, minimize=True, seed=0, settings={"num_jobs_in_elite": 5})
    told: list[tuple[float, float | None]] = []
    for i in range(40):
        params = sampler.ask()
        # every setting with x < 0.5 fails: its "value" would have been the best
        value = None if params["x"] < 0.5 else float(params["x"]) + (i % 3) * 0.01
        sampler.tell(params, value)
        told.append((params["x"], value))
    best = sorted((v, x) for x, v in told if v is not None)[:5]
    assert [p["x"] for p in sampler.elite] == [x for _, x in best]
    assert all(p["x"] >= 0.5 for p in sampler.elite)


def test_failures_alone_leave_the_models_at_their_priors() -> None:
    space = SearchSpace.from_config(QUADRATIC)
    sampler = CEMSampler(space, minimize=True, seed=0)
    for _ in range(30):
        sampler.tell(sampler.ask(), None)
    assert sampler.elite == []
    assert sampler.models == {name: prior(d) for name, d in space.distributions.items()}


def test_refits_only_once_the_elite_has_five_settings() -> None:
    space = SearchSpace.from_config(QUADRATIC)
    sampler = CEMSampler(space, minimize=True, seed=0, settings={"num_jobs_in_elite": 8})
    for n in range(1, 7):
        sampler.tell(sampler.ask(), float(n))
        priors = {name: prior(d) for name, d in space.distributions.items()}
        assert (sampler.models == priors) is (n < 5)


def test_discrete_probabilities_follow_the_elite_and_keep_a_floor() -> None:
    space = SearchSpace.from_config([QUADRATIC[3]])
    sampler = CEMSampler(space, minimize=False, seed=0, settings={"min_spread": 0.3})
    for _ in range(100):
        params = sampler.ask()
        sampler.tell(params, 1.0 if params["act"] == "elu" else 0.0)
    dist = sampler.models["act"]
    assert isinstance(dist, CategoricalModel)
    assert dist.probs is not None
    assert dist.probs[2] == max(dist.probs)
    assert min(dist.probs) >= 0.3 / 3


@pytest.mark.parametrize(("with_restarts", "min_repeats"), [(False, 0), (True, 10)])
def test_restarts_repropose_settings_from_the_better_half_of_the_elite(
    with_restarts: bool, min_repeats: int
) -> None:
    space = SearchSpace.from_config(QUADRATIC)
    settings = {"num_jobs_in_elite": 6, "with_restarts": with_restarts, "restart_probability": 0.3}
    sampler = CEMSampler(space, minimize=True, seed=2, settings=settings)
    seen: list[dict[str, Any]] = []
    repeats = 0
    for _ in range(120):
        better_half = sampler.elite[:3] if len(sampler.elite) == 6 else []
        params = sampler.ask()
        if params in seen:
            repeats += 1
            assert params in better_half
        seen.append(params)
        sampler.tell(params, _loss(params))
    assert repeats >= min_repeats
    if not with_restarts:
        assert repeats == 0


SETTING_CASES = [
    pytest.param(
        {"num_jobs_in_elite": 0}, "num_jobs_in_elite", "a positive integer, got 0", id="elite0"
    ),
    pytest.param(
        {"num_jobs_in_elite": 2.5},
        "num_jobs_in_elite",
        "a positive integer, got 2.5",
        id="elite-float",
    ),
    pytest.param({"with_restarts": 1}, "with_restarts", "true or false, got 1", id="restarts-int"),
    pytest.param(
        {"restart_probability": 1.5},
        "restart_probability",
        "a number in [0, 1], got 1.5",
        id="prob",
    ),
    pytest.param({"momentum": 1}, "momentum", "a number in [0, 1), got 1", id="momentum"),
    pytest.param({"min_spread": 0}, "min_spread", "a number in (0, 1), got 0", id="spread0"),
    pytest.param(
        {"min_spread": float("nan")}, "min_spread", "a number in (0, 1), got nan", id="nan"
    ),
]


@pytest.mark.parametrize(("settings", "key", "rule"), SETTING_CASES)
def test_invalid_settings_are_reported(settings: dict[str, Any], key: str, rule: str) -> None:
    problems = validate_optimizer("cem_metaoptimizer", settings, SearchSpace.from_config(QUADRATIC))
    assert [(p.path, p.message) for p in problems] == [
        (f"optimizer_settings.{key}", f"must be {rule}")
    ]


def test_unknown_settings_suggest_the_closest() -> None:
    problems = validate_optimizer(
        "cem_metaoptimizer",
        {"num_job_in_elite": 5, "restarts": True},
        SearchSpace.from_config(QUADRATIC),
    )
    valid = "min_spread, momentum, num_jobs_in_elite, restart_probability, with_restarts"
    assert [(p.path, p.message) for p in problems] == [
        (
            "optimizer_settings.num_job_in_elite",
            "unknown key 'num_job_in_elite' for 'cem_metaoptimizer'; "
            "did you mean 'num_jobs_in_elite'?",
        ),
        (
            "optimizer_settings.restarts",
            "unknown key 'restarts' for 'cem_metaoptimizer'; did you mean 'with_restarts'?",
        ),
    ]
    message = str(ConfigError(problems))
    assert message.splitlines()[-1] == f"valid keys of optimizer_settings: {valid}"
    assert message.count(valid) == 1


def test_unknown_optimizer_is_reported_with_the_valid_ones() -> None:
    problems = validate_optimizer("cem_metaoptimiser", {}, SearchSpace.from_config(QUADRATIC))
    assert [(p.path, p.message) for p in problems] == [
        (
            "optimizer_str",
            "unknown optimizer 'cem_metaoptimiser'; valid: cem_metaoptimizer, random, "
            "gridsearch, tpe, cmaes, quasirandom, tpe_cmaes; did you mean 'cem_metaoptimizer'?",
        )
    ]
