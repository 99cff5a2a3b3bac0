"""Random search: the contract, and independence from what it is told."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from hpoptim.samplers import make_sampler
from hpoptim.samplers.random import RandomSampler
from hpoptim.space import SearchSpace
from tests.contracts.sampler import SamplerContract


class TestRandomContract(SamplerContract):
    name = "random"


def _space() -> SearchSpace:
    return SearchSpace.from_config(
        [
            {"param": "x", "distribution": "Uniform", "bounds": [-1, 1]},
            {"param": "lr", "distribution": "LogUniform", "bounds": [1e-4, 1]},
        ]
    )


def test_what_it_is_told_does_not_change_the_proposals() -> None:
    told = RandomSampler(_space(), minimize=True, seed=5)
    untold = RandomSampler(_space(), minimize=True, seed=5)
    for i in range(50):
        params = told.ask()
        told.tell(params, None if i % 3 else float(i))
        assert untold.ask() == params


def test_parameters_follow_their_distributions() -> None:
    sampler = make_sampler("random", _space(), minimize=False, seed=0, settings={})
    asked = [sampler.ask() for _ in range(3000)]
    xs = np.array([p["x"] for p in asked if p is not None])
    logs = np.log([p["lr"] for p in asked if p is not None])
    assert stats.kstest(xs, stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    lo = math.log(1e-4)
    assert stats.kstest(logs, stats.uniform(loc=lo, scale=-lo).cdf).pvalue > 1e-3
    assert abs(stats.pearsonr(xs, logs)[0]) < 0.1


def test_no_setting_is_valid() -> None:
    assert RandomSampler.validate_settings({}, _space()) == []
    problems = RandomSampler.validate_settings({"shuffle": True}, _space())
    assert [(p.path, p.message) for p in problems] == [
        ("optimizer_settings.shuffle", "unknown key 'shuffle' for 'random'")
    ]
    assert problems[0].valid_keys == ()
