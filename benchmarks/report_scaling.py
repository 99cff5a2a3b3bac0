"""Cost of drawing report.html as a run grows: is it linear, and what share of a run?

Writes synthetic finished runs of N settings (config.json + journal.jsonl, as the
driver writes them), then times drawing report.html and plots/ for each N: in a
child process as the driver starts it (``hpoptim report --html-only``, imports
included) and in-process. A drawing linear in N, started by the driver only after
``cost_factor`` (20) times the last drawing's duration, takes at most ~1/21 of a
run's wall time at any size: the run never becomes quadratic.

Usage: python benchmarks/report_scaling.py [N ...]   (default: 1000 3000 10000)
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpoptim.results.drawing import HtmlReporter
from hpoptim.results.html import write_html_report


def synthetic_run(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    config = {
        "optimization_procedure_name": root.name,
        "number_of_samples": n,
        "metric_to_optimize": "loss",
        "minimize": True,
        "n_reruns": 1,
        "max_attempts": 3,
        "training_iterations": 1,
        "optimized_params": [
            {"param": "lr", "distribution": "LogUniform", "bounds": [1e-5, 1e-1]},
            {"param": "width", "distribution": "IntUniform", "bounds": [8, 512]},
        ],
    }
    (root / "config.json").write_text(json.dumps(config))
    rng = random.Random(0)
    t = 1.7e9
    lines = [{"e": "run_started", "seed": 0, "pid": 1, "t": t}]
    for sid in range(n):
        lr, width = 10 ** rng.uniform(-5, -1), rng.randint(8, 512)
        loss = (math.log10(lr) + 3) ** 2 + abs(width - 128) / 100 + rng.gauss(0, 0.1)
        job = f"{sid}_0.0-0"
        failed = sid % 50 == 7
        metrics = {} if failed else {"loss": loss}
        result = {
            "value": None if failed else loss,
            "std": None if failed else 0.0,
            "n_ok": 0 if failed else 1,
            "n_failed": 1 if failed else 0,
            "metrics": metrics,
            "reason": "1 attempt(s) failed; last: exit code 1: RuntimeError: x" if failed else "",
        }
        lines += [
            {"e": "asked", "sid": sid, "params": {"lr": lr, "width": width}},
            {"e": "submitted", "job": job, "sid": sid, "rerun": 0, "it": 0, "att": 0,
             "dir": str(root / "jobs" / str(sid) / "run_0.0-0"), "t": t},
            {"e": "native_ids", "ids": {job: str(1000 + sid)}},
            {"e": "ended", "job": job, "state": "failed" if failed else "completed",
             "exit_code": 1 if failed else 0, "signal": None, "metrics": metrics,
             "reason": "exit code 1: RuntimeError: x" if failed else "exit code 0",
             "problem": "", "stderr": "RuntimeError: x" if failed else "", "t": t + 2},
            {"e": "setting_finished", "sid": sid, "result": result},
        ]  # fmt: skip
        t += 1.0
    lines.append({"e": "finished", "reason": "budget spent"})
    text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in lines)
    (root / "journal.jsonl").write_text(text)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 3000, 10000]
    factor = HtmlReporter(Path(".")).cost_factor
    print(f"{'N':>7} {'child s':>8} {'in-proc s':>9} {'ms/setting':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_run(Path(tmp) / "warm-up", 10)
        write_html_report(Path(tmp) / "warm-up")  # in-process timings exclude the imports
        for n in sizes:
            root = Path(tmp) / f"run{n}"
            synthetic_run(root, n)
            start = time.perf_counter()
            cmd = [sys.executable, "-m", "hpoptim", "report", "--html-only", str(root), "-q"]
            subprocess.run(cmd, check=True, capture_output=True)
            child = time.perf_counter() - start
            start = time.perf_counter()
            write_html_report(root)
            inproc = time.perf_counter() - start
            print(f"{n:7d} {child:8.2f} {inproc:9.2f} {1000 * inproc / n:10.3f}")
    print(
        f"throttle: a drawing starts only {factor:g}x its last duration after it ended, "
        f"so drawing takes at most {1 / (factor + 1):.1%} of a run's wall time"
    )


if __name__ == "__main__":
    main()
