"""Throughput of the Slurm launcher on a real cluster (``bash tests/infra/slurm_up.sh``).

Runs N zero-work jobs (``/bin/true``) through :class:`SlurmLauncher` and prints
the time spent submitting, the time until every job was reported finished, and
how many sbatch, squeue, sacct and scancel calls that took. With job arrays
(the default) one sbatch call submits all N jobs; ``--no-arrays`` submits one
script per job for comparison.

Usage: python benchmarks/slurm_throughput.py [N] [--no-arrays] [--poll S] [--max-poll S]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hpoptim.jobspec import JobPaths, JobSpec, JobState
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions


def run(n: int, use_job_arrays: bool, poll_s: float, max_poll_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hpoptim-slurm-bench-", dir=Path.cwd()) as tmp:
        root = Path(tmp)
        specs = []
        for i in range(n):
            run_dir = root / "jobs" / str(i)
            run_dir.mkdir(parents=True)
            specs.append(JobSpec(f"j{i}", ("/bin/true",), root, JobPaths(run_dir)))
        options = SlurmOptions(
            poll_interval_s=poll_s,
            max_poll_interval_s=max_poll_s,
            use_job_arrays=use_job_arrays,
            script_dir=root / "slurm",
            job_name_prefix="bench",
        )
        with SlurmLauncher(options, cancel_on_close=True) as launcher:
            start = time.perf_counter()
            launcher.submit(specs)
            submitted = time.perf_counter() - start
            done: dict[str, JobState] = {}
            while len(done) < n:
                for status in launcher.poll(1.0):
                    if status.state.is_terminal:
                        done[status.job_id] = status.state
                if time.perf_counter() - start > 600:
                    raise SystemExit(f"only {len(done)} of {n} jobs finished within 600 s")
            finished = time.perf_counter() - start
            calls = dict(launcher.n_calls)
    n_ok = sum(1 for s in done.values() if s is JobState.COMPLETED)
    return {"submit_s": submitted, "all_done_s": finished, "n_ok": n_ok, **calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=200)
    parser.add_argument("--no-arrays", action="store_true", help="one sbatch call per job")
    parser.add_argument("--poll", type=float, default=2.0, help="poll_interval_s")
    parser.add_argument("--max-poll", type=float, default=30.0, help="max_poll_interval_s")
    args = parser.parse_args()
    result = run(args.n, not args.no_arrays, args.poll, args.max_poll)
    mode = "one script per job" if args.no_arrays else "job arrays"
    print(f"{args.n} zero-work jobs through SlurmLauncher ({mode}):")
    print(f"  submission:        {result['submit_s']:.2f} s")
    print(f"  all finished:      {result['all_done_s']:.2f} s  ({result['n_ok']:.0f} completed)")
    print(f"  throughput:        {args.n / result['all_done_s']:.1f} jobs/s")
    for command in ("sbatch", "squeue", "sacct", "scancel"):
        print(f"  {command} calls: {' ' * (12 - len(command))}{result.get(command, 0):.0f}")


if __name__ == "__main__":
    main()
