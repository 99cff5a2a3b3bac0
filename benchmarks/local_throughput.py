"""Throughput of the local launcher: hpoptim vs. bare process spawning.

Runs N zero-work jobs (a Python script that reads its params and writes a
metric) three ways, side by side in one run, each with the same parallelism:

* bare:     subprocess.Popen + os.wait, N processes, P at a time;
* launcher: the same jobs through LocalLauncher alone;
* hpoptim:  a whole `hpoptim` run (config, sampler, journal, reports) of N settings,
            with -qq (no progress display);
* progress: the same with the progress display on (its lines go to a non-terminal
            stream, as in a Slurm log).

Prints jobs/s for each and the ratios to bare (goal: hpoptim and progress >= 85 % of
bare at N = 300, 2 slots), each round's ratios (their spread shows how busy the machine
was), and the CPU time per job of each mode: the measuring process and every process
it waited for (supervisor, jobs), which a busy machine disturbs far less than the
rates. Also prints how many fsyncs the hpoptim runs made and the time they took.
Usage: python benchmarks/local_throughput.py [N] [P] [ROUNDS]
       [--modes bare,launcher,hpoptim,progress]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hpoptim.jobspec import JobPaths, JobSpec
from hpoptim.launchers.local import LocalLauncher

JOB = """\
import json, os, sys
params = json.load(open(sys.argv[-1]))["params"]
path = os.environ["HPOPTIM_METRICS_FILE"]
with open(path + ".tmp", "w") as fh:
    json.dump({"loss": params["x"] ** 2}, fh)
os.replace(path + ".tmp", path)
"""


def _prepare(root: Path, n: int) -> tuple[Path, list[JobPaths]]:
    script = root / "job.py"
    script.write_text(JOB)
    paths = []
    for i in range(n):
        p = JobPaths(root / "bare" / str(i))
        p.run_dir.mkdir(parents=True)
        p.params_file.write_text(json.dumps({"params": {"x": i / n}, "job": {}}))
        paths.append(p)
    return script, paths


Measured = tuple[float, float]
"""Wall seconds and CPU seconds (see :func:`_cpu_s`) of one measured run."""


def bare(script: Path, paths: list[JobPaths], parallel: int) -> Measured:
    start, cpu = time.perf_counter(), _cpu_s()
    running: dict[int, subprocess.Popen[bytes]] = {}
    queue = list(paths)
    while queue or running:
        while queue and len(running) < parallel:
            p = queue.pop()
            env = {**os.environ, "HPOPTIM_METRICS_FILE": str(p.metrics_file)}
            with open(p.stdout, "ab") as out, open(p.stderr, "ab") as err:
                proc = subprocess.Popen(
                    [sys.executable, str(script), str(p.params_file)],
                    cwd=p.run_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            running[proc.pid] = proc
        pid, _ = os.wait()
        if pid in running:  # not a child some earlier hpoptim run left (its report writer)
            running.pop(pid).returncode = 0
    return time.perf_counter() - start, _cpu_s() - cpu


def launcher(script: Path, paths: list[JobPaths], parallel: int) -> Measured:
    for p in paths:
        p.metrics_file.unlink(missing_ok=True)
    start, cpu = time.perf_counter(), _cpu_s()
    queue = list(paths)
    done = 0
    with LocalLauncher(n_parallel_jobs=parallel) as lau:
        while done < len(paths):
            free = lau.capacity()
            n = len(queue) if free is None else min(free, len(queue))
            specs = [
                JobSpec(
                    job_id=p.run_dir.name,
                    argv=(sys.executable, str(script), str(p.params_file)),
                    cwd=p.run_dir,
                    paths=p,
                    env={"HPOPTIM_METRICS_FILE": str(p.metrics_file)},
                )
                for p in (queue.pop() for _ in range(n))
            ]
            if specs:
                lau.submit(specs)
            done += sum(1 for s in lau.poll(0.5) if s.state.is_terminal)
    return time.perf_counter() - start, _cpu_s() - cpu


FSYNCS = {"n": 0, "s": 0.0}


def _timed_fsync(real: Callable[[int], None]) -> Callable[[int], None]:
    def fsync(fd: int) -> None:
        start = time.perf_counter()
        real(fd)
        FSYNCS["s"] += time.perf_counter() - start
        FSYNCS["n"] += 1

    return fsync


def _cpu_s() -> float:
    """CPU seconds of this process and of every process it (or they) waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


