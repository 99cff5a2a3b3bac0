"""Cost of reading a config: importing hpoptim.config, and load_config on the examples.

Runs in fresh interpreters (so the import is cold) and prints, for each example under
examples/*/config.yaml, the median time of one ``load_config`` call after the first
(warm), the first call (which builds the models), and the import time of
``hpoptim.config``. Run it from the repository root of the version to measure:

    python benchmarks/config_load.py [ROUNDS]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, statistics, sys, time
from pathlib import Path
t0 = time.perf_counter()
from hpoptim.config import load_config
t_import = time.perf_counter() - t0
os.environ.setdefault("HOME", "/tmp")
out = {"import_s": t_import}
for path in sorted(Path("examples").glob("*/config.yaml")):
    os.chdir(path.parent)
    first = time.perf_counter()
    try:
        load_config(Path("config.yaml"), [])
    except Exception as exc:  # an example may need a file (an image) made by its test
        out[path.parent.name] = {"error": str(exc).splitlines()[0]}
        os.chdir("../..")
        continue
    first = time.perf_counter() - first
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter()
        load_config(Path("config.yaml"), [])
        times.append(time.perf_counter() - t)
    os.chdir("../..")
    out[path.parent.name] = {"first_s": first, "median_s": statistics.median(times)}
print(json.dumps(out))
"""


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", CHILD, str(rounds)],
                check=True,
                capture_output=True,
                text=True,
                cwd=Path.cwd(),
            ).stdout
        )
        for _ in range(5)
    ]
    imports = sorted(r["import_s"] for r in runs)
    print(f"import hpoptim.config: median {imports[2] * 1e3:.1f} ms (5 cold interpreters)")
    for name in (k for k in runs[0] if k != "import_s"):
        if "error" in runs[0][name]:
            print(f"{name}: not loadable here ({runs[0][name]['error']})")
            continue
        first = sorted(r[name]["first_s"] for r in runs)[2]
        warm = sorted(r[name]["median_s"] for r in runs)[2]
        print(f"{name}: first load {first * 1e3:.2f} ms, then {warm * 1e3:.3f} ms per load")


if __name__ == "__main__":
    main()
