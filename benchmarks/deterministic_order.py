"""What ``deterministic_order`` costs in throughput, and what it buys.

Runs the same seeded optimisation twice through the real CLI and the local launcher,
once with ``deterministic_order: true`` and once with ``false``. Each job sleeps a
time drawn from a heavy-tailed distribution fixed by its setting and rerun seed (so
both runs see the same durations for the same settings), like training runs whose
length varies. With ordered telling a free slot waits until the oldest setting in
flight has finished; without it the slot is refilled at once.

Prints, side by side: wall time, settings per minute, the mean number of jobs
running, and whether a second run with the same seed asked the same settings.
Usage: python benchmarks/deterministic_order.py [N] [IN_FLIGHT] [MEAN_S]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = """\
import json, os, random, sys, time
p = json.load(open(sys.argv[-1]))
x = p["params"]["x"]
rng = random.Random(p["job"]["seed"])
time.sleep(min(float(os.environ["MEAN_S"]) * rng.paretovariate(2.5) * 0.6, 30))
path = os.environ["HPOPTIM_METRICS_FILE"]
with open(path + ".tmp", "w") as fh:
    json.dump({"loss": (x - 0.3) ** 2}, fh)
os.replace(path + ".tmp", path)
"""


def run(root: Path, name: str, n: int, in_flight: int, mean_s: float, ordered: bool) -> dict:
    config = {
        "optimization_procedure_name": name,
        "results_dir": str(root / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [-1, 1]}],
        "optimizer_str": "cem_metaoptimizer",
        "number_of_samples": n,
        "n_jobs_per_iteration": in_flight,
        "metric_to_optimize": "loss",
        "minimize": True,
        "seed": 11,
        "deterministic_order": ordered,
        "environment": {"MEAN_S": str(mean_s)},
        "local": {"n_parallel_jobs": in_flight},
    }
    (root / f"{name}.json").write_text(json.dumps(config))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hpoptim", str(root / f"{name}.json"), "-q"], cwd=root, check=True
    )
    wall = time.perf_counter() - start
    events = [
        json.loads(line)
        for line in (root / "results" / name / "journal.jsonl").read_text().splitlines()
    ]
    busy = sum(e["t"] for e in events if e["e"] == "ended") - sum(
        e["t"] for e in events if e["e"] == "submitted"
    )
    asked = [e["params"] for e in events if e["e"] == "asked"]
    return {"wall": wall, "per_min": n / wall * 60, "running": busy / wall, "asked": asked}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    in_flight = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    mean_s = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "job.py").write_text(JOB)
        rows = {}
        for ordered in (True, False):
            first = run(root, f"o{ordered}a", n, in_flight, mean_s, ordered)
            second = run(root, f"o{ordered}b", n, in_flight, mean_s, ordered)
            rows[ordered] = (first, first["asked"] == second["asked"])
    print(f"{n} settings, {in_flight} in flight, job time ~{mean_s} s (heavy-tailed)")
    print(
        f"{'deterministic_order':<22}{'wall s':>10}{'settings/min':>14}{'running':>10}"
        f"{'repeatable':>12}"
    )
    for ordered, (row, same) in rows.items():
        print(
            f"{str(ordered).lower():<22}{row['wall']:>10.1f}{row['per_min']:>14.1f}"
            f"{row['running']:>10.2f}{str(same).lower():>12}"
        )
    cost = 1 - rows[True][0]["per_min"] / rows[False][0]["per_min"]
    print(f"throughput cost of ordered telling: {cost:.0%}")


if __name__ == "__main__":
    main()
