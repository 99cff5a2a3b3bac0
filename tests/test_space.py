"""Distributions, the search space built from config entries, and dotted names."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from hpoptim.errors import ConfigError
from hpoptim.space import SearchSpace, flatten, nest
from hpoptim.space.distributions import (
    DISTRIBUTIONS,
    Discrete,
    Distribution,
    IntLogNormal,
    IntNormal,
    IntUniform,
    LogUniform,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
)

N_SAMPLES = 20_000


def _problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in exc.value.problems]


def _draw(dist: Distribution, n: int = N_SAMPLES, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [dist.sample(rng) for _ in range(n)]


# -- construction ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "path", "message"),
    [
        pytest.param(
            TruncatedNormal,
            {"bounds": (1.0, 0.0)},
            "bounds",
            "must satisfy low < high, got [1.0, 0.0]",
            id="reversed",
        ),
        pytest.param(
            Uniform,
            {"bounds": (0.0, 0.0)},
            "bounds",
            "must satisfy low < high, got [0.0, 0.0]",
            id="empty",
        ),
        pytest.param(
            Uniform,
            {"bounds": (0.0, math.inf)},
            "bounds",
            "must be two finite numbers [low, high], got [0.0, inf]",
            id="infinite",
        ),
        pytest.param(
            TruncatedNormal,
            {"bounds": ("0", 1)},
            "bounds",
            "must be two finite numbers [low, high], got ['0', 1]",
            id="string",
        ),
        pytest.param(
            Uniform,
            {"bounds": (True, 2)},
            "bounds",
            "must be two finite numbers [low, high], got [True, 2]",
            id="bool",
        ),
        pytest.param(
            IntUniform,
            {"bounds": (0, 10**400)},
            "bounds",
            f"must be two finite numbers [low, high], got [0, {10**400}]",
            id="int-too-large-for-float",
        ),
        pytest.param(
            TruncatedLogNormal,
            {"bounds": (0.0, 1.0)},
            "bounds",
            "must be positive for TruncatedLogNormal, got [0.0, 1.0]",
            id="log-zero",
        ),
        pytest.param(
            LogUniform,
            {"bounds": (-1.0, 1.0)},
            "bounds",
            "must be positive for LogUniform, got [-1.0, 1.0]",
            id="log-negative",
        ),
        pytest.param(
            IntNormal,
            {"bounds": (0, 2.5)},
            "bounds",
            "must be integers for IntNormal, got [0, 2.5]",
            id="int-fraction",
        ),
        pytest.param(
            IntLogNormal,
            {"bounds": (0, 8)},
            "bounds",
            "must be positive for IntLogNormal, got [0, 8]",
            id="intlog-zero",
        ),
        pytest.param(
            Discrete,
            {"options": ()},
            "options",
            "must be a non-empty list of values, got []",
            id="no-options",
        ),
        pytest.param(
            Discrete,
            {"options": (1, float("nan"))},
            "options[1]",
            "options must be JSON values: nan is not a finite number",
            id="nan-option",
        ),
        pytest.param(
            Discrete,
            {"options": ({"a": [1]}, {1: 2})},
            "options[1]",
            "options must be JSON values: {1: 2} has non-string keys",
            id="int-key-option",
        ),
        pytest.param(
            Discrete,
            {"options": ([1, 2], "x", (1, 2))},
            "options[2]",
            "duplicate of options[0]: (1, 2)",
            id="duplicate-option",
        ),
    ],
)
def test_invalid_distribution_is_refused(
    cls: type[Distribution], kwargs: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        cls(**kwargs)
    assert _problems(exc) == [(path, message)]


def test_int_bounds_are_stored_as_ints_and_float_bounds_as_floats() -> None:
    assert IntUniform(bounds=(1.0, 4.0)).bounds == (1, 4)
    assert type(IntUniform(bounds=(1.0, 4.0)).bounds[0]) is int
    assert type(Uniform(bounds=(1, 4)).bounds[0]) is float


# -- search space --------------------------------------------------------------------


def test_every_distribution_round_trips_through_config() -> None:
    entries = [
        {"param": f"p{i}", "distribution": name, **cls.to_entry(_example(cls))}
        for i, (name, cls) in enumerate(DISTRIBUTIONS.items())
    ]
    space = SearchSpace.from_config(entries)
    assert space.names == tuple(f"p{i}" for i in range(len(DISTRIBUTIONS)))
    assert space.to_config() == entries
    assert SearchSpace.from_config(space.to_config()) == space
    assert json.loads(json.dumps(space.to_config())) == entries


def _example(cls: type[Distribution]) -> Distribution:
    if cls is Discrete:
        return Discrete(options=(1, "a", [1, 2], {"k": [None, True]}))
    return cls(bounds=(1, 100))  # type: ignore[call-arg]


def test_space_contains_settings_of_exactly_its_parameters() -> None:
    space = SearchSpace.from_config(
        [
            {"param": "config.rl.net_arch:12", "distribution": "IntLogNormal", "bounds": [1, 64]},
            {"param": "model.lr", "distribution": "LogUniform", "bounds": [1e-5, 1e-2]},
            {"param": "act", "distribution": "Discrete", "options": ["relu", "tanh"]},
        ]
    )
    params = {"config.rl.net_arch:12": 3, "model.lr": 1e-3, "act": "tanh"}
    assert space.contains(params)
    assert not space.contains({**params, "extra": 1})
    assert not space.contains({**params, "act": "gelu"})


def test_from_config_reports_every_problem_at_once() -> None:
    entries: list[Any] = [
        {"param": "x", "distribution": "TruncNormal", "bounds": [0, 1]},
        {"param": "x", "distribution": "Uniform", "bounds": [1, 0]},
        {"param": "model.1lr", "distribution": "Discrete", "option": [1]},
        {"param": "y", "distribution": "IntUniform", "bounds": [0, 3], "bound": 1},
        {"distribution": "Discrete", "options": "ab"},
        {"param": "y.z", "distribution": "Uniform", "bounds": [0, 1]},
        ["param", "z"],
        {"param": "w", "distribution": "Uniform", "bounds": [0, 1, 2]},
    ]
    with pytest.raises(ConfigError) as exc:
        SearchSpace.from_config(entries, path="hp.optimized_params")
    valid = ", ".join(DISTRIBUTIONS)
    assert _problems(exc) == [
        (
            "hp.optimized_params[0].distribution",
            f"unknown distribution 'TruncNormal'; valid: {valid}; did you mean 'TruncatedNormal'?",
        ),
        ("hp.optimized_params[1].bounds", "must satisfy low < high, got [1, 0]"),
        ("hp.optimized_params[1].param", "duplicate parameter 'x' (also hp.optimized_params[0])"),
        (
            "hp.optimized_params[2].param",
            "a parameter name must be a dotted path of identifiers with an optional ':<index>' "
            "suffix (e.g. 'model.lr', 'config.net_arch:1'), got 'model.1lr'",
        ),
        (
            "hp.optimized_params[2].option",
            "unknown key 'option' for Discrete; did you mean 'options'?",
        ),
        ("hp.optimized_params[2].options", "missing; required by Discrete"),
        (
            "hp.optimized_params[3].bound",
            "unknown key 'bound' for IntUniform",
        ),
        ("hp.optimized_params[4].param", "missing; the parameter's dotted name"),
        ("hp.optimized_params[4].options", "must be a non-empty list of values, got 'ab'"),
        (
            "hp.optimized_params[6]",
            "must be a mapping with keys bounds, distribution, options, param, got ['param', 'z']",
        ),
        (
            "hp.optimized_params[7].bounds",
            "must be a list [low, high] of two numbers, got [0, 1, 2]",
        ),
        (
            "hp.optimized_params[5].param",
            "'y.z' lies inside parameter 'y' (hp.optimized_params[3]); a name cannot be both "
            "a value and a parent of other names",
        ),
    ]
    assert str(exc.value).splitlines()[-2:] == [
        "valid keys of hp.optimized_params[2]: distribution, options, param",
        "valid keys of hp.optimized_params[3]: bounds, distribution, param",
    ]


@pytest.mark.parametrize(
    ("entries", "path", "message"),
    [
        pytest.param(
            {"param": "x"},
            "optimized_params",
            "must be a list of entries, got {'param': 'x'}",
            id="mapping",
        ),
        pytest.param(
            [{"param": "x", "distribution": 3, "bounds": [0, 1]}],
            "optimized_params[0].distribution",
            f"unknown distribution 3; valid: {', '.join(DISTRIBUTIONS)}",
            id="distribution-not-a-string",
        ),
        pytest.param(
            [{"param": "x", "bounds": [0, 1]}],
            "optimized_params[0].distribution",
            f"missing; one of {', '.join(DISTRIBUTIONS)}",
            id="no-distribution",
        ),
        pytest.param(
            [{"param": "x", "distribution": "uniform", "bounds": [0, 1]}],
            "optimized_params[0].distribution",
            f"unknown distribution 'uniform'; valid: {', '.join(DISTRIBUTIONS)}; "
            "did you mean 'Uniform'?",
            id="lowercase",
        ),
        pytest.param(
            [{"param": "x", "distribution": "Uniform", "options": [1]}],
            "optimized_params[0].options",
            "unknown key 'options' for Uniform",
            id="options-on-uniform",
        ),
    ],
)
def test_from_config_single_problem(entries: Any, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        SearchSpace.from_config(entries)
    assert _problems(exc)[0] == (path, message)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("lr", True, id="plain"),
        pytest.param("model.lr", True, id="dotted"),
        pytest.param("config.rl.net_arch:12", True, id="index"),
        pytest.param("_a.B_2:0", True, id="underscore"),
        pytest.param("config.net_arch:", False, id="empty-index"),
        pytest.param("config.net_arch:a", False, id="letter-index"),
        pytest.param("a:1.b", False, id="index-inside"),
        pytest.param("a..b", False, id="empty-part"),
        pytest.param(".a", False, id="leading-dot"),
        pytest.param("a-b", False, id="dash"),
        pytest.param("", False, id="empty"),
        pytest.param("a b", False, id="space"),
    ],
)
def test_parameter_names(name: str, valid: bool) -> None:
    entries = [{"param": name, "distribution": "Uniform", "bounds": [0, 1]}]
    if valid:
        assert SearchSpace.from_config(entries).names == (name,)
    else:
        with pytest.raises(ConfigError) as exc:
            SearchSpace.from_config(entries)
        assert [p.path for p in exc.value.problems] == ["optimized_params[0].param"]


# -- dotted names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flat", "nested"),
    [
        pytest.param({"a": 1}, {"a": 1}, id="flat"),
        pytest.param(
            {"model.lr": 0.1, "model.layers": [64, 64], "seed": 3},
            {"model": {"lr": 0.1, "layers": [64, 64]}, "seed": 3},
            id="dotted",
        ),
        pytest.param(
            {"config.rl.net_arch:1": 64, "config.rl.net_arch:0": 32, "config.rl.gamma": 0.9},
            {"config": {"rl": {"net_arch:1": 64, "net_arch:0": 32, "gamma": 0.9}}},
            id="index",
        ),
        pytest.param({"a.b": {}, "c": None}, {"a": {"b": {}}, "c": None}, id="empty-dict-leaf"),
        pytest.param({}, {}, id="empty"),
    ],
)
def test_flatten_and_nest_are_inverse(flat: dict[str, Any], nested: dict[str, Any]) -> None:
    assert nest(flat) == nested
    assert flatten(nested) == flat


@pytest.mark.parametrize(
    ("flat", "key", "other"),
    [
        pytest.param({"a": 1, "a.b": 2}, "a.b", "a", id="value-then-child"),
        pytest.param({"a.b": 2, "a": 1}, "a", "a.b", id="child-then-value"),
        pytest.param({"x.a.b.c": 1, "x.a.b": 2}, "x.a.b", "x.a.b.c", id="deep"),
        pytest.param({"a.b:1": 1, "a.b:1.c": 2}, "a.b:1.c", "a.b:1", id="index"),
    ],
)
def test_nest_refuses_a_key_that_is_value_and_parent(
    flat: dict[str, Any], key: str, other: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        nest(flat)
    assert _problems(exc) == [
        (key, f"conflicts with {other!r}: a key cannot be both a value and the parent of others")
    ]


def test_nest_does_not_share_or_modify_dict_values() -> None:
    leaf: dict[str, Any] = {}
    nested = nest({"a": leaf, "b.c": 1})
    assert nested["a"] is leaf
    assert leaf == {}
