"""A training job whose learning curve is drawn from its parameters, over chained iterations.

Each process is one training iteration: it continues from the checkpoint the
previous iteration left (the number of epochs trained), trains ``epochs_per_iteration``
more "epochs", reports the validation loss and exits "to be resumed" (exit code 3)
until the last iteration. The loss follows a curve whose final value and speed depend
on the learning rate and the width, plus noise, so a setting's first iterations tell
much about its last one: what early stopping needs. Standard library only.
"""

from __future__ import annotations

import json
import math
import random

from hpoptim import job

CHECKPOINT = "checkpoint.json"


def loss_after(epochs: float, lr: float, width: int) -> float:
    """The noise-free validation loss after ``epochs``: it decays at a speed set by the
    learning rate towards a floor lowest at lr = 0.03 and for wide models."""
    floor = 0.05 + 0.1 * (math.log10(lr) + 1.5) ** 2 + 0.2 / width
    speed = 0.6 * math.sqrt(lr)
    return floor + (1.0 - floor) * math.exp(-speed * epochs)


def main() -> None:
    params = job.get_params()
    ctx = job.get_context()
    previous = job.previous_run_dir()
    epochs = 0
    if previous is not None:
        epochs = json.loads((previous / CHECKPOINT).read_text(encoding="utf-8"))["epochs"]
    epochs += int(params["epochs_per_iteration"])
    job.write_json_atomic(job.run_dir() / CHECKPOINT, {"epochs": epochs})
    noise = random.Random(ctx["seed"] * 1000 + ctx["iteration"]).gauss(0.0, params["noise"])
    loss = loss_after(epochs, params["lr"], params["width"]) + noise
    job.report({"loss": loss, "epochs": epochs})
    if ctx["iteration"] + 1 < ctx["n_iterations"]:
        job.exit_for_resume()


if __name__ == "__main__":
    main()
