"""Optuna-based samplers (TPE, CMA-ES) and quasi-random search: contract, mapping, learning."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from scipy import stats

from hpoptim.samplers import make_sampler, validate_optimizer
from hpoptim.samplers.optuna_study import from_optuna_value, to_optuna, to_optuna_value
from hpoptim.samplers.qmc import from_unit
from hpoptim.space import (
    Discrete,
    Distribution,
    IntLogNormal,
    IntLogUniform,
    IntNormal,
    IntUniform,
    LogUniform,
    SearchSpace,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
)
from tests.contracts.sampler import SamplerContract


class TestTPEContract(SamplerContract):
    name = "tpe"
    settings = {"n_startup_trials": 5}


class TestCmaEsContract(SamplerContract):
    name = "cmaes"
    settings = {"popsize": 4}


class TestTPECmaEsContract(SamplerContract):
    name = "tpe_cmaes"
    settings = {"n_startup_trials": 5, "switch_after": 20}


class TestQMCContract(SamplerContract):
    name = "quasirandom"


# -- mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dist", "kind", "low", "high", "log"),
    [
        pytest.param(TruncatedNormal(bounds=(-1, 2)), "Float", -1.0, 2.0, False, id="normal"),
        pytest.param(TruncatedLogNormal(bounds=(1e-4, 1)), "Float", 1e-4, 1.0, True, id="lognorm"),
        pytest.param(Uniform(bounds=(0, 1)), "Float", 0.0, 1.0, False, id="uniform"),
        pytest.param(LogUniform(bounds=(1e-3, 10)), "Float", 1e-3, 10.0, True, id="loguniform"),
        pytest.param(IntNormal(bounds=(1, 6)), "Int", 1, 6, False, id="intnormal"),
        pytest.param(IntLogNormal(bounds=(8, 256)), "Int", 8, 256, True, id="intlognormal"),
        pytest.param(IntUniform(bounds=(16, 18)), "Int", 16, 18, False, id="intuniform"),
        pytest.param(IntLogUniform(bounds=(16, 1024)), "Int", 16, 1024, True, id="intloguniform"),
    ],
)
def test_bounded_distributions_map_with_bounds_log_and_integers(
    dist: Distribution, kind: str, low: float, high: float, log: bool
) -> None:
    mapped = to_optuna(dist)
    assert type(mapped).__name__ == f"{kind}Distribution"
    assert (mapped.low, mapped.high, mapped.log) == (low, high, log)  # type: ignore[attr-defined]
    assert type(mapped.low) is type(low)  # type: ignore[attr-defined]
    assert type(from_optuna_value(dist, np.float64(high))) is type(low)


def test_discrete_options_of_any_json_value_map_to_canonical_texts_and_back() -> None:
    options = ("relu", [1, 2], {"k": None, "a": [True]}, 3.5, None, 2)
    dist = Discrete(options=options)
    mapped = to_optuna(dist)
    assert mapped.choices == tuple(json.dumps(o, sort_keys=True) for o in options)  # type: ignore[attr-defined]
    for option in options:
        text = to_optuna_value(dist, option)
        assert text in mapped.choices  # type: ignore[attr-defined]
        back = from_optuna_value(dist, text)
        assert back == option
        if isinstance(option, (list, dict)):
            assert back is not option  # a copy the job may change
    assert to_optuna_value(dist, (1, 2)) == to_optuna_value(dist, [1, 2])


@pytest.mark.parametrize("name", ["tpe", "cmaes"])
def test_every_option_of_a_json_discrete_is_proposed(name: str) -> None:
    space = SearchSpace.from_config(
        [{"param": "net", "distribution": "Discrete", "options": [[64, 64], [256], {"d": 1}]}]
    )
    sampler = make_sampler(name, space, minimize=True, seed=0, settings={})
    seen = []
    for _ in range(30):
        params = sampler.ask()
        seen.append(json.dumps(params["net"]))
        sampler.tell(params, float(len(json.dumps(params["net"]))))
    assert set(seen) == {"[64, 64]", "[256]", '{"d": 1}'}


# -- priors --------------------------------------------------------------------------


def test_quasirandom_follows_the_truncated_normal_prior() -> None:
    dist = TruncatedNormal(bounds=(0.0, 1.0))
    us = (np.arange(2000) + 0.5) / 2000
    values = np.array([from_unit(dist, float(u)) for u in us])
    ref = stats.truncnorm(-2, 2, loc=0.5, scale=0.25)
    assert stats.kstest(values, ref.cdf).pvalue > 0.5


def test_quasirandom_covers_the_space_more_evenly_than_random() -> None:
    space = SearchSpace.from_config(
        [{"param": f"x{i}", "distribution": "Uniform", "bounds": [0, 1]} for i in range(2)]
    )

    def worst_cell(name: str) -> int:
        sampler = make_sampler(name, space, minimize=True, seed=4, settings={})
        points = [sampler.ask() for _ in range(256)]
        cells = np.zeros((8, 8), dtype=int)
        for p in points:
            cells[int(p["x0"] * 8), int(p["x1"] * 8)] += 1
        return int(np.abs(cells - 4).max())

    assert worst_cell("quasirandom") == 0  # a Sobol prefix of 2**8 points is balanced
    assert worst_cell("random") > 2


@pytest.mark.parametrize("name", ["tpe", "cmaes"])
def test_startup_settings_follow_the_prior(name: str) -> None:
    """Until n_startup_trials have finished, proposals are draws of hpoptim's prior."""
    space = SearchSpace.from_config(
        [{"param": "x", "distribution": "TruncatedNormal", "bounds": [0, 1]}]
    )
    sampler = make_sampler(name, space, minimize=True, seed=1, settings={"n_startup_trials": 500})
    xs = [sampler.ask()["x"] for _ in range(400)]
    ref = stats.truncnorm(-2, 2, loc=0.5, scale=0.25)
    assert stats.kstest(xs, ref.cdf).pvalue > 1e-3


