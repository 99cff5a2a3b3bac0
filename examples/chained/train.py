"""A training job that checkpoints and is chained over several training iterations.

Each process trains ``steps_per_iteration`` steps of gradient descent with noisy
gradients on a small least-squares problem, saves a checkpoint (weights, step,
random state) into its run directory and exits "to be resumed" (exit code 3);
hpoptim then starts the next iteration as a new process, which continues from the
checkpoint the previous iteration left. If a time limit's signal arrives first,
the job saves a checkpoint at once and exits for resume too, so a chain of short
jobs trains exactly like one long job. Standard library only.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hpoptim import job

CHECKPOINT = "checkpoint.json"
TARGET = (3.0, -1.0, 0.5)  # the weights that fit the data exactly


def gradient(weights: list[float], rng: random.Random, noise: float) -> list[float]:
    """Gradient of 0.5 * |w - target|^2, plus Gaussian noise."""
    return [w - t + rng.gauss(0.0, noise) for w, t in zip(weights, TARGET, strict=True)]


def loss(weights: list[float]) -> float:
    return 0.5 * sum((w - t) ** 2 for w, t in zip(weights, TARGET, strict=True))


class Trainer:
    def __init__(self, params: dict[str, Any], seed: int, previous: Path | None) -> None:
        self.lr = float(params["optimizer"]["lr"])
        self.momentum = float(params["optimizer"]["momentum"])
        self.noise = float(params["noise"])
        state = _load(previous)
        self.rng = random.Random(seed)
        if state is None:
            self.step = 0
            self.weights = [0.0, 0.0, 0.0]
            self.velocity = [0.0, 0.0, 0.0]
        else:
            self.step = state["step"]
            self.weights = state["weights"]
            self.velocity = state["velocity"]
            self.rng.setstate(_as_state(state["rng"]))

    def train(self, n_steps: int) -> None:
        for _ in range(n_steps):
            grad = gradient(self.weights, self.rng, self.noise)
            self.velocity = [
                self.momentum * v - self.lr * g for v, g in zip(self.velocity, grad, strict=True)
            ]
            self.weights = [w + v for w, v in zip(self.weights, self.velocity, strict=True)]
            self.step += 1

    def save(self, run_dir: Path) -> None:
        state = {
            "step": self.step,
            "weights": self.weights,
            "velocity": self.velocity,
            "rng": self.rng.getstate(),
        }
        job.write_json_atomic(run_dir / CHECKPOINT, state)
        job.report({"loss": loss(self.weights), "step": self.step})


def _load(previous: Path | None) -> dict[str, Any] | None:
    if previous is None:
        return None
    data: dict[str, Any] = json.loads((previous / CHECKPOINT).read_text(encoding="utf-8"))
    return data


def _as_state(saved: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss_next = saved
    return (version, tuple(internal), gauss_next)


def main() -> None:
    params = job.get_params()
    ctx = job.get_context()
    run_dir = job.run_dir()
    trainer = Trainer(params, ctx["seed"], job.previous_run_dir())
    job.install_resume_handler(lambda: trainer.save(run_dir))
    trainer.train(int(params["steps_per_iteration"]))
    trainer.save(run_dir)
    if ctx["iteration"] + 1 < ctx["n_iterations"]:
        job.exit_for_resume()


if __name__ == "__main__":
    main()
