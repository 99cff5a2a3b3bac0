"""How well and how fast hpoptim's samplers optimise: standard problems, in-process ask/tell.

Every sampler runs on every problem with ``--seeds`` seeds, with 10 settings in flight:
the first 10 are asked at once, then each result is told (oldest first) just before
the next ask, as a run with ``n_jobs_per_iteration: 10`` and ``deterministic_order``
does. Reported, side by side:

* median simple regret (best value found minus the known optimum) per problem at
  budgets of 100 and 400 settings (the first 100 settings of the 400-setting run);
* each sampler's rank on each problem by that median (1 = best; ties share), and
  the average rank over problems, per budget;
* milliseconds per suggestion (one ask and one tell) once 100, 1,000 and 5,000
  settings are known (restored from a history of random settings).

Usage: python benchmarks/optimizers.py [--seeds N] [--samplers a,b] [--problems a,b]
       [--budget N] [--no-timing]
Goal: the default sampler has the best average rank at both budgets among hpoptim's
samplers and takes <= 10 ms per suggestion at 1,000 settings.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpoptim.samplers import SAMPLERS, make_sampler  # noqa: E402
from hpoptim.samplers.base import SamplerHistory  # noqa: E402
from hpoptim.samplers.models import prior  # noqa: E402
from hpoptim.space import SearchSpace  # noqa: E402

IN_FLIGHT = 10
BUDGETS = (100, 400)


@dataclass(frozen=True)
class Problem:
    name: str
    space: list[dict[str, Any]]
    f: Callable[[Mapping[str, Any]], float]
    optimum: float


def _vector(params: Mapping[str, Any], n: int) -> np.ndarray[Any, Any]:
    return np.array([params[f"x{i}"] for i in range(n)], dtype=float)


def _box(n: int, lo: float, hi: float) -> list[dict[str, Any]]:
    return [
        {"param": f"x{i}", "distribution": "TruncatedNormal", "bounds": [lo, hi]} for i in range(n)
    ]


def branin(p: Mapping[str, Any]) -> float:
    x1, x2 = p["x0"], p["x1"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
     [17, 8, 0.05, 10, 0.1, 14]]
)  # fmt: skip
_H_P = 1e-4 * np.array(
    [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
)  # fmt: skip
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: Mapping[str, Any]) -> float:
    x = _vector(p, 6)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


ROSEN_SHIFT = 0.8


def rosenbrock5(p: Mapping[str, Any]) -> float:
    x = _vector(p, 5) - ROSEN_SHIFT + 1.0  # optimum at x = ROSEN_SHIFT
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


RASTRIGIN_SHIFT = 1.7


def rastrigin4(p: Mapping[str, Any]) -> float:
    x = _vector(p, 4) - RASTRIGIN_SHIFT
    return float(10 * len(x) + np.sum(x**2 - 10 * np.cos(2 * math.pi * x)))


def levy10(p: Mapping[str, Any]) -> float:
    w = 1 + (_vector(p, 10) - 1) / 4
    head = math.sin(math.pi * w[0]) ** 2
    mid = np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return float(head + mid + tail)


MIXED_SPACE = [
    {"param": "lr", "distribution": "TruncatedLogNormal", "bounds": [1e-6, 1.0]},
    {"param": "batch", "distribution": "IntLogUniform", "bounds": [8, 2048]},
    {"param": "layers", "distribution": "IntUniform", "bounds": [1, 12]},
    {"param": "dropout", "distribution": "Uniform", "bounds": [0.0, 0.8]},
    {"param": "act", "distribution": "Discrete", "options": ["relu", "tanh", "gelu", [1, 2]]},
    {"param": "wd", "distribution": "LogUniform", "bounds": [1e-8, 1e-1]},
]
_ACT = {"relu": 0.3, "tanh": 1.0, "gelu": 0.0}


def mixed(p: Mapping[str, Any]) -> float:
    """A made-up validation loss: best at lr 3e-4, batch 64, 4 layers, dropout 0.1, gelu."""
    act = _ACT.get(p["act"], 0.6) if isinstance(p["act"], str) else 0.6
    return float(
        (math.log10(p["lr"]) - math.log10(3e-4)) ** 2
        + (math.log2(p["batch"]) - 6) ** 2 / 4
        + (p["layers"] - 4) ** 2 / 8
        + 4 * (p["dropout"] - 0.1) ** 2
        + act
        + (math.log10(p["wd"]) + 5) ** 2 / 16
    )


PROBLEMS = {
    p.name: p
    for p in (
        Problem("branin", _box(1, -5, 10) + [_box(2, 0, 15)[1]], branin, 0.397887),
        Problem("hartmann6", _box(6, 0, 1), hartmann6, -3.32237),
        Problem("rosenbrock5", _box(5, -2, 2), rosenbrock5, 0.0),
        Problem("rastrigin4", _box(4, -5.12, 5.12), rastrigin4, 0.0),
        Problem("levy10", _box(10, -5, 10), levy10, 0.0),
        Problem("mixed", MIXED_SPACE, mixed, 0.0),
    )
}

#: Sampler label -> (optimizer_str, optimizer_settings).
SAMPLER_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "quasirandom": ("quasirandom", {}),
    "cem": ("cem_metaoptimizer", {}),
    "tpe": ("tpe", {}),
    "cmaes": ("cmaes", {}),
    "tpe_cmaes": ("tpe_cmaes", {}),
}


def _extra_configs(specs: list[str]) -> None:
    """``label=optimizer_str:key=value;key=value`` adds a sampler variant."""
    for spec in specs:
        label, _, rest = spec.partition("=")
        name, _, opts = rest.partition(":")
        settings: dict[str, Any] = {}
        for item in filter(None, opts.split(";")):
            key, _, value = item.partition("=")
            settings[key] = eval(value, {}, {})  # a literal from the command line
        SAMPLER_CONFIGS[label] = (name, settings)


def run_one(problem: Problem, label: str, seed: int, budget: int) -> list[float]:
    """The values of ``budget`` settings, in ask order, with IN_FLIGHT in flight."""
    name, settings = SAMPLER_CONFIGS[label]
    space = SearchSpace.from_config(problem.space)
    sampler = make_sampler(name, space, minimize=True, seed=seed, settings=settings)
    asked: list[dict[str, Any]] = []
    values: list[float] = []
    while len(asked) < budget:
        if len(asked) >= IN_FLIGHT:  # the oldest in flight finishes
            done = len(values)
            values.append(problem.f(asked[done]))
            sampler.tell(asked[done], values[-1])
        params = sampler.ask()
        assert params is not None
        asked.append(params)
    values += [problem.f(params) for params in asked[len(values) :]]
    return values


def regrets(seeds: int, labels: list[str], problems: list[str], budget: int) -> dict[Any, Any]:
    """(problem, label, budget) -> median simple regret over seeds."""
    result: dict[Any, Any] = {}
    for pname in problems:
        problem = PROBLEMS[pname]
        for label in labels:
            start = time.perf_counter()
            runs = [run_one(problem, label, seed, budget) for seed in range(seeds)]
            for b in (b for b in BUDGETS if b <= budget):
                result[pname, label, b] = statistics.median(
                    min(values[:b]) - problem.optimum for values in runs
                )
            print(
                f"  {pname:<12} {label:<14} {time.perf_counter() - start:6.1f} s",
                file=sys.stderr,
                flush=True,
            )
    return result


def ranks(medians: Mapping[str, float]) -> dict[str, float]:
    """Rank of each label by its median regret (1 = best; ties share the mean rank)."""
    order = sorted(medians, key=lambda k: medians[k])
    out: dict[str, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and math.isclose(
            medians[order[j + 1]], medians[order[i]], rel_tol=1e-9, abs_tol=1e-12
        ):
            j += 1
        for k in order[i : j + 1]:
            out[k] = (i + j) / 2 + 1
        i = j + 1
    return out


def ms_per_suggestion(label: str, n_known: int, n_timed: int = 10) -> float:
    """Mean ms of an ask and a tell once ``n_known`` settings were told (mixed space)."""
    name, settings = SAMPLER_CONFIGS[label]
    problem = PROBLEMS["mixed"]
    space = SearchSpace.from_config(problem.space)
    rng = np.random.default_rng(0)
    priors = {n: prior(d) for n, d in space.distributions.items()}
    asked = tuple({n: m.sample(rng) for n, m in priors.items()} for _ in range(n_known))
    history = SamplerHistory(
        asked=asked, told=tuple((i, problem.f(p)) for i, p in enumerate(asked))
    )
    sampler = make_sampler(name, space, minimize=True, seed=0, settings=settings)
    sampler.restore(history)
    start = time.perf_counter()
    for _ in range(n_timed):
        params = sampler.ask()
        assert params is not None
        sampler.tell(params, problem.f(params))
    return (time.perf_counter() - start) / n_timed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=max(BUDGETS))
    parser.add_argument("--samplers", default=",".join(SAMPLER_CONFIGS))
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--variant", action="append", default=[], help="label=name:k=v;k=v")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    _extra_configs(args.variant)
    labels = [label for label in args.samplers.split(",") if label]
    labels += [v.partition("=")[0] for v in args.variant if v.partition("=")[0] not in labels]
    unknown = [label for label in labels if label not in SAMPLER_CONFIGS]
    if unknown or any(SAMPLER_CONFIGS[label][0] not in SAMPLERS for label in labels):
        raise SystemExit(f"unknown samplers: {unknown}; known: {', '.join(SAMPLER_CONFIGS)}")
    problems = args.problems.split(",")
    print(
        f"{len(problems)} problems x {len(labels)} samplers x {args.seeds} seeds, "
        f"{IN_FLIGHT} in flight, budget {args.budget}",
        file=sys.stderr,
    )
    table = regrets(args.seeds, labels, problems, args.budget)
    for budget in (b for b in BUDGETS if b <= args.budget):
        print(f"\nmedian simple regret after {budget} settings ({args.seeds} seeds)")
        print(f"{'problem':<12}" + "".join(f"{label:>14}" for label in labels))
        rank_sum = dict.fromkeys(labels, 0.0)
        for pname in problems:
            medians = {label: table[pname, label, budget] for label in labels}
            for label, rank in ranks(medians).items():
                rank_sum[label] += rank
            print(f"{pname:<12}" + "".join(f"{medians[label]:>14.4g}" for label in labels))
        print(
            f"{'avg rank':<12}"
            + "".join(f"{rank_sum[label] / len(problems):>14.2f}" for label in labels)
        )
    if not args.no_timing:
        print("\nms per suggestion (ask + tell) with N settings known, mixed space")
        print(f"{'N':<12}" + "".join(f"{label:>14}" for label in labels))
        for n in (100, 1000, 5000):
            cells = "".join(f"{ms_per_suggestion(label, n):>14.2f}" for label in labels)
            print(f"{n:<12}" + cells, flush=True)


if __name__ == "__main__":
    main()
