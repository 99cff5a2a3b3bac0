"""A toy mle-toolbox training script: `train.py -config FILE -seed N -exp_dir DIR`."""

import argparse
import json
import random
from pathlib import Path

from hpoptim import job  # with job.report below, what an mle-toolbox script adds

parser = argparse.ArgumentParser()
parser.add_argument("-config", required=True)
parser.add_argument("-seed", type=int, required=True)
parser.add_argument("-exp_dir", required=True)
args = parser.parse_args()

config = json.loads(Path(args.config).read_text())["train_config"]
rng = random.Random(args.seed)
offset = {"mlp": 0.0, "cnn": 0.5}[config["arch"]]
for epoch in range(config["num_epochs"]):
    test_loss = (config["lrate"] - 0.3) ** 2 + offset + rng.uniform(0, 0.01) / (epoch + 1)
    stats = {"test_loss": test_loss}
    # an mle-toolbox script calls log.update({"num_epochs": epoch}, stats) here; for hpoptim:
    job.report(stats)
Path(args.exp_dir, "seed.txt").write_text(str(args.seed))
