"""Tests against a real Slurm cluster (start one with ``bash tests/infra/slurm_up.sh``).

They are skipped when ``sbatch`` is not on PATH or the cluster does not answer,
unless ``HPOPTIM_REQUIRE_SLURM=1`` (CI), where that is a failure instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

REQUIRE_VAR = "HPOPTIM_REQUIRE_SLURM"


def _cluster_problem() -> str:
    """Why the Slurm tests cannot run here, or ``""`` when they can."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (start a cluster with: bash tests/infra/slurm_up.sh)"
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo did not answer: {exc}"
    states = proc.stdout.split()
    if proc.returncode != 0:
        return f"the Slurm cluster does not answer (sinfo: {proc.stderr.strip()})"
    # sinfo marks a state with a flag: "allocated+" (also completing), "idle*", "mixed-", ...
    usable = ("idle", "mixed", "allocated", "completing")
    if not any(s.rstrip("*~#!%$@^-+") in usable for s in states):
        return f"no Slurm node can run jobs (node states: {states})"
    return ""


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """Skip (or, with HPOPTIM_REQUIRE_SLURM=1, fail) unless a cluster answers."""
    problem = _cluster_problem()
    if problem:
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{REQUIRE_VAR}=1 but Slurm cannot be used: {problem}")
        pytest.skip(problem)
    return "ok"


@pytest.fixture(autouse=True)
def _needs_slurm(slurm_cluster: str) -> None:
    """Every test of this directory needs the cluster."""
