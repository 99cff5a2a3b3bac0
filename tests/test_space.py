"""Distributions, the search space built from config entries, and dotted names."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
from scipy import stats

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
            TruncatedNormal,
            {"bounds": (0, 1), "std": 0.0},
            "std",
            "must be a positive finite number, got 0.0",
            id="std-zero",
        ),
        pytest.param(
            TruncatedNormal,
            {"bounds": (0, 1), "momentum": 1.0},
            "momentum",
            "must be in [0, 1), got 1.0",
            id="momentum-one",
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
        pytest.param(
            Discrete,
            {"options": ("a", "b"), "probs": (0.5, 0.6)},
            "probs",
            "must be one probability per option summing to 1, got (0.5, 0.6)",
            id="probs-sum",
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


# -- sampling ------------------------------------------------------------------------

ALL_KINDS = [
    pytest.param(TruncatedNormal(bounds=(-1.0, 3.0)), float, id="TruncatedNormal"),
    pytest.param(TruncatedLogNormal(bounds=(1e-4, 1.0)), float, id="TruncatedLogNormal"),
    pytest.param(IntNormal(bounds=(-3, 4)), int, id="IntNormal"),
    pytest.param(IntLogNormal(bounds=(1, 16)), int, id="IntLogNormal"),
    pytest.param(Uniform(bounds=(-2.0, 5.0)), float, id="Uniform"),
    pytest.param(LogUniform(bounds=(1e-3, 10.0)), float, id="LogUniform"),
    pytest.param(IntUniform(bounds=(0, 9)), int, id="IntUniform"),
]


@pytest.mark.parametrize(("dist", "kind"), ALL_KINDS)
def test_samples_are_plain_python_values_within_bounds(dist: Any, kind: type) -> None:
    samples = _draw(dist, 3000)
    assert {type(s) for s in samples} == {kind}
    lo, hi = dist.bounds
    assert lo <= min(samples)
    assert max(samples) <= hi
    assert all(dist.contains(s) for s in samples)
    if kind is int:  # every integer of a small range shows up, the edges included
        assert set(samples) >= {lo, hi}


@pytest.mark.parametrize(
    "dist",
    [
        pytest.param(TruncatedNormal(bounds=(0.0, 1.0)), id="TruncatedNormal"),
        pytest.param(LogUniform(bounds=(1e-3, 10.0)), id="LogUniform"),
        pytest.param(Uniform(bounds=(0.0, 1.0)), id="Uniform"),
    ],
)
def test_floats_keep_full_precision(dist: Distribution) -> None:
    samples = _draw(dist, 200)
    assert len(set(samples)) == len(samples)
    digits = [len(repr(s).replace("0.", "").lstrip("0").split("e")[0]) for s in samples]
    assert sorted(digits)[len(digits) // 2] >= 14


@pytest.mark.parametrize(
    ("mean", "std"),
    [
        pytest.param(None, None, id="default-centred"),
        pytest.param(0.9, 0.5, id="mean-near-edge"),
        pytest.param(5.0, 0.5, id="mean-far-outside"),
        pytest.param(-3.0, 0.2, id="far-below"),
    ],
)
def test_truncated_normal_matches_scipy_truncnorm(mean: float | None, std: float | None) -> None:
    dist = TruncatedNormal(bounds=(0.0, 1.0), mean=mean, std=std)
    loc, scale = dist.loc, dist.scale
    ref = stats.truncnorm((0.0 - loc) / scale, (1.0 - loc) / scale, loc=loc, scale=scale)
    samples = np.array(_draw(dist))
    sem = ref.std() / math.sqrt(len(samples))
    assert abs(samples.mean() - ref.mean()) < 5 * sem
    assert samples.std() == pytest.approx(ref.std(), rel=0.05)
    assert stats.kstest(samples, ref.cdf).pvalue > 1e-3
    # truncation, not clipping: no lump of mass on the bounds
    assert np.count_nonzero((samples == 0.0) | (samples == 1.0)) == 0


def test_truncated_lognormal_is_truncated_normal_in_log_space() -> None:
    dist = TruncatedLogNormal(bounds=(1e-4, 1.0), mean=math.log(0.5), std=1.5)
    log_lo, log_hi = math.log(1e-4), 0.0
    a, b = (log_lo - dist.loc) / dist.scale, (log_hi - dist.loc) / dist.scale
    ref = stats.truncnorm(a, b, loc=dist.loc, scale=dist.scale)
    logs = np.log(_draw(dist))
    assert abs(logs.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(len(logs))
    assert stats.kstest(logs, ref.cdf).pvalue > 1e-3


def test_log_uniform_is_uniform_in_log_space() -> None:
    logs = np.log(_draw(LogUniform(bounds=(1e-3, 10.0)), 5000))
    lo, hi = math.log(1e-3), math.log(10.0)
    assert stats.kstest(logs, stats.uniform(loc=lo, scale=hi - lo).cdf).pvalue > 1e-3


def test_uniform_is_uniform() -> None:
    samples = _draw(Uniform(bounds=(-2.0, 5.0)), 5000)
    assert stats.kstest(samples, stats.uniform(loc=-2.0, scale=7.0).cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        pytest.param(IntUniform(bounds=(0, 4)), [0.2] * 5, id="IntUniform"),
        pytest.param(Discrete(options=("a", [1], {"k": None})), [1 / 3] * 3, id="Discrete"),
        pytest.param(
            Discrete(options=(1, 2, 3), probs=(0.6, 0.3, 0.1)), [0.6, 0.3, 0.1], id="weighted"
        ),
    ],
)
def test_discrete_frequencies_match_probabilities(
    dist: Distribution, expected: list[float]
) -> None:
    samples = _draw(dist, 6000)
    values = dist.grid(len(expected))
    assert values is not None
    assert len(values) == len(expected)
    counts = Counter(json.dumps(s) for s in samples)
    observed = [counts[json.dumps(v)] for v in values]
    assert sum(observed) == len(samples)
    assert stats.chisquare(observed, [p * len(samples) for p in expected]).pvalue > 1e-3


def test_int_normal_rounds_a_truncated_normal() -> None:
    dist = IntNormal(bounds=(0, 4), mean=1.0, std=1.0)
    ref = stats.truncnorm(-1.5, 3.5, loc=1.0, scale=1.0)
    expected = [ref.cdf(k + 0.5) - ref.cdf(k - 0.5) for k in range(5)]
    counts = Counter(_draw(dist, 6000))
    observed = [counts[k] for k in range(5)]
    assert stats.chisquare(observed, [p * 6000 for p in expected]).pvalue > 1e-3


def test_discrete_samples_are_independent_copies() -> None:
    dist = Discrete(options=([1, 2],))
    first = dist.sample(np.random.default_rng(0))
    first.append(3)
    assert dist.sample(np.random.default_rng(0)) == [1, 2]


# -- refitting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dist", "elite"),
    [
        pytest.param(TruncatedNormal(bounds=(0.0, 10.0)), [8.0, 8.5, 9.0, 8.2, 8.8], id="normal"),
        pytest.param(
            TruncatedLogNormal(bounds=(1e-5, 1.0)), [1e-4, 2e-4, 1.5e-4, 3e-4], id="lognormal"
        ),
        pytest.param(IntNormal(bounds=(0, 100)), [3, 5, 4, 6], id="intnormal"),
        pytest.param(IntLogNormal(bounds=(1, 1024)), [512, 700, 900], id="intlognormal"),
        pytest.param(Uniform(bounds=(0.0, 10.0)), [1.0, 1.5, 2.0], id="uniform"),
        pytest.param(LogUniform(bounds=(1e-3, 1e3)), [100.0, 300.0], id="loguniform"),
        pytest.param(IntUniform(bounds=(0, 50)), [45, 48, 50], id="intuniform"),
    ],
)
def test_fit_moves_samples_toward_the_elite(dist: Any, elite: list[float]) -> None:
    def distance(samples: list[float]) -> float:
        target = np.median(np.log(elite)) if dist.log else np.median(elite)
        values = np.log(samples) if dist.log else np.array(samples, dtype=float)
        return float(np.median(np.abs(values - target)))

    fitted = dist.fit(elite)
    after = _draw(fitted, 2000)
    assert distance(after) < 0.5 * distance(_draw(dist, 2000))
    assert all(fitted.contains(s) for s in after)
    assert type(fitted) is type(dist)


@pytest.mark.parametrize(
    ("dist", "value", "width"),
    [
        pytest.param(TruncatedNormal(bounds=(0.0, 4.0)), 1.0, 4.0, id="normal"),
        pytest.param(TruncatedLogNormal(bounds=(1.0, math.e**4)), math.e, 4.0, id="lognormal"),
        pytest.param(IntNormal(bounds=(0, 9)), 3, 10.0, id="intnormal"),
    ],
)
@pytest.mark.parametrize("min_spread", [0.05, 0.2])
def test_fit_keeps_a_floor_on_the_std(
    dist: Any, value: Any, width: float, min_spread: float
) -> None:
    fitted = dist.fit([value] * 10, min_spread=min_spread)
    assert fitted.scale == pytest.approx(min_spread * width)
    spread = np.std(np.log(_draw(fitted, 4000)) if dist.log else _draw(fitted, 4000))
    assert spread > 0.5 * min_spread * width


@pytest.mark.parametrize("min_spread", [0.05, 0.3])
def test_fit_keeps_a_floor_on_uniform_windows(min_spread: float) -> None:
    fitted = Uniform(bounds=(0.0, 10.0)).fit([10.0] * 8, min_spread=min_spread)
    samples = _draw(fitted, 4000)
    assert max(samples) <= 10.0
    assert np.std(samples) == pytest.approx(min_spread * 10.0, rel=0.05)


@pytest.mark.parametrize("min_spread", [0.01, 0.05, 0.5])
def test_discrete_fit_favours_the_elite_but_keeps_every_option(min_spread: float) -> None:
    dist = Discrete(options=("a", "b", [1, 2], {"x": 1}))
    fitted = dist.fit([[1, 2]] * 50 + ["a"] * 3, min_spread=min_spread)
    assert isinstance(fitted, Discrete)
    assert fitted.probs is not None
    assert sum(fitted.probs) == pytest.approx(1.0)
    assert max(fitted.probs) == fitted.probs[2]
    assert fitted.probs[0] > fitted.probs[1]
    assert min(fitted.probs) >= min_spread / 4


def test_momentum_extrapolates_the_last_move_of_the_mean() -> None:
    dist = TruncatedNormal(bounds=(0.0, 10.0)).fit([4.0, 4.2, 3.8], min_spread=0.01)
    moved = dist.fit([4.9, 5.1, 5.0], min_spread=0.01, momentum=0.75)
    plain = dist.fit([4.9, 5.1, 5.0], min_spread=0.01)
    assert np.mean(_draw(plain, 2000)) == pytest.approx(5.0, abs=0.05)
    assert np.mean(_draw(moved, 2000)) == pytest.approx(5.0 + 3 * 1.0, abs=0.05)


def test_fit_refuses_values_outside_the_distribution() -> None:
    with pytest.raises(ValueError, match="outside Uniform"):
        Uniform(bounds=(0.0, 1.0)).fit([2.0])
    with pytest.raises(ValueError, match="not an option"):
        Discrete(options=(1, 2)).fit([3])


@pytest.mark.parametrize(
    ("dist", "n_points", "expected"),
    [
        pytest.param(Uniform(bounds=(0.0, 1.0)), 3, (0.0, 0.5, 1.0), id="uniform"),
        pytest.param(LogUniform(bounds=(1e-2, 1.0)), 3, (1e-2, 0.1, 1.0), id="log"),
        pytest.param(IntUniform(bounds=(0, 2)), 5, (0, 1, 2), id="int-dedup"),
        pytest.param(TruncatedNormal(bounds=(0.0, 1.0)), None, None, id="continuous"),
        pytest.param(Discrete(options=("a", [1])), None, ("a", [1]), id="discrete"),
    ],
)
def test_grid_values(dist: Distribution, n_points: int | None, expected: Any) -> None:
    values = dist.grid(n_points)
    if expected is None or isinstance(dist, Discrete):
        assert values == expected
    else:
        assert values == pytest.approx(expected)


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


def test_space_samples_every_parameter_in_order() -> None:
    space = SearchSpace.from_config(
        [
            {"param": "config.rl.net_arch:12", "distribution": "IntLogNormal", "bounds": [1, 64]},
            {"param": "model.lr", "distribution": "LogUniform", "bounds": [1e-5, 1e-2]},
            {"param": "act", "distribution": "Discrete", "options": ["relu", "tanh"]},
        ]
    )
    params = space.sample(np.random.default_rng(3))
    assert list(params) == list(space.names)
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
            "unknown key 'option' for Discrete; valid keys: distribution, options, param; "
            "did you mean 'options'?",
        ),
        ("hp.optimized_params[2].options", "missing; required by Discrete"),
        (
            "hp.optimized_params[3].bound",
            "unknown key 'bound' for IntUniform; valid keys: bounds, distribution, param",
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
            "unknown key 'options' for Uniform; valid keys: bounds, distribution, param",
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
