"""Grid search: the contract, and exact enumeration of the grid."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from hpoptim.errors import ConfigError
from hpoptim.samplers import make_sampler, validate_optimizer
from hpoptim.samplers.grid import MAX_SHUFFLED_GRID, GridSampler, grid_axis
from hpoptim.space import (
    Discrete,
    Distribution,
    IntLogUniform,
    IntUniform,
    LogUniform,
    SearchSpace,
    TruncatedNormal,
    Uniform,
)
from tests.contracts.sampler import MIXED_SPACE, SamplerContract


class TestGridContract(SamplerContract):
    name = "gridsearch"
    settings = {"n_grid_points": 3}
    seed_matters = False


class TestShuffledGridContract(SamplerContract):
    name = "gridsearch"
    settings = {"n_grid_points": 2, "shuffle": True}


DISCRETE: list[dict[str, Any]] = [
    {"param": "opt.name", "distribution": "Discrete", "options": ["adam", "sgd", "rmsprop"]},
    {"param": "net_arch:0", "distribution": "Discrete", "options": [[64, 64], [256]]},
    {"param": "extra", "distribution": "Discrete", "options": [None, {"a": 1}, 0.5, True]},
]
PRODUCT = [
    dict(zip(("opt.name", "net_arch:0", "extra"), combo, strict=True))
    for combo in itertools.product(*(entry["options"] for entry in DISCRETE))
]


def _drain(sampler: GridSampler) -> list[dict[str, Any]]:
    asked = []
    while (params := sampler.ask()) is not None:
        asked.append(params)
        sampler.tell(params, 1.0)
    return asked


@pytest.mark.parametrize("shuffle", [False, True])
def test_enumerates_the_product_exactly_once(shuffle: bool) -> None:
    sampler = GridSampler(
        SearchSpace.from_config(DISCRETE), minimize=True, seed=4, settings={"shuffle": shuffle}
    )
    assert sampler.n_settings() == 24
    asked = _drain(sampler)
    assert len(asked) == 24
    assert sorted(map(repr, asked)) == sorted(map(repr, PRODUCT))
    assert (asked == PRODUCT) is not shuffle  # in order, last parameter fastest
    assert sampler.ask() is None


def test_shuffle_order_depends_on_the_seed() -> None:
    space = SearchSpace.from_config(DISCRETE)
    orders = [
        _drain(GridSampler(space, minimize=True, seed=seed, settings={"shuffle": True}))
        for seed in (1, 1, 2)
    ]
    assert orders[0] == orders[1] != orders[2]


def test_proposals_do_not_share_option_objects() -> None:
    sampler = GridSampler(SearchSpace.from_config(DISCRETE), minimize=True)
    first = sampler.ask()
    assert first is not None
    first["net_arch:0"].append(1)
    assert _drain(sampler)[2]["net_arch:0"] == [64, 64]


@pytest.mark.parametrize(
    ("entry", "n_points", "values"),
    [
        pytest.param(
            {"distribution": "Uniform", "bounds": [0, 1]}, 5, [0.0, 0.25, 0.5, 0.75, 1.0], id="u"
        ),
        pytest.param(
            {"distribution": "TruncatedLogNormal", "bounds": [1e-3, 1]},
            4,
            [1e-3, 1e-2, 1e-1, 1.0],
            id="log",
        ),
        pytest.param({"distribution": "IntUniform", "bounds": [1, 3]}, 7, [1, 2, 3], id="int"),
        pytest.param({"distribution": "IntNormal", "bounds": [0, 10]}, 1, [5], id="one-point"),
    ],
)
def test_n_grid_points_spreads_values_over_the_bounds(
    entry: dict[str, Any], n_points: int, values: list[float]
) -> None:
    space = SearchSpace.from_config([{"param": "p", **entry}])
    sampler = make_sampler(
        "gridsearch", space, minimize=True, seed=None, settings={"n_grid_points": n_points}
    )
    assert sampler.n_settings() == len(values)
    assert [p["p"] for p in _drain(sampler)] == pytest.approx(values)  # type: ignore[arg-type]


CONTINUOUS_MESSAGE = (
    "gridsearch needs a finite set of values, but 'x' has a continuous TruncatedNormal "
    "distribution; list the values as Discrete options, or set "
    "optimizer_settings.n_grid_points to spread that many values over its bounds"
)
SETTING_CASES = [
    pytest.param({}, [("optimized_params[1].distribution", CONTINUOUS_MESSAGE)], id="continuous"),
    pytest.param(
        {"n_grid_points": 0},
        [
            ("optimizer_settings.n_grid_points", "must be a positive integer, got 0"),
            ("optimized_params[1].distribution", CONTINUOUS_MESSAGE),
        ],
        id="zero-points",
    ),
    pytest.param(
        {"n_grid_points": 2.0, "shuffle": "yes"},
        [
            ("optimizer_settings.n_grid_points", "must be a positive integer, got 2.0"),
            ("optimizer_settings.shuffle", "must be true or false, got 'yes'"),
            ("optimized_params[1].distribution", CONTINUOUS_MESSAGE),
        ],
        id="types",
    ),
    pytest.param(
        {"n_grid_point": 3},
        [
            (
                "optimizer_settings.n_grid_point",
                "unknown key 'n_grid_point' for 'gridsearch'; did you mean 'n_grid_points'?",
            ),
            ("optimized_params[1].distribution", CONTINUOUS_MESSAGE),
        ],
        id="typo",
    ),
    pytest.param({"n_grid_points": 3}, [], id="ok"),
]


@pytest.mark.parametrize(("settings", "expected"), SETTING_CASES)
def test_settings_problems(settings: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    space = SearchSpace.from_config(
        [DISCRETE[0], {"param": "x", "distribution": "TruncatedNormal", "bounds": [0, 1]}]
    )
    problems = validate_optimizer("gridsearch", settings, space)
    assert [(p.path, p.message) for p in problems] == expected
    if expected:
        with pytest.raises(ConfigError):
            make_sampler("gridsearch", space, minimize=True, seed=0, settings=settings)


def test_a_huge_grid_cannot_be_shuffled() -> None:
    space = SearchSpace.from_config(
        [{"param": f"p{i}", "distribution": "IntUniform", "bounds": [0, 99]} for i in range(4)]
    )
    problems = GridSampler.validate_settings({"n_grid_points": 100, "shuffle": True}, space)
    assert [(p.path, p.message) for p in problems] == [
        (
            "optimizer_settings.shuffle",
            f"a shuffled grid may have at most {MAX_SHUFFLED_GRID} settings, "
            "this one has 100000000",
        )
    ]
    unshuffled = GridSampler(space, minimize=True, settings={"n_grid_points": 100})
    assert unshuffled.n_settings() == 100**4
    assert unshuffled.ask() == {"p0": 0, "p1": 0, "p2": 0, "p3": 0}


@pytest.mark.parametrize(
    ("dist", "n_points", "expected"),
    [
        pytest.param(Uniform(bounds=(0.0, 1.0)), 3, (0.0, 0.5, 1.0), id="uniform"),
        pytest.param(LogUniform(bounds=(1e-2, 1.0)), 3, (1e-2, 0.1, 1.0), id="log"),
        pytest.param(IntUniform(bounds=(0, 2)), 5, (0, 1, 2), id="int-dedup"),
        pytest.param(IntLogUniform(bounds=(1, 100)), 3, (1, 10, 100), id="int-log"),
        pytest.param(TruncatedNormal(bounds=(0.0, 1.0)), None, None, id="continuous"),
        pytest.param(Discrete(options=("a", [1])), None, ("a", [1]), id="discrete"),
    ],
)
def test_grid_values(dist: Distribution, n_points: int | None, expected: Any) -> None:
    values = grid_axis(dist, n_points)
    if expected is None or isinstance(dist, Discrete):
        assert values == expected
    else:
        assert values == pytest.approx(expected)


ZIPPED: list[dict[str, Any]] = [
    {"param": "opt.name", "distribution": "Discrete", "options": ["adam", "sgd"]},
    {
        "param": ["model.lr", "model.batch"],
        "distribution": "Discrete",
        "options": [[0.1, 32], [0.1, 256], [0.01, 32]],
    },
    {"param": "x", "distribution": "Uniform", "bounds": [0, 1]},
]


class TestZippedGridContract(SamplerContract):
    name = "gridsearch"
    settings = {"n_grid_points": 2}
    seed_matters = False

    def space(self) -> SearchSpace:
        zipped = [
            {
                "param": ["n_layers", "batch"],
                "distribution": "Discrete",
                "options": [[1, 16], [6, 18], [3, 17]],
            }
        ]
        rest = [e for e in MIXED_SPACE if e["param"] not in ("n_layers", "batch")]
        return SearchSpace.from_config([*rest, *zipped])


@pytest.mark.parametrize("shuffle", [False, True])
def test_zipped_parameters_take_their_values_together_in_the_product(shuffle: bool) -> None:
    space = SearchSpace.from_config(ZIPPED)
    sampler = make_sampler(
        "gridsearch",
        space,
        minimize=True,
        seed=3,
        settings={"n_grid_points": 2, "shuffle": shuffle},
    )
    assert sampler.n_settings() == 2 * 3 * 2
    asked = _drain(sampler)
    expected = [
        {"opt.name": name, "model.lr": lr, "model.batch": batch, "x": x}
        for name in ("adam", "sgd")
        for lr, batch in ((0.1, 32), (0.1, 256), (0.01, 32))
        for x in (0.0, 1.0)
    ]
    assert sorted(map(repr, asked)) == sorted(map(repr, expected))
    assert (asked == expected) is not shuffle  # a zip group is one axis, in config order
    assert all(list(params) == ["opt.name", "model.lr", "model.batch", "x"] for params in asked)


def test_a_grid_of_one_zip_group_runs_its_rows_in_order() -> None:
    space = SearchSpace.from_config([ZIPPED[1]])
    assert _drain(GridSampler(space, minimize=True)) == [
        {"model.lr": 0.1, "model.batch": 32},
        {"model.lr": 0.1, "model.batch": 256},
        {"model.lr": 0.01, "model.batch": 32},
    ]


def test_a_continuous_entry_after_a_zip_group_is_named_by_its_entry_index() -> None:
    problems = validate_optimizer("gridsearch", {}, SearchSpace.from_config(ZIPPED))
    assert [p.path for p in problems] == ["optimized_params[2].distribution"]
    assert "'x' has a continuous Uniform distribution" in problems[0].message


@pytest.mark.parametrize("name", ["random", "tpe_cmaes", "cem_metaoptimizer"])
def test_samplers_that_cannot_zip_refuse_zipped_parameters(name: str) -> None:
    space = SearchSpace.from_config([ZIPPED[0], ZIPPED[1]])
    problems = validate_optimizer(name, {}, space)
    assert [(p.path, p.message) for p in problems] == [
        (
            "optimizer_str",
            f"{name!r} cannot propose zipped parameters (model.lr, model.batch), which take "
            "their values together row by row; use gridsearch",
        )
    ]
