"""The default sampler, and configs that name one."""

from __future__ import annotations

import pytest

from hpoptim.config import load_config_dict
from hpoptim.samplers import SAMPLERS, make_sampler
from hpoptim.samplers.tpe_cmaes import TPECmaEsSampler
from tests.config.conftest import minimal


def test_a_config_without_optimizer_str_gets_tpe_then_cmaes() -> None:
    cfg = load_config_dict(minimal())
    assert SAMPLERS[cfg.optimizer_str] is TPECmaEsSampler


@pytest.mark.parametrize("name", ["cem_metaoptimizer", "random", "gridsearch", "tpe"])
def test_a_config_that_names_a_sampler_keeps_it(name: str) -> None:
    settings = {"n_grid_points": 2} if name == "gridsearch" else {}
    cfg = load_config_dict({**minimal(), "optimizer_str": name, "optimizer_settings": settings})
    sampler = make_sampler(
        cfg.optimizer_str,
        cfg.search_space(),
        minimize=cfg.minimize,
        seed=0,
        settings=cfg.optimizer_settings,
    )
    assert sampler.name == name
