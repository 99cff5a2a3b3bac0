"""Tests against a real Grid Engine (start one with ``bash tests/infra/sge_up.sh``).

They are skipped when ``qsub`` is not on PATH or the qmaster does not answer, unless
``HPOPTIM_REQUIRE_SGE=1`` (CI), where that is a failure instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_VAR = "HPOPTIM_REQUIRE_SGE"


def _cluster_problem() -> str:
    """Why the Grid Engine tests cannot run here, or ``""`` when they can."""
    if shutil.which("qsub") is None:
        return "qsub is not on PATH (start a cluster with: bash tests/infra/sge_up.sh)"
    try:
        proc = subprocess.run(
            ["qstat", "-f"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"qstat did not answer: {exc}"
    if proc.returncode != 0:
        return f"Grid Engine does not answer (qstat: {proc.stderr.strip()})"
    # a queue instance line: name, type, used/reserved/total, load, arch[, states]
    queues = [line.split() for line in proc.stdout.splitlines() if "@" in line.split(" ")[0]]
    if not any(len(words) == 5 and words[3] != "-NA-" for words in queues):
        return "no Grid Engine queue instance takes jobs (qstat -f shows none open)"
    return ""


@pytest.fixture(scope="session")
def sge_cluster() -> str:
    """Skip (or, with HPOPTIM_REQUIRE_SGE=1, fail) unless Grid Engine answers."""
    problem = _cluster_problem()
    if problem:
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{REQUIRE_VAR}=1 but Grid Engine cannot be used: {problem}")
        pytest.skip(problem)
    return "ok"


#: Tests that kill Grid Engine's daemons hold this lock exclusively, every other test of
#: this directory shares it: test files run in parallel (pytest-xdist) never see a daemon
#: die under them.
LOCK_PATH = Path(tempfile.gettempdir()) / "hpoptim-sge-tests.lock"


@pytest.fixture(autouse=True)
def _needs_sge(sge_cluster: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of this directory needs the cluster, alone if it kills its daemons."""
    exclusive = "restart_daemons" in request.fixturenames
    with open(LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
