"""Throughput of the HTCondor launcher against the stand-in pool (``tests/fakes/condor``).

Runs N zero-work jobs (``/bin/true``) through :class:`HTCondorLauncher` and prints the
submit calls, the driver's CPU time (the launcher's own process, and the HTCondor
commands it ran, apart), and the time until every job was reported finished. By
default all N jobs go out in one ``submit`` (one description, one ``condor_submit``);
``--per-job`` submits each job on its own, one call per job, for comparison. The
stand-in's schedd runs the jobs on ``--slots`` slots; its own CPU is not counted.

Needs the ``htcondor`` bindings (``pip install -e '.[dev]'``).

Usage: python benchmarks/htcondor_throughput.py [N] [--per-job] [--slots K]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpoptim.jobspec import JobPaths, JobSpec, JobState
from hpoptim.launchers.htcondor import HTCondorLauncher, HTCondorSettings

FAKE_DIR = Path(__file__).resolve().parents[1] / "tests" / "fakes" / "condor"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _start_pool(state_dir: Path, slots: int) -> subprocess.Popen[bytes]:
    os.environ["FAKE_CONDOR_DIR"] = str(state_dir)
    os.environ["FAKE_CONDOR_PYTHON"] = sys.executable
    os.environ["PATH"] = f"{FAKE_DIR}:{os.environ['PATH']}"
    schedd = subprocess.Popen(
        [sys.executable, str(FAKE_DIR / "fakecondor.py"), "schedd", str(state_dir), str(slots)]
    )
    while not (state_dir / "schedd.ready").exists():
        time.sleep(0.01)
    return schedd


def run(n: int, per_job: bool, slots: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hpoptim-condor-bench-") as tmp:
        root = Path(tmp)
        (root / "pool").mkdir()
        schedd = _start_pool(root / "pool", slots)
        specs = []
        for i in range(n):
            run_dir = root / "jobs" / str(i)
            run_dir.mkdir(parents=True)
            specs.append(JobSpec(f"j{i}", ("/bin/true",), root, JobPaths(run_dir)))
        settings = HTCondorSettings(queue_check_interval_s=3600.0)
        launcher = HTCondorLauncher(settings, work_dir=root / "htcondor", cancel_on_close=True)
        try:
            cpu0, child0, start = time.process_time(), _children_cpu(), time.perf_counter()
            for batch in [[s] for s in specs] if per_job else [specs]:
                launcher.submit(batch)
            submitted = time.perf_counter() - start
            done: dict[str, JobState] = {}
            while len(done) < n:
                done.update((s.job_id, s.state) for s in launcher.poll(1.0) if s.state.is_terminal)
                if time.perf_counter() - start > 1200:
                    raise SystemExit(f"only {len(done)} of {n} jobs finished within 1200 s")
            finished = time.perf_counter() - start
            driver_cpu, commands_cpu = time.process_time() - cpu0, _children_cpu() - child0
            calls = launcher.n_calls
        finally:
            launcher.close()
            schedd.terminate()
            schedd.wait()
    n_ok = sum(1 for s in done.values() if s is JobState.COMPLETED)
    return {
        "submit_s": submitted,
        "all_done_s": finished,
        "n_ok": n_ok,
        "driver_cpu_s": driver_cpu,
        "commands_cpu_s": commands_cpu,
        **calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100)
    parser.add_argument("--per-job", action="store_true", help="one condor_submit per job")
    parser.add_argument("--slots", type=int, default=16, help="slots of the stand-in pool")
    args = parser.parse_args()
    result = run(args.n, args.per_job, args.slots)
    mode = "one condor_submit per job" if args.per_job else "one condor_submit per batch"
    print(f"{args.n} zero-work jobs through HTCondorLauncher ({mode}):")
    print(f"  submission:          {result['submit_s']:.2f} s")
    print(f"  all finished:        {result['all_done_s']:.2f} s  ({result['n_ok']:.0f} completed)")
    print(f"  driver CPU:          {result['driver_cpu_s']:.2f} s")
    print(f"  HTCondor tools CPU:  {result['commands_cpu_s']:.2f} s")
    for command in ("condor_submit", "condor_q", "condor_rm", "condor_history"):
        print(f"  {command} calls: {' ' * (16 - len(command))}{result.get(command, 0):.0f}")


if __name__ == "__main__":
    main()
