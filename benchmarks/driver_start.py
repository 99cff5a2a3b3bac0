"""CPU cost of starting the driver, per command, in fresh interpreters.

For each command it runs ``python -m hpoptim ...`` ROUNDS times and prints the median
CPU time (user + system, of the child) with its range, and the same for a bare
``python -c pass`` measured in the same rounds, so that the figure hpoptim adds is
the difference. ``check`` on the quickstart is the run's own start: imports, config
load and validation, the checks of the script and git, and nothing written.
``status`` and ``ls`` read a finished run of the quickstart made first (with 20
settings). Run it from the repository root:

    python benchmarks/driver_start.py [ROUNDS]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "rosenbrock" / "config.yaml"


def cpu_s(argv: list[str], cwd: Path) -> float:
    """CPU seconds (user + system) that one run of ``argv`` took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(rounds: int) -> None:
    py = [sys.executable]
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        over = [f"results_dir={str(results)!r}", "number_of_samples=20"]
        hp = [*py, "-m", "hpoptim"]
        subprocess.run([*hp, str(CONFIG), *over, "-q"], cwd=ROOT, check=True, capture_output=True)
        commands = {
            "python -c pass (bare)": [*py, "-c", "pass"],
            "hpoptim --help": [*hp, "--help"],
            "hpoptim status RUN": [*hp, "status", str(results / "rosenbrock")],
            "hpoptim ls DIR": [*hp, "ls", str(results)],
            "hpoptim check CONFIG": [*hp, "check", str(CONFIG), *over],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):  # interleaved, so that load on the machine hits each alike
            for name, argv in commands.items():
                times[name].append(cpu_s(argv, ROOT))
    bare = statistics.median(times["python -c pass (bare)"])
    print(f"{'command':<24} {'median CPU s':>12} {'min':>7} {'max':>7} {'minus bare':>11}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<24} {med:12.3f} {min(ts):7.3f} {max(ts):7.3f} {med - bare:11.3f}")
    print(f"({rounds} rounds; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
