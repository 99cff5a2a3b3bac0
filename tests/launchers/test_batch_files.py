"""What the Slurm and Grid Engine launchers share: waiting for stopped jobs to go."""

from __future__ import annotations

import pytest

from hpoptim.errors import LaunchError
from hpoptim.launchers.batch_files import wait_until_gone


def test_wait_until_gone_returns_once_the_cluster_lists_no_job() -> None:
    listings = [["7", "8"], ["8"], []]
    slept: list[float] = []
    wait_until_gone(lambda: listings.pop(0), 60.0, lambda left: f"left {left}", slept.append)
    assert listings == []
    assert slept == [1.0, 1.0]


def test_wait_until_gone_names_the_jobs_still_there_after_the_wait() -> None:
    slept: list[float] = []
    with pytest.raises(LaunchError, match=r"^left \['9'\]$"):
        wait_until_gone(lambda: ["9"], 0.0, lambda left: f"left {left}", slept.append)
    assert slept == []
