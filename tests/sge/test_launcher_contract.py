"""The shared launcher contract, run against the real Grid Engine."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from hpoptim.launchers.base import BaseLauncher
from hpoptim.launchers.sge import SgeLauncher, SgeOptions
from tests.contracts.launcher import LauncherContract

pytestmark = pytest.mark.sge


class TestSgeLauncher(LauncherContract):
    # h_rt is whole seconds, and a task starts up to a scheduling interval (1 s here) after
    # qsub: a 6 s limit with a 3 s lead gives the job's handler 3 s to be installed.
    wait_s = 60.0
    poll_timeout_s = 0.5
    quiet_s = 0.5
    timeout_min = 0.1
    signal_lead_s = 3.0
    n_many_jobs = 12
    skip_cases: ClassVar[dict[str, str]] = {}

    def make_launcher(self, tmp_path: Path) -> BaseLauncher:
        options = SgeOptions(
            poll_interval_s=0.5,
            max_poll_interval_s=2.0,
            script_dir=tmp_path / "sge",
            job_name_prefix="contract",
        )
        return SgeLauncher(options, cancel_on_close=True)

    def abandon(self, launcher: BaseLauncher) -> None:
        assert isinstance(launcher, SgeLauncher)
        launcher.detach()
