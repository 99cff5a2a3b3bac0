"""A noisy Rosenbrock "training job": the smallest real objective for hpoptim.

Reads its parameters through the job API, reports ``loss`` (minimum 0 at
x = 1, y = 1 before noise) and exits. Standard library only, so it starts fast.
"""

from __future__ import annotations

import random

from hpoptim import job


def rosenbrock(x: float, y: float, a: float = 1.0, b: float = 100.0) -> float:
    return (a - x) ** 2 + b * (y - x**2) ** 2


def main() -> None:
    params = job.get_params()
    context = job.get_context()
    rng = random.Random(context["seed"])
    point = params["point"]
    loss = rosenbrock(point["x"], point["y"]) + params["noise_std"] * abs(rng.gauss(0.0, 1.0))
    job.report({"loss": loss, "distance_to_optimum": abs(point["x"] - 1) + abs(point["y"] - 1)})


if __name__ == "__main__":
    main()
