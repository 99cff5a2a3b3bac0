"""Throughput of the Grid Engine launcher on a real cluster (``bash tests/infra/sge_up.sh``).

Runs N zero-work jobs (``/bin/true``) through :class:`SgeLauncher`, keeping at most K of
them in flight (``n_max_queued_jobs``, refilled as jobs end), once with array jobs (each
refill is one qsub) and once with one qsub per job, and prints side by side: the wall
time until every job was reported finished, the qsub/qstat/qacct calls, and the CPU time
of the driver process and of the commands it ran.

Usage: python benchmarks/sge_throughput.py [N] [--in-flight K] [--poll S] [--max-poll S]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from hpoptim.jobspec import JobPaths, JobSpec, JobState
from hpoptim.launchers.sge import SgeLauncher, SgeOptions


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    n: int, in_flight: int, use_job_arrays: bool, poll_s: float, max_poll_s: float
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hpoptim-sge-bench-", dir=Path.cwd()) as tmp:
        root = Path(tmp)
        queue = []
        for i in range(n):
            run_dir = root / "jobs" / str(i)
            run_dir.mkdir(parents=True)
            queue.append(JobSpec(f"j{i}", ("/bin/true",), root, JobPaths(run_dir)))
        options = SgeOptions(
            poll_interval_s=poll_s,
            max_poll_interval_s=max_poll_s,
            use_job_arrays=use_job_arrays,
            n_max_queued_jobs=in_flight,
            script_dir=root / "sge",
            job_name_prefix="bench",
        )
        with SgeLauncher(options, cancel_on_close=True) as launcher:
            cpu, children = time.process_time(), _children_cpu_s()
            start = time.perf_counter()
            done: dict[str, JobState] = {}
            while len(done) < n:
                free = launcher.capacity() or 0
                if free and queue:
                    launcher.submit(queue[:free])
                    del queue[:free]
                for status in launcher.poll(0.5):
                    if status.state.is_terminal:
                        done[status.job_id] = status.state
                if time.perf_counter() - start > 900:
                    raise SystemExit(f"only {len(done)} of {n} jobs finished within 900 s")
            wall = time.perf_counter() - start
            cpu, children = time.process_time() - cpu, _children_cpu_s() - children
            calls = dict(launcher.n_calls)
    n_ok = sum(1 for s in done.values() if s is JobState.COMPLETED)
    return {"wall_s": wall, "driver_cpu_s": cpu, "commands_cpu_s": children, "n_ok": n_ok, **calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=10, help="n_max_queued_jobs")
    parser.add_argument("--poll", type=float, default=0.5, help="poll_interval_s")
    parser.add_argument("--max-poll", type=float, default=2.0, help="max_poll_interval_s")
    args = parser.parse_args()
    results = {
        "array jobs": run(args.n, args.in_flight, True, args.poll, args.max_poll),
        "qsub per job": run(args.n, args.in_flight, False, args.poll, args.max_poll),
    }
    print(f"{args.n} zero-work jobs through SgeLauncher, at most {args.in_flight} in flight:")
    print(f"  {'':24}" + "".join(f"{name:>16}" for name in results))
    rows = [
        ("wall time (s)", "wall_s", "{:.1f}"),
        ("jobs completed", "n_ok", "{:.0f}"),
        ("qsub calls", "qsub", "{:.0f}"),
        ("qstat calls", "qstat", "{:.0f}"),
        ("qacct calls", "qacct", "{:.0f}"),
        ("driver CPU (s)", "driver_cpu_s", "{:.2f}"),
        ("commands' CPU (s)", "commands_cpu_s", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        cells = "".join(f"{fmt.format(r.get(key, 0)):>16}" for r in results.values())
        print(f"  {label:24}{cells}")


if __name__ == "__main__":
    main()