def _wait_for_children(timeout_s: float = 120.0) -> None:
    """Wait until no child of this process runs (report.html's drawing)."""
    me = str(os.getpid())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = []
        for pid in (d for d in os.listdir("/proc") if d.isdigit()):
            with contextlib.suppress(OSError, IndexError):
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == me:
                    children.append(pid)
        if not children:
            return
        time.sleep(0.1)


def hpoptim(root: Path, n: int, parallel: int, name: str, quiet: bool = True) -> Measured:
    config = {
        "optimization_procedure_name": name,
        "results_dir": str(root / "results"),
        "run_in_working_dir": True,
        "script_relative_path": "job.py",
        "optimized_params": [{"param": "x", "distribution": "Uniform", "bounds": [-1, 1]}],
        "optimizer_str": "random",
        "number_of_samples": n,
        "n_jobs_per_iteration": 2 * parallel,
        "n_completed_jobs_before_resubmit": 1,
        "metric_to_optimize": "loss",
        "minimize": True,
        "n_best_jobs_to_keep": 1,
        "seed": 0,
        "local": {"n_parallel_jobs": parallel},
    }
    path = root / f"{name}.json"
    path.write_text(json.dumps(config))
    from hpoptim.cli import main as hpoptim_main

    cwd = os.getcwd()
    os.chdir(root)
    real_fsync = os.fsync
    os.fsync = _timed_fsync(real_fsync)
    try:
        start, cpu = time.perf_counter(), _cpu_s()
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            code = hpoptim_main([str(path), "-qq"] if quiet else [str(path)])
        elapsed, cpu = time.perf_counter() - start, _cpu_s() - cpu
    finally:
        os.fsync = real_fsync
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"hpoptim run failed with exit code {code}")
    # report.html is drawn by a child process after the run returned: let it finish
    # (untimed) so that it does not slow down (or add its CPU time to) the next one.
    _wait_for_children()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=200, help="jobs per round")
    parser.add_argument("parallel", nargs="?", type=int, default=2, help="slots")
    parser.add_argument("rounds", nargs="?", type=int, default=2)
    parser.add_argument("--modes", default="bare,launcher,hpoptim,progress")
    args = parser.parse_args()
    n, parallel, rounds = args.n, args.parallel, args.rounds
    all_modes = ("bare", "launcher", "hpoptim", "progress")
    modes = [m for m in all_modes if m in args.modes.split(",")]
    totals = dict.fromkeys(modes, 0.0)
    cpu = dict.fromkeys(modes, 0.0)
    per_round: list[dict[str, float]] = []
    runs: dict[str, Callable[[Path, list[JobPaths], int], Measured]] = {
        "bare": lambda root, paths, r: bare(root / "job.py", paths, parallel),
        "launcher": lambda root, paths, r: launcher(root / "job.py", paths, parallel),
        "hpoptim": lambda root, paths, r: hpoptim(root, n, parallel, f"run{r}"),
        "progress": lambda root, paths, r: hpoptim(root, n, parallel, f"shown{r}", quiet=False),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, paths = _prepare(root, n)
        for r in range(rounds):  # interleaved, so machine noise hits all alike
            per_round.append({})
            for mode in modes:
                elapsed, cpu_s = runs[mode](root, paths, r)
                cpu[mode] += cpu_s
                totals[mode] += elapsed
                per_round[-1][mode] = elapsed
    rate = {k: n * rounds / v for k, v in totals.items()}
    base = rate.get("bare")
    print(f"N={n} jobs, {parallel} slots, {rounds} round(s)")
    for k, v in rate.items():
        share = f"  ({v / base:6.1%} of bare)" if base else ""
        print(f"  {k:9s} {v:7.1f} jobs/s{share}  CPU {cpu[k] / n / rounds * 1000:5.1f} ms/job")
    if base:
        for k in [m for m in modes if m != "bare"]:
            ratios = " ".join(f"{t['bare'] / t[k]:.3f}" for t in per_round)
            print(f"  {k}/bare by round: {ratios}")
    runs = sum(v for k, v in totals.items() if k in ("hpoptim", "progress"))
    if runs:
        print(
            f"  fsync: {FSYNCS['n']} calls in the hpoptim runs, {FSYNCS['s'] * 1000:.0f} ms "
            f"in all ({FSYNCS['s'] / runs:.1%} of their time)"
        )
    for mode in ("hpoptim", "progress"):
        if base and mode in rate:
            ratio = rate[mode] / base
            verdict = "met" if ratio >= 0.85 else "NOT met"
            print(f"{mode}/bare ratio: {ratio:.3f} (goal >= 0.85: {verdict})")


if __name__ == "__main__":
    main()