# -- learning ------------------------------------------------------------------------


def _sphere(params: dict[str, Any]) -> float:
    return float((params["x"] - 0.7) ** 2 + (math.log10(params["lr"]) + 3) ** 2 / 4)


@pytest.mark.parametrize("name", ["tpe", "cmaes", "tpe_cmaes"])
def test_model_based_samplers_beat_random_search(name: str) -> None:
    space = SearchSpace.from_config(
        [
            {"param": "x", "distribution": "Uniform", "bounds": [-2, 2]},
            {"param": "lr", "distribution": "LogUniform", "bounds": [1e-5, 1e-1]},
        ]
    )

    def best(sampler_name: str, seed: int) -> float:
        sampler = make_sampler(sampler_name, space, minimize=True, seed=seed, settings={})
        values = []
        for _ in range(8):  # batches of 10 in flight
            batch = [sampler.ask() for _ in range(10)]
            for params in batch:
                assert params is not None
                values.append(_sphere(params))
                sampler.tell(params, values[-1])
        return min(values)

    ours = [best(name, seed) for seed in range(5)]
    baseline = [best("random", seed) for seed in range(5)]
    assert np.median(ours) < 0.5 * np.median(baseline)


# -- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "settings", "path", "message"),
    [
        pytest.param(
            "tpe",
            {"n_startup_trial": 3},
            "optimizer_settings.n_startup_trial",
            "did you mean 'n_startup_trials'?",
            id="tpe-typo",
        ),
        pytest.param(
            "tpe",
            {"multivariate": "yes"},
            "optimizer_settings.multivariate",
            "must be true or false, got 'yes'",
            id="tpe-bool",
        ),
        pytest.param(
            "cmaes",
            {"sigma": 0.1},
            "optimizer_settings.sigma",
            "unknown key 'sigma' for 'cmaes'",
            id="cmaes-unknown",
        ),
        pytest.param(
            "cmaes",
            {"popsize": 1},
            "optimizer_settings.popsize",
            "must be an integer >= 2, got 1",
            id="cmaes-popsize",
        ),
        pytest.param(
            "cmaes",
            {"use_separable_cma": True, "with_margin": True},
            "optimizer_settings.with_margin",
            "cannot be true together with use_separable_cma",
            id="cmaes-separable-with-margin",
        ),
        pytest.param(
            "tpe_cmaes",
            {"switch_after": 9},
            "optimizer_settings.switch_after",
            "must be an integer >= 10 (CMA-ES starts from the best tenth of them), got 9",
            id="tpe_cmaes-switch",
        ),
        pytest.param(
            "quasirandom",
            {"scramble": True},
            "optimizer_settings.scramble",
            "unknown key 'scramble' for 'quasirandom'",
            id="qmc-none",
        ),
    ],
)
def test_bad_settings_are_config_problems(
    name: str, settings: dict[str, Any], path: str, message: str
) -> None:
    space = SearchSpace.from_config([{"param": "x", "distribution": "Uniform", "bounds": [0, 1]}])
    [problem] = validate_optimizer(name, settings, space)
    assert problem.path == path
    assert message in problem.message


def test_optuna_warnings_and_info_logs_stay_quiet() -> None:
    space = SearchSpace.from_config(
        [{"param": p, "distribution": "Uniform", "bounds": [0, 1]} for p in ("x", "y")]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        experimental = [{"with_margin": True}, {"use_separable_cma": True}, {"lr_adapt": True}]
        for name, settings in [("tpe", {}), *(("cmaes", s) for s in experimental)]:
            sampler = make_sampler(name, space, minimize=True, seed=0, settings=settings)
            for i in range(15):
                params = sampler.ask()
                sampler.tell(params, float(i % 4))
    import optuna

    assert optuna.logging.get_verbosity() == optuna.logging.WARNING


def test_tpe_cmaes_switches_at_its_smallest_switch_after() -> None:
    space = SearchSpace.from_config(
        [
            {"param": "x", "distribution": "Uniform", "bounds": [0, 1]},
            {"param": "y", "distribution": "Uniform", "bounds": [0, 1]},
        ]
    )
    sampler = make_sampler(
        "tpe_cmaes",
        space,
        minimize=True,
        seed=0,
        settings={"n_startup_trials": 2, "switch_after": 10},
    )
    for _ in range(14):  # through the switch at 10 successes and some CMA-ES proposals
        params = sampler.ask()
        assert params is not None
        sampler.tell(params, (params["x"] - 0.3) ** 2 + params["y"])
    assert sampler._cma is not None
