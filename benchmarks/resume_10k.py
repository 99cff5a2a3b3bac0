"""Driver cost at scale: peak memory of a 10,000-job run and the time to resume it.

1. Runs an optimisation of N zero-work jobs (a shell script that writes a metric)
   through the real CLI in a child process and reads the driver's own peak RSS
   (``getrusage(RUSAGE_SELF)`` as it exits), and apart from it the largest child's:
   the ``hpoptim report --html-only`` processes that draw report.html (pandas and
   matplotlib), which are not the driver.
2. Cuts the finished run's journal back to ~99 % of its events (as if the driver
   had been SIGKILLed near the end), then times, in a child process, what
   ``hpoptim resume`` does before it runs anything (``replay``): load and check the
   journal, build the sampler, fold the journal and restore the sampler; wall and
   CPU time (the machine may be shared), and the imports apart. Then the whole
   command that finishes the remaining settings (``resume total``).

Goals: resume replay <= 2 s and peak driver memory <= 150 MB at N = 10,000.
Usage: python benchmarks/resume_10k.py [N] [OPTIMIZER]
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = """#!/bin/sh
printf '{"loss": %s}' "$HPOPTIM_SETTING_ID" > "$HPOPTIM_METRICS_FILE.tmp"
mv "$HPOPTIM_METRICS_FILE.tmp" "$HPOPTIM_METRICS_FILE"
"""

DRIVER = """
import resource, runpy, sys
peak_file = sys.argv.pop(1)
try:
    runpy.run_module("hpoptim", run_name="__main__", alter_sys=True)
finally:
    with open(peak_file, "w") as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""

REPLAY = """
import sys, time
from pathlib import Path
t0 = time.perf_counter()
from hpoptim.run.session import open_session
from hpoptim.samplers import make_sampler
from hpoptim.run.loop import Optimization
from hpoptim.launchers.local import LocalLauncher
t1 = time.perf_counter()
c1 = time.process_time()
s = open_session(results=Path(sys.argv[1]), for_report=True)
cfg = s.cfg
sampler = make_sampler(cfg.optimizer_str, cfg.search_space(), minimize=cfg.minimize, seed=0,
                       settings=cfg.optimizer_settings)
plan = s.plan({"root": str(Path.cwd())}, 0)
loop = Optimization(plan, sampler, LocalLauncher(n_parallel_jobs=1), s.layout)
loop.resume_from(s.events)
t2 = time.perf_counter()
c2 = time.process_time()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {len(s.events)} {loop.history.n_finished} {c2 - c1:.3f}")
"""


def run(argv: list[str], cwd: Path) -> tuple[float, int]:
    """Run argv; return wall time and the peak RSS (kB) of the process tree's largest member."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(before, after)


def wait_for_drawings(results: Path, timeout_s: float = 300.0) -> None:
    """Wait (untimed) until no ``hpoptim report --html-only`` child draws in ``results``.

    The driver leaves report.html to a child process that may outlive it; waiting
    keeps that drawing out of the next measurement and out of the clean-up.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        drawing = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                args = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--html-only" in args and any(str(results).encode() in a for a in args):
                drawing = True
                break
        if not drawing:
            return
        time.sleep(0.2)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    optimizer = sys.argv[2] if len(sys.argv) > 2 else "tpe_cmaes"  # the default sampler
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "job.sh").write_text(JOB)
        (root / "job.sh").chmod(0o755)
        config = {
            "optimization_procedure_name": "big",
            "results_dir": str(root / "results"),
            "run_in_working_dir": True,
            "script_relative_path": "job.sh",
            "optimized_params": [
                {"param": "x", "distribution": "TruncatedNormal", "bounds": [-1, 1]},
                {"param": "y", "distribution": "LogUniform", "bounds": [1e-4, 1]},
                {"param": "z", "distribution": "Discrete", "options": [1, 2, 3]},
            ],
            "optimizer_str": optimizer,
            "number_of_samples": n,
            "n_jobs_per_iteration": 8,
            "metric_to_optimize": "loss",
            "minimize": True,
            "n_best_jobs_to_keep": 3,
            "seed": 0,
            "local": {"n_parallel_jobs": 2},
        }
        (root / "config.json").write_text(json.dumps(config))
        cmd = [sys.executable, "-m", "hpoptim"]
        peak_file = root / "driver_peak_kb"
        driver = [sys.executable, "-c", DRIVER, str(peak_file)]
        elapsed, tree_peak_kb = run([*driver, "config.json", "-q"], root)
        wait_for_drawings(root / "results")
        peak_kb = int(peak_file.read_text())
        print(
            f"run: {n} jobs in {elapsed:.1f} s ({n / elapsed:.0f} jobs/s); "
            f"driver peak RSS {peak_kb / 1024:.1f} MB (goal <= 150 MB); "
            f"largest process of the run, report drawings included, {tree_peak_kb / 1024:.1f} MB"
        )

        journal = root / "results" / "big" / "journal.jsonl"
        lines = journal.read_text().splitlines(keepends=True)
        keep = int(len(lines) * 0.99)
        journal.write_text("".join(lines[:keep]))
        (root / "results" / "big" / ".lock").unlink(missing_ok=True)
        out = subprocess.run(
            [sys.executable, "-c", REPLAY, str(root / "results" / "big")],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        print(
            f"resume replay of {out[2]} journal events ({out[3]} finished settings): "
            f"{float(out[1]):.2f} s, {float(out[4]):.2f} s CPU "
            f"(+ {float(out[0]):.2f} s imports; goal <= 2 s)"
        )
        elapsed, _ = run([*cmd, "resume", str(root / "results" / "big"), "-q"], root)
        wait_for_drawings(root / "results")
        with open(root / "results" / "big" / "settings.csv", encoding="utf-8") as fh:
            rows = sum(1 for _ in fh) - 1
        print(
            f"resume total (replay + finishing the remaining settings + reports): "
            f"{elapsed:.2f} s; settings.csv rows: {rows}"
        )


if __name__ == "__main__":
    main()
