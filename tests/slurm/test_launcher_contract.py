"""The shared launcher contract, run against the real Slurm cluster."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.slurm import SlurmLauncher, SlurmOptions
from tests.contracts.launcher import LauncherContract

pytestmark = pytest.mark.slurm


#: The cases that wait on Slurm's time limits (a minute and more each): they run from
#: test_launcher_time_limits.py, beside the other cases.
TIME_LIMIT_CASES = frozenset(
    {"timeout_signal_comes_before_the_limit", "time_limit_holds_while_no_driver_follows_the_job"}
)


class TestSlurmLauncher(LauncherContract):
    # Slurm's time limits come in whole minutes; slurmctld checks them every 30 s and sends
    # the --signal once the limit is within lead + 30 s: with a lead of 30 s and a 1-minute
    # limit, that could be the job's first instant, before its handler is installed. With a
    # lead of 5 s the signal comes 25-55 s in and the kill at the next check, 60-90 s in.
    wait_s = 150.0
    poll_timeout_s = 0.5
    quiet_s = 1.5
    timeout_min = 1.0
    signal_lead_s = 5.0
    n_many_jobs = 12
    skip_cases: ClassVar[dict[str, str]] = {}
    other_cases = TIME_LIMIT_CASES

    def make_launcher(self, tmp_path: Path) -> BaseLauncher:
        options = SlurmOptions(
            poll_interval_s=0.5,
            max_poll_interval_s=2.0,
            script_dir=tmp_path / "slurm",
            job_name_prefix="contract",
        )
        return SlurmLauncher(options, cancel_on_close=True)

    def abandon(self, launcher: BaseLauncher) -> None:
        assert isinstance(launcher, SlurmLauncher)
        launcher.detach()
