"""Sampling models: each distribution's prior, and the CEM sampler's refitting of it."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
from scipy import stats

from hpoptim.samplers.grid import grid_axis
from hpoptim.samplers.models import CategoricalModel, NormalModel, ParamModel, prior
from hpoptim.space import (
    Discrete,
    Distribution,
    IntLogNormal,
    IntLogUniform,
    IntNormal,
    IntUniform,
    LogUniform,
    TruncatedLogNormal,
    TruncatedNormal,
    Uniform,
)

N_SAMPLES = 20_000


def _draw(dist: Distribution | ParamModel, n: int = N_SAMPLES, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    model = dist if isinstance(dist, ParamModel) else prior(dist)
    return [model.sample(rng) for _ in range(n)]


# -- sampling ------------------------------------------------------------------------

ALL_KINDS = [
    pytest.param(TruncatedNormal(bounds=(-1.0, 3.0)), float, id="TruncatedNormal"),
    pytest.param(TruncatedLogNormal(bounds=(1e-4, 1.0)), float, id="TruncatedLogNormal"),
    pytest.param(IntNormal(bounds=(-3, 4)), int, id="IntNormal"),
    pytest.param(IntLogNormal(bounds=(1, 16)), int, id="IntLogNormal"),
    pytest.param(Uniform(bounds=(-2.0, 5.0)), float, id="Uniform"),
    pytest.param(LogUniform(bounds=(1e-3, 10.0)), float, id="LogUniform"),
    pytest.param(IntUniform(bounds=(0, 9)), int, id="IntUniform"),
    pytest.param(IntLogUniform(bounds=(1, 12)), int, id="IntLogUniform"),
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
    dist = NormalModel(TruncatedNormal(bounds=(0.0, 1.0)), mean=mean, std=std)
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
    dist = NormalModel(TruncatedLogNormal(bounds=(1e-4, 1.0)), mean=math.log(0.5), std=1.5)
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
            CategoricalModel(Discrete(options=(1, 2, 3)), probs=(0.6, 0.3, 0.1)),
            [0.6, 0.3, 0.1],
            id="weighted",
        ),
    ],
)
def test_discrete_frequencies_match_probabilities(
    dist: Distribution | ParamModel, expected: list[float]
) -> None:
    samples = _draw(dist, 6000)
    values = grid_axis(dist.dist if isinstance(dist, CategoricalModel) else dist, len(expected))
    assert values is not None
    assert len(values) == len(expected)
    counts = Counter(json.dumps(s) for s in samples)
    observed = [counts[json.dumps(v)] for v in values]
    assert sum(observed) == len(samples)
    assert stats.chisquare(observed, [p * len(samples) for p in expected]).pvalue > 1e-3


def test_int_normal_rounds_a_truncated_normal() -> None:
    dist = NormalModel(IntNormal(bounds=(0, 4)), mean=1.0, std=1.0)
    ref = stats.truncnorm(-1.5, 3.5, loc=1.0, scale=1.0)
    expected = [ref.cdf(k + 0.5) - ref.cdf(k - 0.5) for k in range(5)]
    counts = Counter(_draw(dist, 6000))
    observed = [counts[k] for k in range(5)]
    assert stats.chisquare(observed, [p * 6000 for p in expected]).pvalue > 1e-3


def test_discrete_samples_are_independent_copies() -> None:
    dist = Discrete(options=([1, 2],))
    first = prior(dist).sample(np.random.default_rng(0))
    first.append(3)
    assert prior(dist).sample(np.random.default_rng(0)) == [1, 2]


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

    fitted = prior(dist).fit(elite)
    after = _draw(fitted, 2000)
    assert distance(after) < 0.5 * distance(_draw(dist, 2000))
    assert all(dist.contains(s) for s in after)
    assert type(fitted) is type(prior(dist))


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
    fitted = prior(dist).fit([value] * 10, min_spread=min_spread)
    assert fitted.scale == pytest.approx(min_spread * width)
    spread = np.std(np.log(_draw(fitted, 4000)) if dist.log else _draw(fitted, 4000))
    assert spread > 0.5 * min_spread * width


@pytest.mark.parametrize("min_spread", [0.05, 0.3])
def test_fit_keeps_a_floor_on_uniform_windows(min_spread: float) -> None:
    fitted = prior(Uniform(bounds=(0.0, 10.0))).fit([10.0] * 8, min_spread=min_spread)
    samples = _draw(fitted, 4000)
    assert max(samples) <= 10.0
    assert np.std(samples) == pytest.approx(min_spread * 10.0, rel=0.05)


@pytest.mark.parametrize("min_spread", [0.01, 0.05, 0.5])
def test_discrete_fit_favours_the_elite_but_keeps_every_option(min_spread: float) -> None:
    dist = Discrete(options=("a", "b", [1, 2], {"x": 1}))
    fitted = prior(dist).fit([[1, 2]] * 50 + ["a"] * 3, min_spread=min_spread)
    assert isinstance(fitted, CategoricalModel)
    assert fitted.probs is not None
    assert sum(fitted.probs) == pytest.approx(1.0)
    assert max(fitted.probs) == fitted.probs[2]
    assert fitted.probs[0] > fitted.probs[1]
    assert min(fitted.probs) >= min_spread / 4


def test_momentum_extrapolates_the_last_move_of_the_mean() -> None:
    dist = prior(TruncatedNormal(bounds=(0.0, 10.0))).fit([4.0, 4.2, 3.8], min_spread=0.01)
    moved = dist.fit([4.9, 5.1, 5.0], min_spread=0.01, momentum=0.75)
    plain = dist.fit([4.9, 5.1, 5.0], min_spread=0.01)
    assert np.mean(_draw(plain, 2000)) == pytest.approx(5.0, abs=0.05)
    assert np.mean(_draw(moved, 2000)) == pytest.approx(5.0 + 3 * 1.0, abs=0.05)


def test_fit_refuses_values_outside_the_distribution() -> None:
    with pytest.raises(ValueError, match="outside Uniform"):
        prior(Uniform(bounds=(0.0, 1.0))).fit([2.0])
    with pytest.raises(ValueError, match="not an option"):
        prior(Discrete(options=(1, 2))).fit([3])


def test_int_log_uniform_gives_each_integer_its_log_interval() -> None:
    dist = IntLogUniform(bounds=(1, 8))
    edges = np.log(np.arange(1, 9) + 0.5)
    lows = np.log(np.arange(1, 9) - 0.5)
    expected = (edges - lows) / (edges[-1] - lows[0])
    counts = Counter(_draw(dist, 8000))
    observed = [counts[k] for k in range(1, 9)]
    assert stats.chisquare(observed, expected * 8000).pvalue > 1e-3
