"""What every sampler inherits from BaseSampler."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hpoptim.samplers.random import RandomSampler
from hpoptim.space import SearchSpace

SPACE = SearchSpace.from_config(
    [
        {"param": "x", "distribution": "Uniform", "bounds": [0, 1]},
        {"param": "act", "distribution": "Discrete", "options": ["relu", "tanh"]},
    ]
)
INSIDE = {"x": 0.5, "act": "relu"}


@pytest.mark.parametrize(
    ("minimize", "params", "value", "loss"),
    [
        pytest.param(True, INSIDE, 2.0, 2.0, id="minimize"),
        pytest.param(False, INSIDE, 2.0, -2.0, id="maximize"),
        pytest.param(True, INSIDE, None, None, id="failed"),
        pytest.param(True, INSIDE, math.nan, None, id="nan"),
        pytest.param(False, INSIDE, math.inf, None, id="inf"),
        pytest.param(True, {**INSIDE, "x": 2.0}, 2.0, None, id="outside-the-bounds"),
        pytest.param(True, {**INSIDE, "act": "gelu"}, 2.0, None, id="not-an-option"),
        pytest.param(True, {"x": 0.5}, 2.0, None, id="a-name-missing"),
    ],
)
def test_loss_is_the_signed_value_of_a_result_to_learn_from(
    minimize: bool, params: dict[str, Any], value: float | None, loss: float | None
) -> None:
    sampler = RandomSampler(SPACE, minimize=minimize, seed=0)
    assert sampler.loss(params, value) == loss
